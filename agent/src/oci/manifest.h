#pragma once
// OCI / Docker schema2 image documents: descriptors, manifests, indexes (manifest lists) and
// image configs, parsed from untrusted bytes.
//
// Every parser validates the whole document and fails with kInvalidArgument naming the field
// path ("manifest.layers[2].digest: invalid digest ..."): digests are sha256:<64 hex>, sizes
// are non-negative integers, required fields exist with the right JSON types, schemaVersion is
// 2 and mediaType agrees with the expected kind of document. Docker schema1 fails with
// "unsupported Docker schema1 manifest". Nothing throws. Pure and thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"
#include "oci/platform.h"

namespace fleetlet::oci {

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;

  bool operator==(const Descriptor&) const = default;
};

struct Manifest {
  std::string media_type;  // kOciManifest or kDockerManifest (from the document or the hint)
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct Index {
  std::string media_type;  // kOciIndex or kDockerManifestList
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct ImageConfig {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, bottom layer first
  // The runtime defaults from "config" (all optional in the document).
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  // The whole document, for anything not lifted into fields above.
  Json raw;

  Platform platform() const { return Platform{os, architecture, variant, os_version, {}}; }
};

// Parses one descriptor object; `path` names it in errors ("manifest.config").
Result<Descriptor> parseDescriptor(const Json& json, std::string_view path);

// The kind of a manifest document fetched with `content_type` (the HTTP Content-Type or the
// descriptor's mediaType; may be empty or a generic "application/json"). Returns kOciIndex,
// kDockerManifestList, kOciManifest or kDockerManifest. Uses the document's own mediaType
// when present, otherwise the content type when it names a manifest or index, otherwise
// sniffs: "manifests" -> OCI index, "config"/"layers" -> OCI manifest. Fails on schema1, on
// a document whose mediaType contradicts `content_type`, and on unknown types.
Result<std::string> detectManifestType(std::string_view bytes, std::string_view content_type = {});

// `media_type_hint` is what the descriptor or Content-Type claimed, or empty; when both the
// hint and the document name a type they must agree. Layer media types must be known layer
// types (see classifyLayer) and the config a known config type.
Result<Manifest> parseManifest(std::string_view bytes, std::string_view media_type_hint = {});
Result<Index> parseIndex(std::string_view bytes, std::string_view media_type_hint = {});
// Requires os, architecture and rootfs {type: "layers", diff_ids}.
Result<ImageConfig> parseImageConfig(std::string_view bytes);

// The entry of `index` best suited to `wanted` (see platformScore); entries without a platform
// count as a weak match. kNotFound listing the available platforms when nothing matches,
// e.g. "no image for linux/riscv64 in index; available: linux/amd64, linux/arm64".
Result<Descriptor> selectManifest(const Index& index, const Platform& wanted);

// OK when the manifest has as many layers as the config has diff ids.
Status checkLayersMatchConfig(const Manifest& manifest, const ImageConfig& config);

}  // namespace fleetlet::oci
