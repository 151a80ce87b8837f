#include "api/upload_metadata.h"

#include "json/json.h"

namespace fleetlet::api {

Result<UploadMetadata> parseUploadMetadata(std::string_view text) {
  auto json = parseJson(text, "metadata part");
  if (!json) return std::unexpected(json.error().wrap("metadata is not JSON"));
  if (!json->is_object()) {
    return fail(ErrorCode::kInvalidArgument, "metadata: expected a JSON object, got {}",
                jsonTypeName(*json));
  }
  UploadMetadata out;
  FLEETLET_ASSIGN_OR_RETURN(out.semantics, requireString(*json, "semantics", "metadata"));
  if (out.semantics.empty()) {
    return fail(ErrorCode::kInvalidArgument, "metadata.semantics: must not be empty");
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* policy,
                            requireObject(*json, "retentionPolicy", "metadata"));
  FLEETLET_ASSIGN_OR_RETURN(out.retention,
                            retention::parseRetentionPolicy(*policy, "metadata.retentionPolicy"));
  return out;
}

}  // namespace fleetlet::api
