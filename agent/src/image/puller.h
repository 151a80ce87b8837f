#pragma once
// pullImage: brings an image from a BlobSource into containerd through an ImageStore, as
// `ctr images pull` would — but resumable: layer bytes already in a containerd ingest from an
// interrupted pull are not fetched again.
//
// Layers download in parallel (bounded) and unpack in order as soon as each one and its
// predecessors are in; a failure anywhere stops the other downloads. Nothing becomes visible
// as an image unless every blob was verified and every layer unpacked.

#include <cstdint>
#include <functional>
#include <string>

#include "image/source.h"
#include "image/store.h"
#include "oci/platform.h"

namespace fleetlet::image {

struct PullProgress {
  enum class Kind : std::uint8_t {
    kIndex,
    kManifest,
    kConfig,
    kLayer,
    kBlob /* untyped, from an archive */
  };
  enum class Phase : std::uint8_t {
    kExists,       // already in the content store: nothing to fetch
    kDownloading,  // `done` of `total` bytes are in (including resumed bytes)
    kDownloaded,   // verified and committed
    kUnpacked,     // layer applied to its snapshot
  };
  Kind kind = Kind::kLayer;
  Phase phase = Phase::kDownloading;
  std::string digest;
  int64_t done = 0;
  int64_t total = 0;
};
std::string_view toString(PullProgress::Kind kind);

struct PullOptions {
  oci::Platform platform = oci::hostPlatform();
  size_t max_parallel = 3;
  bool unpack = true;
  // Called from download threads, never concurrently (the puller serialises calls).
  std::function<void(const PullProgress&)> progress;
};

struct PullResult {
  std::string name;
  oci::Descriptor target;
  oci::Descriptor manifest;
  size_t layers = 0;
  int64_t total_bytes = 0;    // manifest + config + layers
  int64_t fetched_bytes = 0;  // layer bytes transferred by this pull
  int64_t resumed_bytes = 0;  // layer bytes found in containerd ingests from earlier tries
  std::string top_chain_id;   // empty when not unpacked
};

// Pulls the image `source` resolves and records it as `name`. Errors name the blob:
// "digest mismatch for layer sha256:…", "download layer sha256:…: registry unreachable: …".
Result<PullResult> pullImage(BlobSource& source, const ImageStore& store, const std::string& name,
                             const PullOptions& options);

}  // namespace fleetlet::image
