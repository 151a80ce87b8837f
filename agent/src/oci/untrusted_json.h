#pragma once
// parseJson for untrusted bytes. common's parseJson catches only nlohmann's parse_error, but
// nlohmann also throws out_of_range (406, "number overflow parsing '1e999'") while parsing;
// found by fuzz_manifest. This wrapper keeps every nlohmann exception inside. It can become
// parseJson itself once common/json catches Json::exception.

#include <string_view>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::oci {

// As parseJson; kInvalidArgument "<what>: malformed JSON: <reason>" for any nlohmann error.
Result<Json> parseUntrustedJson(std::string_view text, std::string_view what);

}  // namespace fleetlet::oci
