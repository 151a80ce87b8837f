#pragma once
// The parts of an OCI runtime spec (the bundle's config.json) that the shim honours, read
// into plain structs. Native mode: root.path is "/" (ctr run --rootfs /), the program is a
// host binary. Everything else in the spec is ignored (documented in docs/runtimes.md).

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::shim {

// How much a native app is isolated (annotation io.fleetlet.sandbox, default kSandboxed):
//   kProcess    a plain host process under the spec's user, in its cgroup, nothing else;
//   kSandboxed  + own unprivileged user, no-new-privileges, no capabilities, seccomp filter,
//               mount namespace with the host read-only, /home and /root hidden, private /tmp,
//               device allow-list;
//   kContained  + its own network, IPC and UTS namespaces (loopback only unless the spec
//               names a network namespace path).
enum class SandboxLevel { kProcess, kSandboxed, kContained };
std::string_view toString(SandboxLevel level);

struct Rlimit {
  int resource = 0;
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

struct BindMount {
  std::filesystem::path source;
  std::filesystem::path destination;
  bool read_only = false;
};

struct Resources {
  std::optional<std::int64_t> memory_limit;  // bytes
  std::optional<std::uint64_t> cpu_shares;
  std::optional<std::int64_t> cpu_quota;    // µs per period
  std::optional<std::uint64_t> cpu_period;  // µs
  std::optional<std::int64_t> pids_limit;
};

struct DeviceNode {
  std::filesystem::path path;  // a host device node, bound into the app's /dev
};

struct NativeSpec {
  std::filesystem::path root;  // resolved against the bundle
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=value"
  std::filesystem::path cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  bool terminal = false;
  bool no_new_privileges = false;
  std::vector<std::string> bounding_caps;  // "CAP_NET_BIND_SERVICE", ...
  // Raised as ambient (and inheritable) capabilities for a non-root user, so the program keeps
  // them across setuid and exec; each must be in the bounding set.
  std::vector<std::string> ambient_caps;
  std::vector<Rlimit> rlimits;
  std::vector<BindMount> binds;
  std::vector<DeviceNode> devices;
  std::string cgroups_path;  // e.g. "/fleetlet/app"; "" = default /<namespace>/<id>
  Resources resources;
  std::optional<std::string> netns_path;
  SandboxLevel level = SandboxLevel::kSandboxed;
  // io.fleetlet.sandbox.state-dir: a host directory made, owned by the app's user and bound
  // read-write at the same path; exported as STATE_DIRECTORY.
  std::optional<std::filesystem::path> state_dir;

  bool native() const { return root == "/"; }
};

// Parses config.json text. kInvalidArgument naming the field for anything malformed.
Result<NativeSpec> parseSpec(std::string_view json, const std::filesystem::path& bundle);
Result<NativeSpec> loadSpec(const std::filesystem::path& bundle);

// An exec process's spec (ExecProcessRequest.spec: runtime-spec's `process` object, JSON),
// read as a bundle's `process` is: args, env, cwd, user, terminal, capabilities, rlimits.
// kInvalidArgument naming the field for anything malformed.
Result<NativeSpec> parseProcessSpec(std::string_view process_json);

// Resources from an Update request's LinuxResources JSON (the Any's value).
Result<Resources> parseResources(std::string_view json);

// The uid a kSandboxed app gets when its spec asks for root: a stable one per
// "<namespace>/<id>" from systemd's DynamicUser range 61184-65519.
uid_t dynamicUid(std::string_view ns, std::string_view id);

}  // namespace fleetlet::shim
