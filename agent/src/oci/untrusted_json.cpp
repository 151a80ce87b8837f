#include "oci/untrusted_json.h"

namespace fleetlet::oci {

Result<Json> parseUntrustedJson(std::string_view text, std::string_view what) {
  try {
    return parseJson(text, what);
  } catch (const Json::exception& e) {
    return fail(ErrorCode::kInvalidArgument, "{}: malformed JSON: {}", what, e.what());
  }
}

}  // namespace fleetlet::oci
