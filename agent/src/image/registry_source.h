#pragma once
// RegistrySource: a BlobSource that pulls one reference from an OCI registry.

#include "image/source.h"
#include "oci/reference.h"
#include "registry/registry_client.h"

namespace fleetlet::image {

class RegistrySource : public BlobSource {
 public:
  // `client` must talk to `ref.registry()` and outlive the source.
  RegistrySource(registry::RegistryClient& client, oci::Reference ref)
      : client_(client), ref_(std::move(ref)) {}

  Result<ResolvedRoot> resolve() override;
  Result<std::string> fetchDocument(const oci::Descriptor& desc) override;
  Status streamBlob(const oci::Descriptor& desc, uint64_t offset, const ChunkSink& sink) override;
  // containerd.io/distribution.source.<host without port> = <repository>, as ctr sets it.
  containerd::Labels blobLabels() const override;

 private:
  registry::RegistryClient& client_;
  oci::Reference ref_;
};

}  // namespace fleetlet::image
