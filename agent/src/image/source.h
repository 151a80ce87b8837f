#pragma once
// BlobSource: where an image's bytes come from during a pull — a registry, or blobs an
// import has already put into the content store.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "containerd/types.h"
#include "error/error.h"
#include "oci/manifest.h"

namespace fleetlet::image {

struct ResolvedRoot {
  oci::Descriptor descriptor;  // the index or manifest the reference names
  std::string bytes;           // its content, verified against descriptor.digest
};

// Receives blob bytes as they arrive; false stops the transfer.
using ChunkSink = std::function<bool(std::string_view chunk)>;

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // The top descriptor and its bytes. kNotFound when the image does not exist.
  virtual Result<ResolvedRoot> resolve() = 0;
  // A small document (manifest, config) verified against its digest and size.
  virtual Result<std::string> fetchDocument(const oci::Descriptor& desc) = 0;
  // Streams a blob's bytes starting at `offset`; not verified (the content store verifies on
  // commit). Safe to call from several threads at once. kUnavailable on a transfer failure.
  virtual Status streamBlob(const oci::Descriptor& desc, uint64_t offset,
                            const ChunkSink& sink) = 0;
  // Labels to put on every blob from this source (distribution source), may be empty.
  virtual containerd::Labels blobLabels() const = 0;
};

}  // namespace fleetlet::image
