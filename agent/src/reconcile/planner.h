#pragma once
// planApp: the pure heart of reconciliation — from what should run for one app (its manifest
// entry) and what does run (its containers in containerd) to the ordered steps that make them
// match. No I/O, no clock of its own: unit-tested without containerd.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "manifest/types.h"
#include "reconcile/model.h"
#include "reconcile/restart_backoff.h"  // nextBackoff: the delay of a restart

namespace fleetlet::reconcile {

struct Step {
  enum class Kind : std::uint8_t {
    kPull,     // make the app's image available (no-op when present)
    kCreate,   // create container `container_id` for the app's current spec
    kStart,    // create the task if needed and start it
    kRestart,  // delete the stopped/unhealthy task and start a new one (counts as a restart)
    kStop,     // SIGTERM, then SIGKILL after `grace`
    kRemove,   // delete task, snapshot and container
  };
  Kind kind;
  std::string app;
  std::string container_id;
  std::string reason;  // for logs and events: "new app", "spec changed", "exited 1", ...
  // kStop: how long SIGTERM gets before SIGKILL — the grace of the spec the container runs.
  std::chrono::milliseconds grace{0};

  bool operator==(const Step&) const = default;
};
std::string_view toString(Step::Kind kind);

// The stop grace used for a container that carries no grace label (made by an older fleetletd)
// and whose app is no longer desired.
inline constexpr std::chrono::milliseconds kDefaultStopGrace{10000};

struct AppPlanInput {
  std::string name;
  const manifest::App* app = nullptr;   // nullptr: not desired; its containers go
  std::vector<ActualContainer> actual;  // the app's containers
  AppRuntimeState state;
  bool restart_requested = false;            // by the user or a failing health check
  std::string restart_reason = "requested";  // why, for the restart step (and its event)
  // A host directory the running task binds that is gone (ContainerRuntime::lostHostPath).
  std::optional<std::string> lost_host_path;
  Clock::time_point now;
};

struct AppPlan {
  std::vector<Step> steps;
  // Set when the app's stopped task waits for its restart backoff to end.
  std::optional<Clock::time_point> wait_until;
  // Set when fleetlet cannot run the app (unsupported runtime): why.
  std::optional<std::string> unsupported;
  // Old containers (a replaced spec) whose task had exited: started again, like the old ones
  // the steps stop, should the replacement fail to start.
  std::vector<std::string> revert;
};

// Rules:
// - an app that is not desired: every container stops (with the grace it was created with) and
//   is removed;
// - containers of the app with another spec hash are stale. With download-then-kill the new
//   version is pulled and created while the old one runs, the old one stops, the new one
//   starts, and only then are the old ones removed — so a new version that fails to start
//   leaves the old one in place (the executor starts it again). With kill-then-download stale
//   ones stop and go first;
// - with no container of the current spec: pull, create, start;
// - extra containers of the current spec (after a crash) are removed, keeping a running one;
// - a current container without a running task: created/none → start; stopped → restart per
//   policy (always; on-failure when the exit code is not 0; never: stays down) once
//   state.backoff_until has passed, else the app waits;
// - a running task with restart_requested, or whose volume directory on the host is gone
//   (lost_host_path) → restart (start() makes the directory again).
AppPlan planApp(const AppPlanInput& input);

}  // namespace fleetlet::reconcile
