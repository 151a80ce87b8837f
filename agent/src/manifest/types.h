#pragma once
// The desired state of a node (manifest v1, kind NodeState) as plain values.
//
// Produced only by parseNodeState() (parse.h), which validates everything: a NodeState that
// exists is valid (names, quantities, ports, dependencies without cycles). Values are
// immutable after parsing and safe to share between threads.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetlet::manifest {

enum class Runtime : std::uint8_t { kContainer, kNative, kWebview };
enum class RestartPolicy : std::uint8_t { kAlways, kOnFailure, kNever };
// download-then-kill: pull the new image while the old app runs (default); kill-then-download:
// stop first, for devices whose disk holds one copy only.
enum class UpdateStrategy : std::uint8_t { kDownloadThenKill, kKillThenDownload };

struct Resources {
  std::optional<double> cpu;            // cores, e.g. 0.5
  std::optional<int64_t> memory_bytes;  // from "64Mi", "1G", ...
  std::optional<int64_t> pids;
};

struct HealthCheck {
  enum class Kind : std::uint8_t { kHttp, kTcp, kExec } kind = Kind::kHttp;
  uint16_t port = 0;                 // http, tcp
  std::string path = "/";            // http
  std::vector<std::string> command;  // exec
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds timeout{2000};
  int failures = 3;  // consecutive failures that restart the app
};

struct ExposedPort {
  uint16_t port = 0;       // in the app
  uint16_t host_port = 0;  // on the node
  std::string protocol = "tcp";
};

struct Network {
  // Where the app may open connections (docs/networking.md): anywhere, only the node's own
  // networks (other apps, the node's directly connected networks), or nowhere.
  enum class Egress : std::uint8_t { kAll, kLocal, kNone } egress = Egress::kAll;
  // Destinations opened on top of `egress`: app names of this manifest (resolved to their
  // addresses by fleetletd) or CIDRs ("10.1.0.0/16"; a bare address means one host). Sorted,
  // without duplicates.
  std::vector<std::string> allow;
  // kIsolated: a network namespace of its own on the fleetlet bridge (CNI). kHost: the
  // node's namespace; `egress`, `allow` and `expose` do not apply and must not be set.
  enum class Mode : std::uint8_t { kIsolated, kHost } mode = Mode::kIsolated;
  std::vector<ExposedPort> expose;
};

struct Volume {
  std::string name;  // a directory under the data dir, kept across updates
  std::string path;  // where it appears in the app
  bool read_only = false;
};

// A host directory bind-mounted into a container. Never read from a manifest: fleetletd gives
// its own system apps (manifests/system/) the handoff directory this way.
struct HostMount {
  std::string source;  // absolute host path
  std::string path;    // absolute path in the container
};

struct NativeExec {
  std::string path;
  std::vector<std::string> args;
};

// runtime: native: how much the app is isolated (docs/runtimes.md, "Sandbox levels"); the
// shim (runtime-shim/) enforces it. kProcess: a plain host process with limits; kSandboxed:
// + own user, no privileges, seccomp, read-only host, private /tmp and /dev; kContained: + its
// own network, IPC and UTS namespaces.
enum class SandboxLevel : std::uint8_t { kProcess, kSandboxed, kContained };
std::string_view toString(SandboxLevel level);

struct Sandbox {
  SandboxLevel level = SandboxLevel::kSandboxed;
  // Capabilities the app keeps although it runs as its own non-root user (ambient), e.g.
  // CAP_NET_BIND_SERVICE. Sorted, without duplicates.
  std::vector<std::string> capabilities;
  bool operator==(const Sandbox&) const = default;
};

struct Bundle {
  std::string url;
  std::string sha256;
};

// runtime: webview: how the app competes for the screen (docs/webview.md, "Which app is
// shown"). The highest priority is shown; among equals, the latest applied.
struct Display {
  int64_t priority = 0;  // 0..1000
  bool operator==(const Display&) const = default;
};

struct App {
  std::string name;  // the key in `apps`: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 chars
  Runtime runtime = Runtime::kContainer;
  std::string image;              // container: a reference (tag or @sha256 digest)
  std::vector<std::string> args;  // container: replaces the image's entrypoint+cmd when set
  std::map<std::string, std::string> env;
  std::string user;         // "uid[:gid]" or empty for the image's
  std::string working_dir;  // empty for the image's
  Resources resources;
  RestartPolicy restart = RestartPolicy::kAlways;
  std::optional<HealthCheck> health;
  std::vector<std::string> services;  // "events", "blobs", "logs"
  Network network;
  std::vector<Volume> volumes;
  std::vector<std::string> depends_on;
  UpdateStrategy update = UpdateStrategy::kDownloadThenKill;
  std::chrono::milliseconds stop_grace{10000};  // SIGTERM → SIGKILL
  std::optional<NativeExec> exec;               // native
  // native: the manifest's `sandbox`; unset means the default (sandboxed) and keeps the spec
  // hash of apps written before the key existed.
  std::optional<Sandbox> sandbox;
  std::optional<Bundle> bundle;  // webview
  // Set by fleetletd for system apps only (never by the parser); not part of canonicalJson.
  std::vector<HostMount> host_mounts;
  std::optional<Display> display;  // webview
  // sha256 hex of the app's canonical JSON (every field above): two apps with the same hash
  // run the same way. Recorded on containers as the fleetlet.io/spec-hash label.
  std::string spec_hash;
};

struct NodeState {
  int64_t revision = 0;  // strictly increasing across applies
  // The node this state is for (its node id); a manifest that names another node is refused
  // (docs/cloud.md). Empty when the manifest does not say.
  std::string node;
  // After this instant the manifest is stale and refused (TUF's freeze attack).
  std::optional<std::chrono::system_clock::time_point> expires;
  // rollback.window: within this long after applying this revision, an app it changed that
  // fails (a step error, 3 exits, a failed health check) rolls the node back to the revision
  // that was last good when it was applied. Unset: no automatic rollback.
  std::optional<std::chrono::milliseconds> rollback_window;
  std::map<std::string, App> apps;
  // Apps in an order where every app comes after the apps it depends on (ties by name).
  std::vector<std::string> start_order;
};

}  // namespace fleetlet::manifest
