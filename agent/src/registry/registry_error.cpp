#include "registry/registry_error.h"

#include <cctype>
#include <string>

#include "json/json.h"

namespace fleetlet::registry {
namespace {

constexpr size_t kExcerptLength = 200;

struct CodeInfo {
  std::string_view code;
  std::string_view description;
  ErrorCode error_code;
};

constexpr CodeInfo kCodes[] = {
    {"MANIFEST_UNKNOWN", "manifest unknown", ErrorCode::kNotFound},
    {"BLOB_UNKNOWN", "blob unknown", ErrorCode::kNotFound},
    {"NAME_UNKNOWN", "repository unknown", ErrorCode::kNotFound},
    {"BLOB_UPLOAD_UNKNOWN", "blob upload unknown", ErrorCode::kNotFound},
    {"UNAUTHORIZED", "unauthorized", ErrorCode::kFailedPrecondition},
    {"DENIED", "denied", ErrorCode::kFailedPrecondition},
    {"UNSUPPORTED", "unsupported", ErrorCode::kFailedPrecondition},
    {"TOOMANYREQUESTS", "too many requests", ErrorCode::kResourceExhausted},
    {"NAME_INVALID", "invalid repository name", ErrorCode::kInvalidArgument},
    {"TAG_INVALID", "invalid tag", ErrorCode::kInvalidArgument},
    {"DIGEST_INVALID", "invalid digest", ErrorCode::kInvalidArgument},
    {"SIZE_INVALID", "invalid size", ErrorCode::kInvalidArgument},
    {"MANIFEST_INVALID", "invalid manifest", ErrorCode::kInvalidArgument},
    {"MANIFEST_BLOB_UNKNOWN", "manifest references an unknown blob", ErrorCode::kInvalidArgument},
    {"MANIFEST_UNVERIFIED", "manifest unverified", ErrorCode::kInvalidArgument},
    {"BLOB_UPLOAD_INVALID", "invalid blob upload", ErrorCode::kInvalidArgument},
    {"RANGE_INVALID", "invalid range", ErrorCode::kInvalidArgument},
    {"PAGINATION_NUMBER_INVALID", "invalid pagination number", ErrorCode::kInvalidArgument},
};

CodeInfo byStatus(long status) {
  if (status == 401) return {"", "unauthorized", ErrorCode::kFailedPrecondition};
  if (status == 403) return {"", "denied", ErrorCode::kFailedPrecondition};
  if (status == 404) return {"", "not found", ErrorCode::kNotFound};
  if (status == 429) return {"", "too many requests", ErrorCode::kResourceExhausted};
  if (status >= 500 && status < 600) return {"", "registry error", ErrorCode::kUnavailable};
  return {"", "unexpected answer", ErrorCode::kInternal};
}

// Printable ASCII only, whitespace runs folded, at most kExcerptLength characters.
std::string excerpt(std::string_view body) {
  std::string out;
  bool space = false;
  for (char c : body) {
    if (out.size() >= kExcerptLength) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (std::isspace(u) != 0) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(u >= 0x21 && u < 0x7f ? c : '?');
  }
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

Error decodeRegistryError(long status, std::string_view body, std::string_view what) {
  CodeInfo info = byStatus(status);
  std::string detail;
  bool decoded = false;
  auto json = parseJson(body, "registry error");
  auto errors = json ? requireArray(*json, "errors", "registry error")
                     : Result<const Json*>(std::unexpected(json.error()));
  if (errors && !(*errors)->empty()) {
    const Json& first = (**errors)[0];
    // A malformed "code" counts as none.
    auto code = optionalString(first, "code", "errors[0]").value_or(std::nullopt);
    if (code) {
      decoded = true;
      bool known = false;
      for (const CodeInfo& c : kCodes) {
        if (c.code == *code) {
          info = c;
          known = true;
        }
      }
      if (!known) detail = *code;
      // A 5xx is a server fault whatever the code says: worth a retry.
      if (status >= 500 && status < 600) info.error_code = ErrorCode::kUnavailable;
    }
    auto message = optionalString(first, "message", "errors[0]").value_or(std::nullopt);
    if (message) {
      decoded = true;
      std::string text = excerpt(*message);
      if (!text.empty() && !equalsIgnoreCase(text, info.description)) {
        detail = detail.empty() ? text : detail + ": " + text;
      }
    }
    if ((*errors)->size() > 1) {
      detail +=
          fmt::format("{}(and {} more errors)", detail.empty() ? "" : " ", (*errors)->size() - 1);
    }
  }
  if (!decoded) {
    std::string text = excerpt(body);
    detail =
        text.empty() ? fmt::format("HTTP {}", status) : fmt::format("HTTP {}: {}", status, text);
  }
  std::string message = fmt::format("{}: {}", info.description, what);
  if (!detail.empty()) message += ": " + detail;
  return Error(info.error_code, std::move(message));
}

}  // namespace fleetlet::registry
