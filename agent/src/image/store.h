#pragma once
// ImageStore: images in containerd as `ctr images pull` leaves them — blobs in the content
// store with the garbage-collection labels that tie index → manifest → config and layers,
// layers unpacked into committed snapshots named by chain id, and an image record pointing at
// the top descriptor. Pull (from a registry) and import (from an OCI archive) both write
// through it, so the two produce the same result.
//
// Thread-safety: all methods may be called from several threads at once (they only issue
// independent containerd calls). Calls block.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "containerd/connection.h"
#include "containerd/content.h"
#include "containerd/images.h"
#include "containerd/leases.h"
#include "containerd/snapshots.h"
#include "oci/manifest.h"

namespace fleetlet::image {

// Labels containerd's garbage collector and `ctr` understand.
namespace labels {
inline constexpr char kGcRefContentPrefix[] = "containerd.io/gc.ref.content.";
inline constexpr char kGcRefSnapshotPrefix[] = "containerd.io/gc.ref.snapshot.";
inline constexpr char kUncompressed[] = "containerd.io/uncompressed";
inline constexpr char kDistributionSourcePrefix[] = "containerd.io/distribution.source.";
inline constexpr char kSnapshotRef[] = "containerd.io/snapshot.ref";
}  // namespace labels

// Labels for an index blob: one gc.ref.content.m.<i> per child manifest that was stored.
containerd::Labels indexLabels(const std::vector<std::pair<size_t, std::string>>& children);
// Labels for a manifest blob: its config and every layer.
containerd::Labels manifestLabels(const oci::Manifest& manifest);

struct ImageSummary {
  std::string name;
  containerd::Descriptor target;
  // Sum of manifest, config and layer sizes for the host platform (0 when unknown).
  int64_t size = 0;
  // True when the image's layers are unpacked for the store's snapshotter.
  bool unpacked = false;
  std::string platform;
};

// Called once per unpacked layer: index (0-based), count, and whether the snapshot already
// existed.
using UnpackProgress = std::function<void(size_t index, size_t count, bool existed)>;

class ImageStore {
 public:
  ImageStore(std::shared_ptr<containerd::Connection> connection, std::string ns,
             std::string snapshotter = containerd::kDefaultSnapshotter);

  const std::string& ns() const { return ns_; }
  const std::string& snapshotter() const { return snapshotter_; }
  const std::shared_ptr<containerd::Connection>& connection() const { return connection_; }

  // Creates the namespace (if needed) and a lease that protects everything written under it
  // until dropped; containerd expires it after a day if this process dies first.
  Result<containerd::ScopedLease> beginWrite(const std::string& purpose) const;

  // True when containerd holds the committed blob.
  Result<bool> hasBlob(const std::string& digest) const;
  // Stores a small blob already held in memory (index, manifest, config) under `lease`;
  // succeeds when it already exists. The labels are set on the blob either way.
  Status putBlob(const std::string& lease, const oci::Descriptor& desc, std::string_view bytes,
                 const containerd::Labels& labels) const;
  // Opens a resumable ingest for a large blob; ref is "<kind>-<digest>".
  Result<std::unique_ptr<containerd::ContentWriter>> openBlob(const std::string& lease,
                                                              const std::string& kind,
                                                              const oci::Descriptor& desc) const;
  // Drops an unfinished ingest (after a digest mismatch, so a retry starts clean).
  Status discardIngest(const std::string& kind, const oci::Descriptor& desc) const;
  // Reads a small blob back (at most `max_size` bytes).
  Result<std::string> readBlob(const std::string& digest, int64_t max_size) const;
  Status setLabels(const std::string& digest, const containerd::Labels& labels) const;

  // Unpacks `manifest`'s layers (already in the content store) into snapshots named by chain
  // id, skipping those that exist; checks each applied layer against the config's diff id;
  // labels layers with their uncompressed digest and the config with the top snapshot.
  // Returns the top chain id. `ready(i)` blocks until layer i is in the content store (lets
  // unpacking overlap with downloading); nullptr when all are there already.
  Result<std::string> unpack(const std::string& lease, const oci::Manifest& manifest,
                             const oci::ImageConfig& config,
                             const std::function<Status(size_t)>& ready,
                             const UnpackProgress& progress) const;

  // Creates or updates the image record `name` → `target`.
  Status putImage(const std::string& name, const oci::Descriptor& target) const;
  Result<std::vector<ImageSummary>> list() const;
  // Removes the image record and waits for containerd's garbage collection to drop what only
  // it used. kNotFound when there is no such image.
  Status removeImage(const std::string& name) const;

  // The platform manifest of an image target (selecting from an index for the host), and its
  // config. kNotFound when a blob is missing.
  Result<std::pair<oci::Manifest, oci::ImageConfig>> resolveLocal(
      const containerd::Descriptor& target) const;

 private:
  containerd::ContentService content(const std::string& lease = {}) const;
  containerd::SnapshotService snapshots(const std::string& lease = {}) const;

  std::shared_ptr<containerd::Connection> connection_;
  std::string ns_;
  std::string snapshotter_;
};

}  // namespace fleetlet::image
