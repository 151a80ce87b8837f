#pragma once
// containerd's container metadata store (not running processes: see tasks.h).

#include <optional>
#include <string>
#include <vector>

#include "containerd/connection.h"
#include "containerd/types.h"

namespace fleetlet::containerd {

inline constexpr char kRuncRuntime[] = "io.containerd.runc.v2";
// containerd-shim-fleetlet-v1 (runtime-shim/): native apps; containerd finds the binary on its
// PATH.
inline constexpr char kFleetletRuntime[] = "io.containerd.fleetlet.v1";
inline constexpr char kOciSpecTypeUrl[] = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

struct Container {
  std::string id;
  std::string image;
  Labels labels;
  std::string runtime = kRuncRuntime;
  std::string spec_json;  // the OCI runtime spec
  std::string snapshotter;
  std::string snapshot_key;
};

class ContainerService : public ServiceBase {
 public:
  using ServiceBase::ServiceBase;
  // kAlreadyExists when a container with that id exists.
  Status create(const Container& container) const;
  Result<std::optional<Container>> get(const std::string& id) const;
  // Filters as containerd takes them, e.g. `labels."fleetlet.io/app"==camera`.
  Result<std::vector<Container>> list(const std::vector<std::string>& filters = {}) const;
  // kNotFound when absent. The container's snapshot is not removed.
  Status remove(const std::string& id) const;
};

}  // namespace fleetlet::containerd
