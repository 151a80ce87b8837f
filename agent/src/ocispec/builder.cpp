// The spec mirrors containerd 1.6's populateDefaultUnixSpec (what `ctr oci spec` prints) plus
// the options `ctr run` adds (WithDefaultUnixDevices, WithImageConfigArgs), then fleetlet's
// hostname, limits and volumes. No file of the image is read: a user must be numeric, and no
// supplementary groups are looked up in the image's /etc/group.

#include "ocispec/builder.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetlet::ocispec {
namespace {

constexpr std::string_view kOciVersion = "1.0.2-dev";
constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int64_t kCpuPeriod = 100000;  // microseconds, as containerd's WithCPUs

Json defaultCapabilities() {
  return Json::array({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                      "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"});
}

Json mount(std::string_view destination, std::string_view type, std::string_view source,
           std::initializer_list<std::string_view> options) {
  Json opts = Json::array();
  for (auto o : options) opts.push_back(o);
  return {{"destination", destination}, {"type", type}, {"source", source}, {"options", opts}};
}

Json defaultMounts() {
  return Json::array({
      mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
  });
}

// Deny every device, then allow what WithDefaultUnixDevices allows: null, random, full, tty,
// zero, urandom, console, /dev/pts/*, ptmx.
Json defaultDeviceRules() {
  Json rules = Json::array({{{"allow", false}, {"access", "rwm"}}});
  auto allow = [&](int64_t major, std::optional<int64_t> minor) {
    Json rule = {{"allow", true}, {"type", "c"}, {"major", major}, {"access", "rwm"}};
    if (minor) rule["minor"] = *minor;
    rules.push_back(std::move(rule));
  };
  allow(1, 3);
  allow(1, 8);
  allow(1, 7);
  allow(5, 0);
  allow(1, 5);
  allow(1, 9);
  allow(5, 1);
  allow(136, std::nullopt);
  allow(5, 2);
  return rules;
}

Json maskedPaths() {
  return Json::array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                      "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
}

Json readonlyPaths() {
  return Json::array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
}

// "NAME=value" -> "NAME"; an entry without '=' is its own key.
std::string_view envKey(std::string_view entry) { return entry.substr(0, entry.find('=')); }

// Sets `key` in place when present (keeping its position), else appends it.
void setEnv(std::vector<std::string>& env, std::string_view key, std::string_view value) {
  std::string entry = fmt::format("{}={}", key, value);
  for (auto& e : env) {
    if (envKey(e) == key) {
      e = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

std::optional<uint32_t> parseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFEu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// "uid" or "uid:gid" (gid 0 when absent, since the image's /etc/passwd is not read).
Result<Json> parseUser(std::string_view user, std::string_view from, std::string_view app) {
  if (user.empty()) return Json{{"uid", 0}, {"gid", 0}};
  const size_t colon = user.find(':');
  auto uid = parseId(user.substr(0, colon));
  std::optional<uint32_t> gid = 0;
  if (colon != std::string_view::npos) gid = parseId(user.substr(colon + 1));
  if (!uid || !gid) {
    return fail(ErrorCode::kInvalidArgument,
                "app {}: user \"{}\" from {} is not numeric uid[:gid]; user names cannot be "
                "resolved, set apps.{}.user",
                app, user, from, app);
  }
  return Json{{"uid", *uid}, {"gid", *gid}};
}

bool validId(std::string_view id) {
  return !id.empty() && id != "." && id != ".." && id.find('/') == std::string_view::npos &&
         id.find('\0') == std::string_view::npos;
}

// A bind mount per volume, from <volumes_root>/<name>.
Status addVolumes(const manifest::App& app, const SpecInputs& inputs, Json& mounts) {
  if (!app.volumes.empty() && !inputs.volumes_root.is_absolute()) {
    return fail(ErrorCode::kInvalidArgument, "app {}: volumes_root \"{}\" must be an absolute path",
                app.name, inputs.volumes_root.string());
  }
  for (const auto& volume : app.volumes) {
    mounts.push_back(mount(volume.path, "bind", (inputs.volumes_root / volume.name).string(),
                           {"rbind", volume.read_only ? "ro" : "rw"}));
  }
  return {};
}

// linux.resources from the manifest: cpu → quota/period, memory and pids limits.
void addLimits(const manifest::Resources& limits, Json& resources) {
  if (limits.cpu) {
    const auto quota = static_cast<int64_t>(std::llround(*limits.cpu * kCpuPeriod));
    resources["cpu"] = {{"quota", quota}, {"period", kCpuPeriod}};
  }
  if (limits.memory_bytes) resources["memory"] = {{"limit", *limits.memory_bytes}};
  if (limits.pids) resources["pids"] = {{"limit", *limits.pids}};
}

}  // namespace

std::string hostsFile(const std::string& hostname) {
  return fmt::format(
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n", hostname);
}

Result<Json> buildSpec(const manifest::App& app, const oci::ImageConfig& image,
                       const SpecInputs& inputs) {
  if (app.runtime != manifest::Runtime::kContainer) {
    return fail(ErrorCode::kInvalidArgument, "app {}: only container apps have an OCI spec",
                app.name);
  }
  if (!validId(inputs.container_id) || !validId(inputs.ns)) {
    return fail(ErrorCode::kInvalidArgument,
                "app {}: container id \"{}\" and namespace \"{}\" must be non-empty names "
                "without '/'",
                app.name, inputs.container_id, inputs.ns);
  }

  // process.args: the manifest's args replace the image's entrypoint and cmd.
  std::vector<std::string> args = app.args;
  if (args.empty()) {
    args = image.entrypoint;
    args.insert(args.end(), image.cmd.begin(), image.cmd.end());
  }
  if (args.empty()) {
    return fail(ErrorCode::kInvalidArgument,
                "app {}: no command: the manifest sets no args and the image has no entrypoint "
                "or cmd",
                app.name);
  }

  // process.env: the image's (a default PATH when it has none), then the agent's, then the
  // app's, each replacing earlier values of the same name in place.
  std::vector<std::string> env = image.env;
  bool has_path = false;
  for (const auto& e : env) has_path = has_path || envKey(e) == "PATH";
  if (!has_path) env.insert(env.begin(), std::string(kDefaultPath));
  for (const auto& [key, value] : inputs.extra_env) setEnv(env, key, value);
  for (const auto& [key, value] : app.env) setEnv(env, key, value);

  const std::string cwd = !app.working_dir.empty()     ? app.working_dir
                          : !image.working_dir.empty() ? image.working_dir
                                                       : std::string("/");

  Json user;
  if (!app.user.empty()) {
    FLEETLET_ASSIGN_OR_RETURN(user, parseUser(app.user, "the manifest", app.name));
  } else {
    FLEETLET_ASSIGN_OR_RETURN(user, parseUser(image.user, "the image config", app.name));
  }

  Json process = {
      {"terminal", false},
      {"user", user},
      {"args", args},
      {"env", env},
      {"cwd", cwd},
      {"capabilities",
       {{"bounding", defaultCapabilities()},
        {"effective", defaultCapabilities()},
        {"permitted", defaultCapabilities()}}},
      {"rlimits", Json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
      {"noNewPrivileges", true},
  };

  Json mounts = defaultMounts();
  FLEETLET_RETURN_IF_ERROR(addVolumes(app, inputs, mounts));
  for (const auto& m : app.host_mounts) {
    mounts.push_back(mount(m.path, "bind", m.source, {"rbind", "rw"}));
  }
  if (!inputs.hosts_file.empty()) {
    mounts.push_back(mount("/etc/hosts", "bind", inputs.hosts_file.string(), {"rbind", "ro"}));
  }

  Json resources = {{"devices", defaultDeviceRules()}};
  addLimits(app.resources, resources);

  Json namespaces =
      Json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}});
  // mode host: the node's own network namespace, so no entry at all.
  if (app.network.mode != manifest::Network::Mode::kHost) {
    Json network = {{"type", "network"}};
    if (!inputs.netns_path.empty()) network["path"] = inputs.netns_path;
    namespaces.push_back(std::move(network));
  }

  return Json{
      {"ociVersion", kOciVersion},
      {"process", std::move(process)},
      {"root", {{"path", "rootfs"}}},
      {"hostname", app.name},
      {"mounts", std::move(mounts)},
      {"linux",
       {{"resources", std::move(resources)},
        {"cgroupsPath", fmt::format("/{}/{}", inputs.ns, inputs.container_id)},
        {"namespaces", std::move(namespaces)},
        {"maskedPaths", maskedPaths()},
        {"readonlyPaths", readonlyPaths()}}},
  };
}

Result<Json> buildNativeSpec(const manifest::App& app, const SpecInputs& inputs) {
  if (app.runtime != manifest::Runtime::kNative || !app.exec) {
    return fail(ErrorCode::kInvalidArgument, "app {}: not a native app with exec", app.name);
  }
  if (!validId(inputs.container_id) || !validId(inputs.ns)) {
    return fail(ErrorCode::kInvalidArgument,
                "app {}: container id \"{}\" and namespace \"{}\" must be non-empty names "
                "without '/'",
                app.name, inputs.container_id, inputs.ns);
  }
  const manifest::SandboxLevel level =
      app.sandbox ? app.sandbox->level : manifest::SandboxLevel::kSandboxed;

  std::vector<std::string> args = {app.exec->path};
  args.insert(args.end(), app.exec->args.begin(), app.exec->args.end());

  std::vector<std::string> env = {std::string(kDefaultPath)};
  for (const auto& [key, value] : inputs.extra_env) setEnv(env, key, value);
  for (const auto& [key, value] : app.env) setEnv(env, key, value);
  // At the process level the shim binds nothing: the directory is the host's own.
  if (!inputs.state_dir.empty() && level == manifest::SandboxLevel::kProcess) {
    setEnv(env, "STATE_DIRECTORY", inputs.state_dir.string());
  }

  Json user = {{"uid", 0}, {"gid", 0}};
  if (!app.user.empty()) {
    FLEETLET_ASSIGN_OR_RETURN(user, parseUser(app.user, "the manifest", app.name));
  } else if (inputs.native_uid && level != manifest::SandboxLevel::kProcess) {
    user = {{"uid", *inputs.native_uid}, {"gid", *inputs.native_uid}};
  }

  // The app's listed capabilities are ambient (kept by a non-root user) and in every set.
  Json caps = defaultCapabilities();
  Json listed = Json::array();
  if (app.sandbox) {
    for (const auto& c : app.sandbox->capabilities) {
      listed.push_back(c);
      if (std::find(caps.begin(), caps.end(), Json(c)) == caps.end()) caps.push_back(c);
    }
  }
  Json capabilities = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  if (!listed.empty()) {
    capabilities["inheritable"] = listed;
    capabilities["ambient"] = listed;
  }
  Json process = {
      {"terminal", false},
      {"user", user},
      {"args", args},
      {"env", env},
      {"cwd", app.working_dir.empty() ? std::string("/") : app.working_dir},
      {"capabilities", std::move(capabilities)},
      {"rlimits", Json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
      {"noNewPrivileges", true},
  };

  Json mounts = Json::array();
  FLEETLET_RETURN_IF_ERROR(addVolumes(app, inputs, mounts));

  Json resources = Json::object();
  addLimits(app.resources, resources);

  Json linux = {{"resources", std::move(resources)},
                {"cgroupsPath", fmt::format("/{}/{}", inputs.ns, inputs.container_id)}};
  if (level == manifest::SandboxLevel::kContained && !inputs.netns_path.empty()) {
    linux["namespaces"] = Json::array({{{"type", "network"}, {"path", inputs.netns_path}}});
  }
  Json annotations = {{kSandboxAnnotation, manifest::toString(level)}};
  if (!inputs.state_dir.empty()) annotations[kStateDirAnnotation] = inputs.state_dir.string();

  return Json{
      {"ociVersion", kOciVersion},   {"process", std::move(process)},
      {"root", {{"path", "/"}}},     {"hostname", app.name},
      {"mounts", std::move(mounts)}, {"annotations", std::move(annotations)},
      {"linux", std::move(linux)},
  };
}

}  // namespace fleetlet::ocispec
