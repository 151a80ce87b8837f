#include "reconcile/planner.h"

#include <algorithm>

namespace fleetlet::reconcile {
namespace {

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

bool mayRun(const ActualContainer& c) {
  return c.task == ActualContainer::Task::kRunning || c.task == ActualContainer::Task::kCreated ||
         c.task == ActualContainer::Task::kOther;
}

// The grace a container stops with: the one it was created with, else the app's current one.
std::chrono::milliseconds graceOf(const ActualContainer& c, const manifest::App* app) {
  if (c.stop_grace) return *c.stop_grace;
  return app != nullptr ? app->stop_grace : kDefaultStopGrace;
}

void stop(const ActualContainer& c, const manifest::App* app, const std::string& reason,
          std::vector<Step>& out) {
  if (mayRun(c)) out.push_back({Step::Kind::kStop, c.app, c.id, reason, graceOf(c, app)});
}

void remove(const ActualContainer& c, const std::string& reason, std::vector<Step>& out) {
  out.push_back({Step::Kind::kRemove, c.app, c.id, reason});
}

// Stop (when a task may run) and remove one container.
void retire(const ActualContainer& c, const manifest::App* app, const std::string& reason,
            std::vector<Step>& out) {
  stop(c, app, reason, out);
  remove(c, reason, out);
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

AppPlan planApp(const AppPlanInput& input) {
  AppPlan plan;
  auto& steps = plan.steps;
  const std::string& name = input.name;
  if (input.app == nullptr) {
    for (const auto& c : input.actual) retire(c, nullptr, "not in the manifest", steps);
    return plan;
  }
  const manifest::App& app = *input.app;
  if (app.runtime == manifest::Runtime::kWebview) {
    plan.unsupported = "runtime not supported by this fleetletd yet";
    return plan;
  }
  const std::string id = containerId(name, app.spec_hash);
  std::vector<const ActualContainer*> stale;
  std::vector<const ActualContainer*> current;
  for (const auto& c : input.actual) (c.spec_hash == app.spec_hash ? current : stale).push_back(&c);

  // Of several current containers keep one, preferring a running one.
  std::stable_partition(current.begin(), current.end(), [](const ActualContainer* c) {
    return c->task == ActualContainer::Task::kRunning;
  });
  for (size_t i = 1; i < current.size(); ++i) retire(*current[i], &app, "duplicate", steps);
  const ActualContainer* keep = current.empty() ? nullptr : current.front();

  const bool replace_in_place = app.update == manifest::UpdateStrategy::kDownloadThenKill;
  if (!stale.empty() && !replace_in_place) {
    for (const auto* c : stale) retire(*c, &app, "spec changed", steps);
  }
  // Until its replacement runs, the old version is kept alive by the restart policy. An old
  // task that exited while the new image is not there yet is restarted now (after its restart
  // backoff) and stopped like a running one once the replacement is ready (`revived` holds
  // those copies, marked running). When the replacement exists already but did not start, an
  // exited old one is only named in `revert`: it starts again should the replacement fail.
  std::vector<ActualContainer> revived;
  revived.reserve(stale.size());
  if (replace_in_place && (keep == nullptr || keep->task != ActualContainer::Task::kRunning)) {
    const auto& until = input.state.backoff_until;
    for (auto*& c : stale) {
      if (c->task != ActualContainer::Task::kStopped || !wantsRestart(app.restart, c->exit_status))
        continue;
      if (keep != nullptr) {
        plan.revert.push_back(c->id);
      } else if (until && *until > input.now) {
        plan.wait_until = *until;
      } else {
        steps.push_back(
            {Step::Kind::kRestart, name, c->id,
             "exited " + std::to_string(c->exit_status) + " while its replacement is not ready"});
        revived.push_back(*c);
        revived.back().task = ActualContainer::Task::kRunning;
        c = &revived.back();
      }
    }
  }
  if (keep == nullptr) {
    const std::string reason = stale.empty() ? "new app" : "spec changed";
    // A native app runs a host binary: there is no image to pull.
    if (app.runtime == manifest::Runtime::kContainer) {
      steps.push_back({Step::Kind::kPull, name, id, reason});
    }
    steps.push_back({Step::Kind::kCreate, name, id, reason});
    if (replace_in_place) {
      for (const auto* c : stale) stop(*c, &app, reason, steps);
    }
    steps.push_back({Step::Kind::kStart, name, id, reason});
    if (replace_in_place) {
      for (const auto* c : stale) remove(*c, reason, steps);
    }
    return plan;
  }
  if (!stale.empty() && replace_in_place) {
    // A replacement created earlier (its start failed, or the agent died in between).
    for (const auto* c : stale) stop(*c, &app, "spec changed", steps);
    if (keep->task != ActualContainer::Task::kRunning) {
      steps.push_back({Step::Kind::kStart, name, keep->id, "spec changed"});
    }
    for (const auto* c : stale) remove(*c, "spec changed", steps);
    return plan;
  }

  using Task = ActualContainer::Task;
  switch (keep->task) {
    case Task::kNone:
    case Task::kCreated:
      steps.push_back({Step::Kind::kStart, name, keep->id, "not running"});
      break;
    case Task::kRunning:
      if (input.restart_requested) {
        // start() leaves a running task alone: stop it first (with its grace).
        stop(*keep, &app, "restart requested", steps);
        steps.push_back({Step::Kind::kRestart, name, keep->id, input.restart_reason});
      } else if (input.lost_host_path) {
        const std::string why = "its volume " + *input.lost_host_path + " is gone";
        stop(*keep, &app, why, steps);
        steps.push_back({Step::Kind::kRestart, name, keep->id, why});
      }
      break;
    case Task::kStopped: {
      bool requested = input.restart_requested;
      if (!requested && !wantsRestart(app.restart, keep->exit_status)) break;
      const auto& until = input.state.backoff_until;
      if (requested || !until || *until <= input.now) {
        steps.push_back(
            {Step::Kind::kRestart, name, keep->id,
             requested ? input.restart_reason : "exited " + std::to_string(keep->exit_status)});
      } else {
        plan.wait_until = *until;
      }
      break;
    }
    case Task::kOther:
      break;  // pausing/paused: leave it to the operator
  }
  return plan;
}

}  // namespace fleetlet::reconcile
