#include "reconcile/planner.h"

#include <algorithm>

namespace fleetlet::reconcile {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{1000};
constexpr std::chrono::milliseconds kMaxBackoff{5 * 60 * 1000};
constexpr std::chrono::milliseconds kStableRun{10 * 60 * 1000};

bool wantsRestart(manifest::RestartPolicy policy, uint32_t exit_status) {
  switch (policy) {
    case manifest::RestartPolicy::kAlways:
      return true;
    case manifest::RestartPolicy::kOnFailure:
      return exit_status != 0;
    case manifest::RestartPolicy::kNever:
      return false;
  }
  return false;
}

// Stop (when a task may run) and remove one container.
void retire(const ActualContainer& c, std::string reason, std::vector<Step>& out) {
  if (c.task == ActualContainer::Task::kRunning || c.task == ActualContainer::Task::kCreated ||
      c.task == ActualContainer::Task::kOther) {
    out.push_back({Step::Kind::kStop, c.app, c.id, reason});
  }
  out.push_back({Step::Kind::kRemove, c.app, c.id, std::move(reason)});
}

}  // namespace

std::string_view toString(Step::Kind kind) {
  switch (kind) {
    case Step::Kind::kPull:
      return "pull";
    case Step::Kind::kCreate:
      return "create";
    case Step::Kind::kStart:
      return "start";
    case Step::Kind::kRestart:
      return "restart";
    case Step::Kind::kStop:
      return "stop";
    case Step::Kind::kRemove:
      return "remove";
  }
  return "?";
}

std::chrono::milliseconds nextBackoff(std::chrono::milliseconds previous,
                                      std::chrono::milliseconds ran_for) {
  if (previous.count() == 0 || ran_for >= kStableRun) return kFirstBackoff;
  return std::min(previous * 2, kMaxBackoff);
}

Plan planSteps(const PlanInput& input) {
  Plan plan;
  if (input.desired == nullptr) return plan;
  const auto& desired = *input.desired;

  std::map<std::string, std::vector<const ActualContainer*>> by_app;
  for (const auto& c : input.actual) by_app[c.app].push_back(&c);

  // Apps that are no longer desired go first, last-started first.
  std::vector<std::string> gone;
  for (const auto& [app, containers] : by_app) {
    if (!desired.apps.contains(app)) gone.push_back(app);
  }
  std::sort(gone.rbegin(), gone.rend());
  for (const auto& app : gone) {
    for (const auto* c : by_app[app]) retire(*c, "not in the manifest", plan.steps);
  }

  for (const auto& name : desired.start_order) {
    const manifest::App& app = desired.apps.at(name);
    if (app.runtime != manifest::Runtime::kContainer) {
      plan.unsupported[name] = "runtime not supported by this fleetletd yet";
      continue;
    }
    const std::string id = containerId(name, app.spec_hash);
    std::vector<const ActualContainer*> stale;
    std::vector<const ActualContainer*> current;
    for (const auto* c : by_app[name])
      (c->spec_hash == app.spec_hash ? current : stale).push_back(c);

    // Of several current containers keep one, preferring a running one.
    std::stable_partition(current.begin(), current.end(), [](const ActualContainer* c) {
      return c->task == ActualContainer::Task::kRunning;
    });
    for (size_t i = 1; i < current.size(); ++i) retire(*current[i], "duplicate", plan.steps);
    const ActualContainer* keep = current.empty() ? nullptr : current.front();

    if (!stale.empty()) {
      bool pull_first = app.update == manifest::UpdateStrategy::kDownloadThenKill;
      if (pull_first && keep == nullptr) {
        plan.steps.push_back({Step::Kind::kPull, name, id, "spec changed"});
      }
      for (const auto* c : stale) retire(*c, "spec changed", plan.steps);
      if (keep == nullptr) {
        if (!pull_first) plan.steps.push_back({Step::Kind::kPull, name, id, "spec changed"});
        plan.steps.push_back({Step::Kind::kCreate, name, id, "spec changed"});
        plan.steps.push_back({Step::Kind::kStart, name, id, "spec changed"});
      }
    } else if (keep == nullptr) {
      plan.steps.push_back({Step::Kind::kPull, name, id, "new app"});
      plan.steps.push_back({Step::Kind::kCreate, name, id, "new app"});
      plan.steps.push_back({Step::Kind::kStart, name, id, "new app"});
    }
    if (keep == nullptr) continue;

    using Task = ActualContainer::Task;
    bool requested = input.restart_requested.contains(name);
    switch (keep->task) {
      case Task::kNone:
      case Task::kCreated:
        plan.steps.push_back({Step::Kind::kStart, name, keep->id, "not running"});
        break;
      case Task::kRunning:
        if (requested) plan.steps.push_back({Step::Kind::kRestart, name, keep->id, "requested"});
        break;
      case Task::kStopped: {
        if (!requested && !wantsRestart(app.restart, keep->exit_status)) break;
        auto st = input.states.find(name);
        std::optional<Clock::time_point> until;
        if (st != input.states.end()) until = st->second.backoff_until;
        if (requested || !until || *until <= input.now) {
          plan.steps.push_back({Step::Kind::kRestart, name, keep->id,
                                requested ? std::string("requested")
                                          : "exited " + std::to_string(keep->exit_status)});
        } else {
          plan.waiting.push_back(name);
          if (!plan.wake_at || *until < *plan.wake_at) plan.wake_at = *until;
        }
        break;
      }
      case Task::kOther:
        break;  // pausing/paused: leave it to the operator
    }
  }
  return plan;
}

}  // namespace fleetlet::reconcile
