#pragma once
// What the reconciler knows about the node: the containers fleetlet created (read back from
// containerd through their labels, so it survives any crash) and the per-app restart state
// it keeps in its store.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fleetlet::reconcile {

using Clock = std::chrono::system_clock;

// Labels on every container fleetletd creates (namespace given by --namespace).
inline constexpr char kAppLabel[] = "fleetlet.io/app";
inline constexpr char kRevisionLabel[] = "fleetlet.io/revision";
inline constexpr char kSpecHashLabel[] = "fleetlet.io/spec-hash";
// The spec's stop grace in milliseconds: a container stops with the grace it was created with,
// whatever the manifest says now.
inline constexpr char kStopGraceLabel[] = "fleetlet.io/stop-grace-ms";

// One container of an app as containerd reports it.
struct ActualContainer {
  std::string app;
  std::string id;
  std::string spec_hash;
  int64_t revision = 0;
  enum class Task : std::uint8_t { kNone, kCreated, kRunning, kStopped, kOther } task = Task::kNone;
  uint32_t pid = 0;
  uint32_t exit_status = 0;  // valid when task == kStopped
  bool oom_killed = false;   // stopped, and the kernel's OOM killer killed a process of it
  std::optional<std::chrono::milliseconds> stop_grace;  // from kStopGraceLabel
};

// Restart bookkeeping of one app, kept across fleetletd restarts.
struct AppRuntimeState {
  int restarts = 0;
  std::chrono::milliseconds backoff{0};  // the delay used for the last restart
  std::optional<Clock::time_point> backoff_until;
  std::optional<Clock::time_point> started_at;
  std::optional<int> last_exit_code;
  std::optional<Clock::time_point> last_exit_at;
  std::string last_exit_id;  // "<container id>:<pid>" of the exit already accounted for

  bool operator==(const AppRuntimeState&) const = default;
};

// The container id fleetlet uses for an app with a given spec: stable, so that creating it
// again after a crash finds the existing one instead of making a duplicate.
std::string containerId(const std::string& app, const std::string& spec_hash);

}  // namespace fleetlet::reconcile
