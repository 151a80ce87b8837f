#include "image/registry_source.h"

#include "image/store.h"
#include "oci/media_types.h"

namespace fleetlet::image {

Result<ResolvedRoot> RegistrySource::resolve() {
  FLEETLET_ASSIGN_OR_RETURN(auto resolved, client_.resolve(ref_));
  return ResolvedRoot{.descriptor = std::move(resolved.descriptor),
                      .bytes = std::move(resolved.bytes)};
}

Result<std::string> RegistrySource::fetchDocument(const oci::Descriptor& desc) {
  const auto& t = desc.media_type;
  if (t == oci::media_type::kOciManifest || t == oci::media_type::kDockerManifest ||
      t == oci::media_type::kOciIndex || t == oci::media_type::kDockerManifestList) {
    return client_.fetchManifest(ref_.repository(), desc);
  }
  return client_.fetchBlob(ref_.repository(), desc);
}

Status RegistrySource::streamBlob(const oci::Descriptor& desc, uint64_t offset,
                                  const ChunkSink& sink) {
  return client_.streamBlob(ref_.repository(), desc, offset, [&](std::string_view chunk) -> Status {
    if (!sink(chunk)) {
      return fail(ErrorCode::kUnavailable, "download stopped");
    }
    return {};
  });
}

containerd::Labels RegistrySource::blobLabels() const {
  std::string host = ref_.registry();
  // Strip the port, keeping IPv6 brackets' content intact ("[::1]:5000" -> "[::1]").
  auto colon = host.rfind(':');
  auto bracket = host.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    host.resize(colon);
  }
  return {{labels::kDistributionSourcePrefix + host, ref_.repository()}};
}

}  // namespace fleetlet::image
