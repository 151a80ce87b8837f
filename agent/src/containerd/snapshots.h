#pragma once
// containerd's snapshotter (overlayfs by default) and its diff service, which unpacks layers
// into snapshots.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "containerd/connection.h"
#include "containerd/types.h"

namespace fleetlet::containerd {

inline constexpr char kDefaultSnapshotter[] = "overlayfs";

struct SnapshotInfo {
  std::string name;
  std::string parent;
  enum class Kind : std::uint8_t { kUnknown, kView, kActive, kCommitted } kind = Kind::kUnknown;
  Labels labels;
};

class SnapshotService : public ServiceBase {
 public:
  SnapshotService(std::shared_ptr<Connection> connection, Scope scope,
                  std::string snapshotter = kDefaultSnapshotter)
      : ServiceBase(std::move(connection), std::move(scope)),
        snapshotter_(std::move(snapshotter)) {}
  SnapshotService withLease(std::string lease) const {
    return SnapshotService(connection_, Scope{scope_.ns, std::move(lease)}, snapshotter_);
  }
  const std::string& snapshotter() const { return snapshotter_; }

  // The snapshot, or nullopt when there is none with that key.
  Result<std::optional<SnapshotInfo>> stat(const std::string& key) const;
  // Creates an active snapshot on top of `parent` (empty: none) and returns its mounts.
  // kAlreadyExists when `key` exists.
  Result<std::vector<Mount>> prepare(const std::string& key, const std::string& parent,
                                     const Labels& labels = {}) const;
  // Commits the active snapshot `key` as `name`.
  Status commit(const std::string& name, const std::string& key, const Labels& labels = {}) const;
  Result<std::vector<Mount>> mounts(const std::string& key) const;
  // Removes a snapshot; kNotFound when absent, kFailedPrecondition when it has children.
  Status remove(const std::string& key) const;
  Result<std::vector<SnapshotInfo>> list() const;

 private:
  std::string snapshotter_;
};

class DiffService : public ServiceBase {
 public:
  using ServiceBase::ServiceBase;
  // Applies the layer `layer` (from the content store) onto `mounts`; returns the digest of
  // the uncompressed content that was applied (the layer's diff id).
  Result<std::string> apply(const Descriptor& layer, const std::vector<Mount>& mounts) const;
};

}  // namespace fleetlet::containerd
