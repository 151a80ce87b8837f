#pragma once
// JSON helpers on nlohmann::json that turn malformed input into Errors naming the field path
// ("manifest.layers[2].size: expected an integer, got string") instead of exceptions.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet {

using Json = nlohmann::json;

// Parses `text`; on failure the error (kInvalidArgument) names `what` and the byte offset.
Result<Json> parseJson(std::string_view text, std::string_view what);

// A JSON type name for messages: "string", "integer", "object", ...
std::string_view jsonTypeName(const Json& value);

// Required members: kInvalidArgument naming "<path>.<key>" when missing or mistyped.
Result<std::string> requireString(const Json& object, std::string_view key, std::string_view path);
Result<int64_t> requireInt(const Json& object, std::string_view key, std::string_view path);
Result<const Json*> requireObject(const Json& object, std::string_view key, std::string_view path);
Result<const Json*> requireArray(const Json& object, std::string_view key, std::string_view path);

// Optional members: nullopt when absent or null; an error when present with the wrong type.
Result<std::optional<std::string>> optionalString(const Json& object, std::string_view key,
                                                  std::string_view path);

}  // namespace fleetlet
