#pragma once
// ContainerdRuntime: ContainerRuntime on a real containerd, through agent/src/containerd.
//
// Containers are created under a short lease (snapshot prepare and container record), so an
// agent killed in between leaks nothing: startup() deletes leases left by dead runs and the
// garbage collector takes what they protected.
//
// Thread-safety: all methods may be called concurrently for different container ids, and
// ensureImage for different images (the reconciler pulls each image once at a time).

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "containerd/connection.h"
#include "containerd/containers.h"
#include "containerd/tasks.h"
#include "image/store.h"
#include "network/app_networks.h"
#include "reconcile/runtime.h"
#include "services/service_links.h"
#include "state/store.h"

namespace fleetlet::reconcile {

struct ContainerdRuntimeOptions {
  std::string ns = "fleetlet";
  // The containerd runtime of `runtime: container` apps (runtime.containerShim): the Go shim
  // io.containerd.runc.v2 or containerd-shim-fleetlet-v1's container mode. A container made
  // with one keeps it until replaced (containerd records it per container).
  std::string container_runtime = containerd::kRuncRuntime;
  std::filesystem::path data_dir;  // volumes/<app>/<volume>, logs/<app>/
  // Registries reached over plain HTTP ("registry.lan:5000"), and loopback ones reached over
  // HTTPS (loopback registries are plain HTTP otherwise): registry::usesPlainHttp.
  std::set<std::string> plain_http_registries;
  std::set<std::string> https_registries;
  // Where an app's stdout/stderr go; default: files under data_dir/logs/<app>/.
  std::function<Result<containerd::TaskIo>(const std::string& app)> task_io;
  // A pull fails once it has run this long, or when it moves fewer than
  // `pull_min_bytes_per_second` on average over `pull_stall_timeout`.
  std::chrono::milliseconds pull_timeout{std::chrono::minutes(30)};
  std::chrono::milliseconds pull_stall_timeout{std::chrono::seconds(30)};
  int64_t pull_min_bytes_per_second = 1024;
  // The logs of an app that is gone are deleted once they have not been written for this long.
  std::chrono::milliseconds removed_log_retention{std::chrono::hours(1)};
  // Each container app's own network (docs/networking.md); null: every container app gets a
  // fresh, empty network namespace (only `lo`), and `expose` and the policy do nothing.
  network::AppNetworks* networks = nullptr;
  // The node services on isolated apps' localhost (docs/services.md); null: none handed over
  // (apps still get the AX_* variables, pointing at the services' host listeners).
  services::ServiceLinks* services = nullptr;
  // Where native apps' uids are allocated (one per app, never shared); null: the shim derives
  // a uid from the container id (docs/runtimes.md, "Sandbox levels").
  state::StateStore* native_uids = nullptr;
  // A pull ended (an image already present is no pull): its outcome and the layer bytes it
  // transferred (0 on failure). Called from the pulling thread.
  std::function<void(const Status& outcome, int64_t fetched_bytes)> on_pull;
};

class ContainerdRuntime : public ContainerRuntime {
 public:
  ContainerdRuntime(std::shared_ptr<containerd::Connection> connection,
                    ContainerdRuntimeOptions options);

  // Deletes the creation leases of earlier runs (they protect nothing that is still wanted:
  // a finished create needs no lease). Call once before the first create.
  Status startup();

  Result<std::vector<ActualContainer>> list() override;
  Result<std::vector<ActualContainer>> inspect(const std::vector<std::string>& ids) override;
  Result<bool> hasImage(const manifest::App& app) override;
  Status ensureImage(const manifest::App& app, std::stop_token stop) override;
  Status create(const manifest::App& app, const std::string& id, int64_t revision) override;
  Result<uint32_t> start(const manifest::App& app, const std::string& id) override;
  Status refresh(const manifest::App& app) override;
  Status stop(const std::string& id, std::chrono::milliseconds grace) override;
  Status remove(const std::string& id) override;
  void pruneAppData(const std::set<std::string>& live) override;
  std::optional<std::string> lostHostPath(const manifest::App& app) override;

  std::filesystem::path logDir(const std::string& app) const;
  // The digest containerd's image record for `image` points at (for a tag: the manifest or
  // index it resolved to when pulled); nullopt when containerd has no such image.
  Result<std::optional<std::string>> imageDigest(const std::string& image);

 private:
  containerd::Scope scope(const std::string& lease = {}) const { return {options_.ns, lease}; }
  // The image config of a target, read once per digest: content is immutable, so an entry is
  // never stale. Saves every app's worker re-reading manifest and config from the content store.
  Result<oci::ImageConfig> configOf(const containerd::Descriptor& target);
  // The namespace an app's containers join; empty for a fresh one or the node's (mode host).
  std::string netnsPath(const manifest::App& app) const;
  // Whether the app gets a network of its own (native apps only at the contained level).
  static bool joinsAppNetwork(const manifest::App& app);
  // A native app on the host's network that lists services: it gets host listeners of its
  // own (ServiceLinks::linkHost), their ports kept in hostListenerPorts().
  bool hasHostListeners(const manifest::App& app) const;
  std::filesystem::path hostListenerPorts() const;
  // runtime: native: <data_dir>/state/<app>, the app's state directory.
  std::filesystem::path stateDir(const std::string& app) const;
  // <data_dir>/volumes/<app> (one directory per volume below) and <data_dir>/hosts/<app>.
  std::filesystem::path volumesRoot(const std::string& app) const;
  std::filesystem::path hostsPath(const std::string& app) const;
  // Makes what the app's container binds from the host when it is missing: its volume
  // directories, the private parent of a native app's state directory, an image app's
  // /etc/hosts file (written afresh when `rewrite_hosts`).
  Status ensureHostPaths(const manifest::App& app, bool rewrite_hosts);
  Status createNative(const manifest::App& app, const std::string& id,
                      const containerd::Labels& labels);

  std::shared_ptr<containerd::Connection> connection_;
  ContainerdRuntimeOptions options_;
  image::ImageStore images_;
  std::mutex configs_mu_;
  std::map<std::string, oci::ImageConfig> configs_;  // guarded by configs_mu_: target digest →
};

}  // namespace fleetlet::reconcile
