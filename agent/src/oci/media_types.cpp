#include "oci/media_types.h"

namespace fleetlet::oci::media_type {

bool isIndex(std::string_view media_type) {
  return media_type == kOciIndex || media_type == kDockerManifestList;
}

bool isManifest(std::string_view media_type) {
  return media_type == kOciManifest || media_type == kDockerManifest;
}

bool isConfig(std::string_view media_type) {
  return media_type == kOciConfig || media_type == kDockerConfig;
}

bool isSchema1(std::string_view media_type) {
  return media_type == kDockerSchema1Manifest || media_type == kDockerSchema1SignedManifest;
}

Result<LayerType> classifyLayer(std::string_view media_type) {
  if (media_type == kOciLayer) return LayerType{Compression::kNone, false};
  if (media_type == kOciLayerGzip || media_type == kDockerLayerGzip) {
    return LayerType{Compression::kGzip, false};
  }
  if (media_type == kOciLayerZstd) return LayerType{Compression::kZstd, false};
  if (media_type == kOciLayerNondistributable) return LayerType{Compression::kNone, true};
  if (media_type == kOciLayerNondistributableGzip || media_type == kDockerForeignLayerGzip) {
    return LayerType{Compression::kGzip, true};
  }
  if (media_type == kOciLayerNondistributableZstd) return LayerType{Compression::kZstd, true};
  return fail(ErrorCode::kInvalidArgument, "unsupported layer media type \"{}\"", media_type);
}

}  // namespace fleetlet::oci::media_type
