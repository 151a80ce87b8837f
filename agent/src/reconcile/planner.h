#pragma once
// planSteps: the pure heart of reconciliation — from what should run (the manifest) and what
// does run (containerd) to the ordered steps that make the node match. No I/O, no clock of its
// own: unit-tested without containerd.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "manifest/types.h"
#include "reconcile/model.h"

namespace fleetlet::reconcile {

struct Step {
  enum class Kind : std::uint8_t {
    kPull,     // make the app's image available (no-op when present)
    kCreate,   // create container `container_id` for the app's current spec
    kStart,    // create the task if needed and start it
    kRestart,  // delete the stopped/unhealthy task and start a new one (counts as a restart)
    kStop,     // SIGTERM, then SIGKILL after the app's grace period
    kRemove,   // delete task, snapshot and container
  };
  Kind kind;
  std::string app;
  std::string container_id;
  std::string reason;  // for logs and events: "new app", "spec changed", "exited 1", ...

  bool operator==(const Step&) const = default;
};
std::string_view toString(Step::Kind kind);

struct PlanInput {
  const manifest::NodeState* desired = nullptr;  // nullptr: nothing applied yet, touch nothing
  std::vector<ActualContainer> actual;
  std::map<std::string, AppRuntimeState> states;
  std::set<std::string> restart_requested;  // by the user or a failing health check
  Clock::time_point now;
};

struct Plan {
  std::vector<Step> steps;
  // Apps whose stopped task waits for its backoff to end, and when the first one ends.
  std::vector<std::string> waiting;
  std::optional<Clock::time_point> wake_at;
  // Apps fleetlet cannot run (unsupported runtime): app → reason.
  std::map<std::string, std::string> unsupported;
};

// Rules, per desired app in dependency order (manifest start_order):
// - containers of the app with another spec hash are stale: with download-then-kill the image
//   is pulled first, then stale ones stop and go; with kill-then-download they go first;
// - with no container of the current spec: pull, create, start;
// - extra containers of the current spec (after a crash) are removed, keeping a running one;
// - a current container without a running task: created/none → start; stopped → restart per
//   policy (always; on-failure when the exit code is not 0; never: stays down) once
//   states[app].backoff_until has passed, else the app waits;
// - a running task in restart_requested → restart.
// Containers of apps not in the manifest stop and are removed first, in reverse order.
Plan planSteps(const PlanInput& input);

// The delay before the next restart: 1 s, doubling up to 5 min; back to 1 s when the task had
// run for at least 10 min.
std::chrono::milliseconds nextBackoff(std::chrono::milliseconds previous,
                                      std::chrono::milliseconds ran_for);

}  // namespace fleetlet::reconcile
