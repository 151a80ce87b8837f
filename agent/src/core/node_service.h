#pragma once
// NodeService: what fleetletd's local API (agent/src/api) exposes — apply a manifest, read
// app and node status, restart an app, follow node events. Implemented by the agent core on
// top of the reconciler; the API server and its tests see only this interface.
//
// Thread-safety: every method may be called from any thread at any time. Methods do not
// block on containerd except where noted.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::core {

using Clock = std::chrono::system_clock;

struct AppStatus {
  std::string name;
  std::string runtime;  // "container" | "native" | "webview"
  std::string image;
  // "pending" (not worked on yet, or waiting for a dependency: see message), "pulling",
  // "creating", "created", "starting", "running", "stopping", "stopped" (exited, restart
  // imminent), "exited" (stopped, its policy does not restart it), "backoff" (a crash's
  // restart, or a failing step's retry, waits until backoff_until: see message), "failed"
  // (cannot run: unsupported runtime), "paused", "removing" (no longer desired, containers
  // still there).
  std::string state;
  int restarts = 0;
  std::optional<int> last_exit_code;
  std::optional<Clock::time_point> last_exit_at;
  std::optional<Clock::time_point> started_at;  // of the current task
  std::optional<Clock::time_point> backoff_until;
  std::string message;  // the last error or a note, empty when all is well
  std::string container_id;
  std::string spec_hash;
  uint32_t pid = 0;
  bool healthy = true;  // false after a failing health check, until its task is replaced
  // Why its task was last restarted: "exit code N", "oom", "failed health check: <why>" or
  // "manual" (fleetletctl restart); empty when it was not restarted since fleetletd started.
  std::string last_restart_reason;
  // Restarts since fleetletd started, by kind of reason: "exit", "oom", "health", "manual",
  // "other" (restartReasonKind()). Only kinds that happened are present.
  std::map<std::string, int64_t> restarts_by_reason;
  // The digest of its image as containerd resolved it (for a tag: when it was pulled); empty
  // when unknown.
  std::string image_digest;
  // A system app: one of the node's own apps from the system manifest (the node services, the
  // kiosk), which no desired state can change or remove.
  bool system = false;
};

struct NodeEvent {
  // Increasing and gapless within one fleetletd run; after a restart it continues above every
  // seq the previous runs handed out (the next run may skip some). See docs/local-api.md.
  int64_t seq = 0;
  Clock::time_point time;
  std::string app;   // empty for node-wide events
  std::string kind;  // see docs/local-api.md for every kind and its message
  std::string message;
};

// A registration made by NodeService::watchEvents(); destroying it ends the registration.
class EventWatch {
 public:
  virtual ~EventWatch() = default;
};

// An isolated app's network (docs/networking.md): its namespace, addresses and the firewall's
// counters.
struct AppNetworkStatus {
  struct Counter {
    uint64_t packets = 0;
    uint64_t bytes = 0;
  };
  std::string netns;                   // the pinned namespace's path
  std::vector<std::string> addresses;  // "10.90.0.5/16"
  Counter egress;                      // sent off its namespace (refused packets included)
  Counter ingress;                     // sent to it from outside its namespace
  Counter dropped;                     // egress the policy refused
};

struct AppDetail {
  AppStatus status;
  std::optional<AppNetworkStatus> network;  // absent: not attached (mode host, not started)
  Json spec;                                // the app as the manifest gives it (canonical JSON)
  std::vector<NodeEvent> recent_events;
  // runtime: webview: the kiosk's status of the app (url, loadState, heartbeatAgeMs,
  // memoryMiB, failures, lastFailure, ...; docs/webview.md "The control socket"); null for
  // other runtimes or when the kiosk does not answer.
  Json screen;
};

struct FailedRevision {
  int64_t revision = 0;
  std::string reason;  // why it was rolled back
};

// A revision inside its rollback window (docs/cloud.md, "Rollback").
struct RollbackWindow {
  int64_t revision = 0;
  int64_t back_to = 0;  // what a failure rolls back to
  Clock::time_point until;
};

struct NodeStatus {
  int64_t desired_revision = 0;    // the manifest the node works towards (after a rollback: the
                                   // last good one again)
  int64_t applied_revision = 0;    // newest revision the node fully converged to
  int64_t last_good_revision = 0;  // last revision that converged without errors
  bool converged = false;
  std::vector<std::string> errors;                // app-level errors of the current revision
  std::vector<FailedRevision> failed;             // rolled back, newest first (docs/cloud.md)
  std::optional<RollbackWindow> rollback_window;  // the revision being watched, if any
};

struct ApplyResult {
  int64_t revision = 0;
  int apps = 0;
  // The cloud served the manifest the node already accepted (after a restart the ETag is
  // forgotten): nothing changed and nothing was recorded.
  bool unchanged = false;
};

class NodeService {
 public:
  virtual ~NodeService() = default;

  // Validates and accepts a manifest (YAML or JSON). kInvalidArgument naming the field for a
  // bad manifest; kFailedPrecondition "revision N is not newer than the applied revision M"
  // for an old or equal revision. A rejected manifest changes nothing. Returns once the
  // manifest is durably stored; convergence continues in the background.
  virtual Result<ApplyResult> apply(std::string_view manifest_text, std::string_view source) = 0;
  virtual Result<std::vector<AppStatus>> apps() = 0;
  // kNotFound when the app is neither desired nor running.
  virtual Result<AppDetail> describe(std::string_view app) = 0;
  // Restarts the app's task now (resets nothing else). kNotFound for an unknown app.
  virtual Status restart(std::string_view app) = 0;
  virtual Result<NodeStatus> status() = 0;
  // The events kept in memory with seq > after_seq, oldest first, at most `limit`. Never
  // blocks (it copies from memory under a short lock), so it may run on an event loop.
  virtual std::vector<NodeEvent> events(int64_t after_seq, size_t limit) = 0;
  // Calls `wake` after each new event is recorded (and visible to events()), until the
  // returned watch is destroyed; once its destructor returns, `wake` is not running and will
  // not run again. `wake` runs on the recording thread while the service holds a lock: it
  // must return at once (e.g. post to an event loop) and must not call the service.
  virtual std::unique_ptr<EventWatch> watchEvents(std::function<void()> wake) = 0;
  // The directory holding the app's stdout/stderr logs (see agent/src/logs). kInvalidArgument
  // for a name manifest::checkAppName() refuses; kNotFound for an app never run on this node.
  virtual Result<std::filesystem::path> logDir(std::string_view app) = 0;
  // Where `fleetletctl logs APP` reads: logDir(app), all of it, by default. An app that has no
  // log of its own (runtime: webview) may be read from another's: `only` then names what an
  // entry's text contains when it is about the app. Errors as logDir's.
  struct LogSource {
    std::filesystem::path dir;
    std::string only;  // empty: every entry
  };
  virtual Result<LogSource> logSource(std::string_view app);

  // runtime: webview (docs/webview.md). A PNG of what the kiosk shows for `app` (the app on
  // screen when empty); show() puts the app on screen. kFailedPrecondition when this node
  // shows no apps (no display), kNotFound when the kiosk has no such app. May block (≤ 10 s).
  virtual Result<std::string> screenshot(std::string_view app);
  virtual Status show(std::string_view app);
};

// The kind of a restart reason (AppStatus::last_restart_reason) for counting: "exit" (exit
// code N), "oom", "health" (failed health check), "manual", or "other".
std::string restartReasonKind(std::string_view reason);

// What screenshot() and show() answer on a node without a display.
inline Error noDisplayError() {
  return Error(ErrorCode::kFailedPrecondition, "this node shows no apps (no display configured)");
}
inline Result<std::string> NodeService::screenshot(std::string_view /*app*/) {
  return std::unexpected(noDisplayError());
}
inline Status NodeService::show(std::string_view /*app*/) {
  return std::unexpected(noDisplayError());
}
inline Result<NodeService::LogSource> NodeService::logSource(std::string_view app) {
  FLEETLET_ASSIGN_OR_RETURN(auto dir, logDir(app));
  return LogSource{.dir = std::move(dir), .only = {}};
}

}  // namespace fleetlet::core
