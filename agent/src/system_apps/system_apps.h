#pragma once
// System apps: the node's own apps (the node services, manifests/system/), applied by
// fleetletd beside the desired state from the cloud, a file or the API (docs/services.md).
//
// The system manifest is a NodeState of its own with its own revision line: its revision is
// never compared with the desired state's. The reconciler gets both merged into one NodeState;
// a desired state can neither remove a system app (it is not in it) nor shadow one (a manifest
// naming one is refused). Pure functions; thread-safe.

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "error/error.h"
#include "manifest/types.h"

namespace fleetlet::system_apps {

// Where fleetletd's handoff directory appears in every system app.
inline constexpr char kHandoffMountPath[] = "/run/fleetlet/handoff";

struct SystemAppsOptions {
  // fleetletd's handoff directory (the services' --handoff-socket files live there), mounted
  // read-write at kHandoffMountPath into every system app.
  std::filesystem::path handoff_dir;
  // Image name → the digest its archive recorded at this start (importSystemImages): folded
  // into the app's spec hash, so that a fleetletd shipping new images replaces the system apps
  // even when the image's tag stayed the same.
  std::map<std::string, std::string> image_digests;
};

// Parses the system manifest at `path` (the manifest v1 rules of manifests/README.md) and
// prepares its apps: the handoff mount, and a spec hash over the spec, the handoff directory
// and the image digest. Errors name the file and the field.
Result<manifest::NodeState> loadSystemManifest(const std::filesystem::path& path,
                                               const SystemAppsOptions& options);

// kInvalidArgument naming the first app of `desired` that has a system app's name.
Status checkNoSystemApps(const manifest::NodeState& desired, const manifest::NodeState& system);

// The state the reconciler works towards: the desired state's revision, node, expiry and
// rollback window, its apps and the system apps (system apps first in start order). With no
// desired state (null), the system apps alone at revision 0. A desired app with a system app's
// name (a state accepted before that app was a system app) is left out: the system app wins.
std::shared_ptr<const manifest::NodeState> merge(const manifest::NodeState* desired,
                                                 const manifest::NodeState& system);

}  // namespace fleetlet::system_apps
