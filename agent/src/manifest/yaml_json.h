#pragma once
// Manifest text (YAML or JSON) to nlohmann JSON values, so that one validator serves both
// formats and both give the same values for the same document. Pure; thread-safe.
//
// YAML scalars get JSON types by their spelling only, never by YAML 1.1 guessing: quoted and
// block scalars (and `!!str`) are strings; plain scalars are null (`~`, `null`, empty), booleans
// (`true`, `True`, `TRUE`, `false`, ... as in the YAML 1.2 core schema), numbers when spelled
// as JSON numbers (`8080`, `0.5`, `-1e3`), and strings otherwise (`on`, `yes`, `010`, `0x1F`,
// `.5`, `64Mi`). Anchors are allowed, aliases, merge keys and complex keys are not (they would
// let a small document expand without bound); duplicate keys, other tags, more than one
// document and invalid UTF-8 are errors.

#include <cstddef>
#include <string_view>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::manifest {

// Manifests larger than this are refused before parsing.
inline constexpr size_t kMaxManifestBytes = size_t{4} * 1024 * 1024;

// Parses `text` as JSON when its first non-blank character is '{' (a YAML document in flow
// style is read as JSON too, and fails unless it is JSON), otherwise as YAML. Fails with
// kInvalidArgument "line L, column C: <problem>" (1-based). Never throws.
Result<Json> manifestToJson(std::string_view text);

// Only the YAML path, for tests.
Result<Json> yamlToJson(std::string_view text);

}  // namespace fleetlet::manifest
