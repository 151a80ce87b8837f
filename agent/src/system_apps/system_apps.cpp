#include "system_apps/system_apps.h"

#include <fstream>
#include <sstream>

#include "crypto/sha256.h"
#include "manifest/parse.h"

namespace fleetlet::system_apps {

Result<manifest::NodeState> loadSystemManifest(const std::filesystem::path& path,
                                               const SystemAppsOptions& options) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::kNotFound, "system manifest {}: cannot read it", path.string());
  std::stringstream text;
  text << in.rdbuf();
  FLEETLET_ASSIGN_OR_RETURN(auto state, manifest::parseNodeState(text.str(), path.string()));
  for (auto& [name, app] : state.apps) {
    app.host_mounts.push_back({.source = options.handoff_dir.string(), .path = kHandoffMountPath});
    std::string digest;
    if (auto it = options.image_digests.find(app.image); it != options.image_digests.end()) {
      digest = it->second;
    }
    app.spec_hash = sha256Hex(app.spec_hash + "\nhandoff " + options.handoff_dir.string() +
                              "\nimage " + digest);
  }
  return state;
}

Status checkNoSystemApps(const manifest::NodeState& desired, const manifest::NodeState& system) {
  for (const auto& [name, app] : desired.apps) {
    if (system.apps.contains(name)) {
      return fail(ErrorCode::kInvalidArgument,
                  "apps.{}: \"{}\" is a system app of this node (manifests/system/): a manifest "
                  "can neither replace nor remove it; give the app another name",
                  name, name);
    }
  }
  return {};
}

std::shared_ptr<const manifest::NodeState> merge(const manifest::NodeState* desired,
                                                 const manifest::NodeState& system) {
  auto out = std::make_shared<manifest::NodeState>();
  if (desired != nullptr) {
    out->revision = desired->revision;
    out->node = desired->node;
    out->expires = desired->expires;
    out->rollback_window = desired->rollback_window;
  }
  out->apps = system.apps;
  out->start_order = system.start_order;
  if (desired != nullptr) {
    for (const auto& [name, app] : desired->apps) {
      if (!system.apps.contains(name)) out->apps.emplace(name, app);
    }
    for (const auto& name : desired->start_order) {
      if (!system.apps.contains(name)) out->start_order.push_back(name);
    }
  }
  return out;
}

}  // namespace fleetlet::system_apps
