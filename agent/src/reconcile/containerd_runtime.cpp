#include "reconcile/containerd_runtime.h"

#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <thread>

#include "containerd/containers.h"
#include "containerd/leases.h"
#include "containerd/snapshots.h"
#include "image/puller.h"
#include "image/registry_source.h"
#include "oci/digest.h"
#include "oci/reference.h"
#include "ocispec/builder.h"
#include "registry/registry_client.h"

namespace fleetlet::reconcile {
namespace {

constexpr char kCreateLeasePrefix[] = "fleetlet-create-";
constexpr auto kPoll = std::chrono::milliseconds(20);
constexpr auto kKillWait = std::chrono::seconds(10);
constexpr uint32_t kFirstNativeUid = 61184;
constexpr uint32_t kLastNativeUid = 65519;

ActualContainer::Task taskState(containerd::TaskInfo::State s) {
  using S = containerd::TaskInfo::State;
  switch (s) {
    case S::kCreated:
      return ActualContainer::Task::kCreated;
    case S::kRunning:
      return ActualContainer::Task::kRunning;
    case S::kStopped:
      return ActualContainer::Task::kStopped;
    default:
      return ActualContainer::Task::kOther;
  }
}

Status okIfNotFound(Status st) {
  if (!st && st.error().code() == ErrorCode::kNotFound) return {};
  return st;
}

// containerd's "runtime \"io.containerd.fleetlet.v1\" binary not installed
// \"containerd-shim-fleetlet-v1\": file does not exist" (its PATH has no such shim) as an error
// that names the shim and what to do; other errors unchanged.
Error explainMissingShim(const Error& error, std::string_view runtime, bool container_app) {
  if (error.message().find("binary not installed") == std::string::npos) return error;
  std::string binary = "containerd-shim-";  // io.containerd.<name>.<version> → ...-<name>-<version>
  std::string_view rest = runtime.starts_with("io.containerd.") ? runtime.substr(14) : runtime;
  for (char c : rest) binary += c == '.' ? '-' : c;
  return Error(
      ErrorCode::kFailedPrecondition,
      fmt::format("containerd cannot find the shim {} (runtime {}) on its PATH: install it "
                  "beside containerd (the fleetlet package puts it in /usr/bin){} ({})",
                  binary, runtime,
                  container_app && runtime == containerd::kFleetletRuntime
                      ? " or set runtime.containerShim: runc"
                      : "",
                  error.message()));
}

}  // namespace

ContainerdRuntime::ContainerdRuntime(std::shared_ptr<containerd::Connection> connection,
                                     ContainerdRuntimeOptions options)
    : connection_(std::move(connection)),
      options_(std::move(options)),
      images_(connection_, options_.ns) {}

std::filesystem::path ContainerdRuntime::logDir(const std::string& app) const {
  return options_.data_dir / "logs" / app;
}

Status ContainerdRuntime::startup() {
  FLEETLET_RETURN_IF_ERROR(containerd::ensureNamespace(connection_, options_.ns));
  containerd::LeaseService leases(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(auto ids, leases.list());
  for (const auto& id : ids) {
    if (!id.starts_with(kCreateLeasePrefix)) continue;
    spdlog::info("removing lease {} left by an earlier run", id);
    FLEETLET_RETURN_IF_ERROR(leases.remove(id));
  }
  return {};
}

namespace {

ActualContainer toActual(const containerd::Container& c) {
  ActualContainer a{.app = c.labels.at(kAppLabel), .id = c.id};
  if (auto it = c.labels.find(kSpecHashLabel); it != c.labels.end()) a.spec_hash = it->second;
  if (auto it = c.labels.find(kRevisionLabel); it != c.labels.end()) {
    a.revision = std::strtoll(it->second.c_str(), nullptr, 10);
  }
  if (auto it = c.labels.find(kStopGraceLabel); it != c.labels.end()) {
    char* end = nullptr;
    long long ms = std::strtoll(it->second.c_str(), &end, 10);
    if (end != it->second.c_str() && *end == '\0' && ms >= 0) {
      a.stop_grace = std::chrono::milliseconds(ms);
    }
  }
  return a;
}

// The OOM kills counted in a container's memory cgroup (cgroupsPath /<ns>/<id>, see
// ocispec/builder.cpp) — cgroup v2's memory.events or v1's memory.oom_control; 0 when neither
// can be read (the cgroup is gone, or another layout).
int64_t oomKills(const std::string& ns, const std::string& id) {
  const std::filesystem::path root = "/sys/fs/cgroup";
  for (const auto& file :
       {root / ns / id / "memory.events", root / "memory" / ns / id / "memory.oom_control"}) {
    std::ifstream in(file);
    std::string key;
    int64_t value = 0;
    while (in >> key >> value) {
      if (key == "oom_kill") return value;
    }
  }
  return 0;
}

// SIGKILL's exit status: what an OOM kill looks like from outside.
constexpr uint32_t kKilledStatus = 128 + SIGKILL;

void setTask(ActualContainer& a, const containerd::TaskInfo& t, const std::string& ns) {
  a.task = taskState(t.state);
  a.pid = t.pid;
  a.exit_status = t.exit_status;
  a.oom_killed = a.task == ActualContainer::Task::kStopped && t.exit_status == kKilledStatus &&
                 oomKills(ns, a.id) > 0;
}

}  // namespace

Result<std::vector<ActualContainer>> ContainerdRuntime::list() {
  containerd::ContainerService containers(connection_, scope());
  containerd::TaskService tasks(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(auto all, containers.list({fmt::format("labels.\"{}\"", kAppLabel)}));
  FLEETLET_ASSIGN_OR_RETURN(auto running, tasks.list());
  std::map<std::string, containerd::TaskInfo> task_by_id;
  for (auto& t : running) task_by_id.emplace(t.id, t);
  std::vector<ActualContainer> out;
  out.reserve(all.size());
  for (const auto& c : all) {
    ActualContainer a = toActual(c);
    if (auto it = task_by_id.find(c.id); it != task_by_id.end())
      setTask(a, it->second, options_.ns);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<ActualContainer>> ContainerdRuntime::inspect(
    const std::vector<std::string>& ids) {
  containerd::ContainerService containers(connection_, scope());
  containerd::TaskService tasks(connection_, scope());
  std::vector<ActualContainer> out;
  for (const auto& id : ids) {
    FLEETLET_ASSIGN_OR_RETURN(auto c, containers.get(id));
    if (!c || !c->labels.contains(kAppLabel)) continue;
    ActualContainer a = toActual(*c);
    FLEETLET_ASSIGN_OR_RETURN(auto t, tasks.get(id));
    if (t) setTask(a, *t, options_.ns);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::optional<std::string>> ContainerdRuntime::imageDigest(const std::string& image) {
  FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(image));
  containerd::ImageService images(connection_, scope());
  // For status: answered from what containerd says now, never waiting out its restart (the
  // local API asks this while serving a request).
  constexpr std::chrono::milliseconds kStatusLookup{500};
  FLEETLET_ASSIGN_OR_RETURN(auto existing, images.get(ref.toString(), kStatusLookup));
  if (!existing) return std::optional<std::string>();
  return std::optional<std::string>(existing->target.digest);
}

Result<oci::ImageConfig> ContainerdRuntime::configOf(const containerd::Descriptor& target) {
  constexpr size_t kMaxConfigs = 64;
  {
    std::lock_guard lock(configs_mu_);
    if (auto it = configs_.find(target.digest); it != configs_.end()) return it->second;
  }
  FLEETLET_ASSIGN_OR_RETURN(auto resolved, images_.resolveLocal(target));
  std::lock_guard lock(configs_mu_);
  if (configs_.size() >= kMaxConfigs) configs_.clear();
  configs_.emplace(target.digest, resolved.second);
  return std::move(resolved.second);
}

Result<bool> ContainerdRuntime::hasImage(const manifest::App& app) {
  if (app.runtime == manifest::Runtime::kNative) return true;  // a host binary, no image
  FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(app.image));
  containerd::ImageService images(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(auto existing, images.get(ref.toString()));
  if (!existing) return false;
  // Present but not unpacked: a pull only unpacks (every blob is there).
  auto config = configOf(existing->target);
  if (!config) return false;
  auto chain = oci::chainIds(config->diff_ids);
  if (!chain || chain->empty()) return false;
  containerd::SnapshotService snaps(connection_, scope());
  return snaps.stat(chain->back()).value_or(std::nullopt).has_value();
}

Status ContainerdRuntime::ensureImage(const manifest::App& app, std::stop_token stop) {
  if (app.runtime == manifest::Runtime::kNative) return {};
  FLEETLET_ASSIGN_OR_RETURN(bool present, hasImage(app));
  if (present) return {};
  FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(app.image));
  std::string name = ref.toString();
  registry::RegistryClient client(
      ref.registry(),
      {.plain_http = registry::usesPlainHttp(ref.registry(), options_.plain_http_registries,
                                             options_.https_registries),
       .stall_timeout = options_.pull_stall_timeout,
       .min_bytes_per_second = options_.pull_min_bytes_per_second,
       .deadline = std::chrono::steady_clock::now() + options_.pull_timeout,
       .stop = std::move(stop)});
  image::RegistrySource source(client, ref);
  auto pulled = image::pullImage(source, images_, name, {});
  if (!pulled) {
    Status failed = std::unexpected(pulled.error().wrap("pull {}", name));
    if (options_.on_pull) options_.on_pull(failed, 0);
    return failed;
  }
  if (options_.on_pull) options_.on_pull({}, pulled->fetched_bytes);
  spdlog::info("pulled {} ({} layers, {} bytes fetched)", name, pulled->layers,
               pulled->fetched_bytes);
  return {};
}

Status ContainerdRuntime::create(const manifest::App& app, const std::string& id,
                                 int64_t revision) {
  containerd::ContainerService containers(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(auto existing, containers.get(id));
  if (existing) {
    auto it = existing->labels.find(kSpecHashLabel);
    if (it != existing->labels.end() && it->second == app.spec_hash) return {};
    return fail(ErrorCode::kAlreadyExists, "container {} exists with another spec", id);
  }
  const containerd::Labels labels = {{kAppLabel, app.name},
                                     {kSpecHashLabel, app.spec_hash},
                                     {kRevisionLabel, std::to_string(revision)},
                                     {kStopGraceLabel, std::to_string(app.stop_grace.count())}};
  if (app.runtime == manifest::Runtime::kNative) return createNative(app, id, labels);
  FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(app.image));
  containerd::ImageService images(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(auto image, images.get(ref.toString()));
  if (!image) return fail(ErrorCode::kNotFound, "image {} is not pulled", ref.toString());
  FLEETLET_ASSIGN_OR_RETURN(auto config, configOf(image->target));
  FLEETLET_ASSIGN_OR_RETURN(auto chain, oci::chainIds(config.diff_ids));
  if (chain.empty()) return fail(ErrorCode::kInvalidArgument, "image {} has no layers", app.image);

  FLEETLET_RETURN_IF_ERROR(ensureHostPaths(app, /*rewrite_hosts=*/true));
  const std::filesystem::path volumes_root = volumesRoot(app.name);
  const auto hosts = hostsPath(app.name);
  FLEETLET_ASSIGN_OR_RETURN(auto spec,
                            ocispec::buildSpec(app, config,
                                               {.container_id = id,
                                                .ns = options_.ns,
                                                .volumes_root = volumes_root,
                                                .extra_env = services::serviceEnvironment(app),
                                                .netns_path = netnsPath(app),
                                                .hosts_file = hosts}));

  // Until the container record references it, the snapshot is garbage to containerd's
  // collector: hold a lease across both.
  containerd::LeaseService leases(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(
      auto lease,
      containerd::ScopedLease::create(leases, kCreateLeasePrefix + id, std::chrono::minutes(10)));
  containerd::SnapshotService snaps(connection_, scope(lease.id()));
  auto prepared = snaps.prepare(id, chain.back());
  if (!prepared && prepared.error().code() != ErrorCode::kAlreadyExists) {
    return std::unexpected(prepared.error());
  }
  auto created = containerd::ContainerService(connection_, scope(lease.id()))
                     .create({.id = id,
                              .image = ref.toString(),
                              .labels = labels,
                              .runtime = options_.container_runtime,
                              .spec_json = spec.dump(),
                              .snapshotter = snaps.snapshotter(),
                              .snapshot_key = id});
  if (!created && created.error().code() != ErrorCode::kAlreadyExists) {
    return std::unexpected(created.error());
  }
  return {};
}

std::filesystem::path ContainerdRuntime::stateDir(const std::string& app) const {
  return options_.data_dir / "state" / app;
}

std::filesystem::path ContainerdRuntime::volumesRoot(const std::string& app) const {
  return options_.data_dir / "volumes" / app;
}

std::filesystem::path ContainerdRuntime::hostsPath(const std::string& app) const {
  return options_.data_dir / "hosts" / app;
}

std::optional<std::string> ContainerdRuntime::lostHostPath(const manifest::App& app) {
  for (const auto& v : app.volumes) {
    const auto dir = volumesRoot(app.name) / v.name;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return dir.string();
  }
  return std::nullopt;
}

Status ContainerdRuntime::ensureHostPaths(const manifest::App& app, bool rewrite_hosts) {
  for (const auto& v : app.volumes) {
    std::error_code ec;
    std::filesystem::create_directories(volumesRoot(app.name) / v.name, ec);
    if (ec) return fail(ErrorCode::kInternal, "create volume {}: {}", v.name, ec.message());
  }
  if (app.runtime == manifest::Runtime::kNative) {
    // The shim makes the state directory and hands it to the app's user; its parent must exist
    // and be private.
    const auto parent = stateDir(app.name).parent_path();
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return fail(ErrorCode::kInternal, "create {}: {}", parent.string(), ec.message());
    return {};
  }
  // /etc/hosts: a new file, then rename (a running container keeps the one it bound).
  const auto hosts = hostsPath(app.name);
  std::error_code ec;
  if (!rewrite_hosts && std::filesystem::exists(hosts, ec)) return {};
  std::filesystem::create_directories(hosts.parent_path(), ec);
  auto tmp = hosts;
  tmp += ".tmp";
  std::ofstream(tmp, std::ios::trunc) << ocispec::hostsFile(app.name);
  std::filesystem::rename(tmp, hosts, ec);
  if (ec) return fail(ErrorCode::kInternal, "write {}: {}", hosts.string(), ec.message());
  return {};
}

Status ContainerdRuntime::createNative(const manifest::App& app, const std::string& id,
                                       const containerd::Labels& labels) {
  FLEETLET_RETURN_IF_ERROR(ensureHostPaths(app, /*rewrite_hosts=*/true));
  const std::filesystem::path volumes_root = volumesRoot(app.name);
  const auto state = stateDir(app.name);
  std::optional<uint32_t> uid;
  if (options_.native_uids != nullptr) {
    // systemd's DynamicUser range, skipping any uid a host account has.
    FLEETLET_ASSIGN_OR_RETURN(
        uid, options_.native_uids->nativeUid(app.name, kFirstNativeUid, kLastNativeUid,
                                             [](uint32_t u) { return ::getpwuid(u) != nullptr; }));
  }
  // A host-network app is told its own host listeners, not the services' shared ones.
  auto service_env = services::serviceEnvironment(app);
  if (hasHostListeners(app)) {
    FLEETLET_ASSIGN_OR_RETURN(
        auto own, options_.services->linkHost(app.name, app.services, hostListenerPorts()));
    for (auto& [name, uri] : own) service_env[name] = std::move(uri);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto spec, ocispec::buildNativeSpec(app, {.container_id = id,
                                                                      .ns = options_.ns,
                                                                      .volumes_root = volumes_root,
                                                                      .extra_env = service_env,
                                                                      .netns_path = netnsPath(app),
                                                                      .state_dir = state,
                                                                      .native_uid = uid}));
  auto created = containerd::ContainerService(connection_, scope())
                     .create({.id = id,
                              .labels = labels,
                              .runtime = containerd::kFleetletRuntime,
                              .spec_json = spec.dump()});
  if (!created && created.error().code() != ErrorCode::kAlreadyExists) {
    return std::unexpected(created.error());
  }
  return {};
}

Result<uint32_t> ContainerdRuntime::start(const manifest::App& app, const std::string& id) {
  containerd::TaskService tasks(connection_, scope());
  FLEETLET_ASSIGN_OR_RETURN(auto task, tasks.get(id));
  if (task && task->state == containerd::TaskInfo::State::kRunning) return task->pid;
  if (task && task->state == containerd::TaskInfo::State::kStopped) {
    FLEETLET_RETURN_IF_ERROR(okIfNotFound(discardValue(tasks.remove(id))));
    task.reset();
  }
  if (!task) {
    // What the container binds from the host, again: a container an earlier fleetletd created
    // must start after this node lost its data directory (or a volume was removed by hand).
    FLEETLET_RETURN_IF_ERROR(ensureHostPaths(app, /*rewrite_hosts=*/false));
    // The app's network is made (or brought up to date) before its task joins it.
    if (options_.networks != nullptr && joinsAppNetwork(app)) {
      FLEETLET_RETURN_IF_ERROR(options_.networks->attach(app));
    }
    FLEETLET_RETURN_IF_ERROR(refresh(app));
    std::vector<containerd::Mount> mounts;  // a native app runs on the host's root
    if (app.runtime == manifest::Runtime::kContainer) {
      containerd::SnapshotService snaps(connection_, scope());
      FLEETLET_ASSIGN_OR_RETURN(mounts, snaps.mounts(id));
    }
    containerd::TaskIo io;
    if (options_.task_io) {
      FLEETLET_ASSIGN_OR_RETURN(io, options_.task_io(app.name));
    } else {
      std::error_code ec;
      std::filesystem::create_directories(logDir(app.name), ec);
      FLEETLET_ASSIGN_OR_RETURN(io, containerd::fileIo((logDir(app.name) / "stdout.log").string(),
                                                       (logDir(app.name) / "stderr.log").string()));
    }
    auto created = tasks.create(id, mounts, io);
    if (!created && created.error().code() != ErrorCode::kAlreadyExists) {
      const bool container_app = app.runtime == manifest::Runtime::kContainer;
      return std::unexpected(explainMissingShim(
          created.error(),
          container_app ? options_.container_runtime : std::string(containerd::kFleetletRuntime),
          container_app));
    }
  }
  return tasks.start(id);
}

Status ContainerdRuntime::stop(const std::string& id, std::chrono::milliseconds grace) {
  containerd::TaskService tasks(connection_, scope());
  auto stopped = [&]() -> Result<bool> {
    FLEETLET_ASSIGN_OR_RETURN(auto t, tasks.get(id));
    return !t || t->state == containerd::TaskInfo::State::kStopped;
  };
  auto waitStopped = [&](std::chrono::milliseconds limit) -> Result<bool> {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      FLEETLET_ASSIGN_OR_RETURN(bool done, stopped());
      if (done || std::chrono::steady_clock::now() >= deadline) return done;
      std::this_thread::sleep_for(kPoll);
    }
  };
  FLEETLET_ASSIGN_OR_RETURN(bool done, stopped());
  if (done) return {};
  FLEETLET_RETURN_IF_ERROR(okIfNotFound(tasks.kill(id, SIGTERM)));
  FLEETLET_ASSIGN_OR_RETURN(done, waitStopped(grace));
  if (done) return {};
  spdlog::info("{} did not stop within {} ms of SIGTERM: SIGKILL", id, grace.count());
  FLEETLET_RETURN_IF_ERROR(okIfNotFound(tasks.kill(id, SIGKILL, /*all=*/true)));
  FLEETLET_ASSIGN_OR_RETURN(done, waitStopped(kKillWait));
  if (!done) return fail(ErrorCode::kUnavailable, "{} still runs after SIGKILL", id);
  return {};
}

Status ContainerdRuntime::remove(const std::string& id) {
  FLEETLET_RETURN_IF_ERROR(stop(id, std::chrono::milliseconds(0)));
  containerd::TaskService tasks(connection_, scope());
  FLEETLET_RETURN_IF_ERROR(okIfNotFound(discardValue(tasks.remove(id))));
  // The snapshot goes while the container record still protects it from the collector.
  containerd::SnapshotService snaps(connection_, scope());
  FLEETLET_RETURN_IF_ERROR(okIfNotFound(snaps.remove(id)));
  containerd::ContainerService containers(connection_, scope());
  return okIfNotFound(containers.remove(id));
}

bool ContainerdRuntime::hasHostListeners(const manifest::App& app) const {
  return options_.services != nullptr && app.runtime == manifest::Runtime::kNative &&
         !app.services.empty() && netnsPath(app).empty() &&
         !(app.sandbox && app.sandbox->level == manifest::SandboxLevel::kContained);
}

std::filesystem::path ContainerdRuntime::hostListenerPorts() const {
  return options_.data_dir / "host-listeners";
}

Status ContainerdRuntime::refresh(const manifest::App& app) {
  // A running task whose namespace lost its attachment record with the data directory
  // (AppNetworks::forgotten): attached again in place; the task keeps running and gets a new
  // interface, with an address IPAM knows.
  if (options_.networks != nullptr && !netnsPath(app).empty() &&
      options_.networks->forgotten(app.name)) {
    FLEETLET_RETURN_IF_ERROR(options_.networks->attach(app));
  }
  if (hasHostListeners(app)) {
    // Again on the recorded ports (after a fleetletd restart: beside the services' copies).
    return discardValue(options_.services->linkHost(app.name, app.services, hostListenerPorts()));
  }
  const std::string netns = netnsPath(app);
  if (options_.services == nullptr || netns.empty()) return {};
  return options_.services->link(app.name, app.services, netns);
}

bool ContainerdRuntime::joinsAppNetwork(const manifest::App& app) {
  // A native app has a network of its own only at the contained level.
  if (app.runtime == manifest::Runtime::kNative) {
    return app.sandbox && app.sandbox->level == manifest::SandboxLevel::kContained &&
           app.network.mode != manifest::Network::Mode::kHost;
  }
  return true;  // a container in host mode: attach() records that it has none
}

std::string ContainerdRuntime::netnsPath(const manifest::App& app) const {
  if (options_.networks == nullptr || app.network.mode == manifest::Network::Mode::kHost ||
      !joinsAppNetwork(app)) {
    return {};
  }
  return options_.networks->netnsPath(app.name).string();
}

void ContainerdRuntime::pruneAppData(const std::set<std::string>& live) {
  // Listeners first (a listener keeps its namespace alive), then the networks: an app that is
  // gone has no container left to use them.
  if (options_.services != nullptr) options_.services->gc(live);
  std::error_code ports_ec;
  for (const auto& f : std::filesystem::directory_iterator(hostListenerPorts(), ports_ec)) {
    if (!live.contains(f.path().filename().string())) std::filesystem::remove(f.path(), ports_ec);
  }
  if (options_.networks != nullptr) options_.networks->gc(live);
  if (options_.native_uids != nullptr) {
    if (auto st = options_.native_uids->releaseNativeUids(live); !st) {
      spdlog::warn("native uids: {}", st.error().message());
    }
  }
  std::error_code hosts_ec;
  for (const auto& f : std::filesystem::directory_iterator(options_.data_dir / "hosts", hosts_ec)) {
    if (!live.contains(f.path().filename().string())) std::filesystem::remove(f.path(), hosts_ec);
  }
  const auto root = options_.data_dir / "logs";
  std::error_code ec;
  std::filesystem::directory_iterator it(root, ec);
  if (ec) return;  // no app has logged yet
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& entry : it) {
    const std::string app = entry.path().filename().string();
    if (live.contains(app) || !entry.is_directory(ec)) continue;
    // The newest write to any of its files: logs still being read or written stay.
    auto newest = entry.last_write_time(ec);
    for (const auto& file : std::filesystem::directory_iterator(entry.path(), ec)) {
      newest = std::max(newest, file.last_write_time(ec));
    }
    if (ec || now - newest < options_.removed_log_retention) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) {
      spdlog::warn("logs of removed app {}: {}", app, ec.message());
    } else {
      spdlog::info("deleted the logs of removed app {}", app);
    }
  }
}

}  // namespace fleetlet::reconcile
