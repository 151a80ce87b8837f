#include "reconcile/reconciler.h"

#include <spdlog/spdlog.h>

#include <future>
#include <semaphore>
#include <thread>

namespace fleetlet::reconcile {
namespace {

std::string_view runtimeName(manifest::Runtime r) {
  switch (r) {
    case manifest::Runtime::kContainer:
      return "container";
    case manifest::Runtime::kNative:
      return "native";
    case manifest::Runtime::kWebview:
      return "webview";
  }
  return "?";
}

}  // namespace

Reconciler::Reconciler(ContainerRuntime& runtime, state::StateStore& store,
                       ReconcilerOptions options)
    : runtime_(runtime), store_(store), options_(std::move(options)) {}

void Reconciler::setDesired(std::shared_ptr<const manifest::NodeState> desired) {
  {
    std::lock_guard lock(mu_);
    desired_ = std::move(desired);
    dirty_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<const manifest::NodeState> Reconciler::desired() const {
  std::lock_guard lock(mu_);
  return desired_;
}

void Reconciler::requestRestart(const std::string& app) {
  {
    std::lock_guard lock(mu_);
    restart_requested_.insert(app);
    dirty_ = true;
  }
  cv_.notify_all();
}

void Reconciler::trigger() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

void Reconciler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void Reconciler::run() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      dirty_ = false;
    }
    auto result = reconcileOnce();
    auto now = options_.now();
    Clock::time_point next = now + options_.resync;
    if (!result) {
      spdlog::warn("reconcile: {}", result.error().message());
      next = now + options_.retry;
    } else {
      if (result->failed > 0) next = std::min(next, now + options_.retry);
      if (const auto& wake_at = result->wake_at) next = std::min(next, *wake_at);
    }
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, next, [&] { return stopping_ || dirty_; });
  }
}

void Reconciler::emit(const std::string& app, const std::string& kind, const std::string& message) {
  if (app.empty()) {
    spdlog::info("{}: {}", kind, message);
  } else {
    spdlog::info("app {}: {}: {}", app, kind, message);
  }
  if (options_.on_event) options_.on_event(app, kind, message);
}

void Reconciler::setAppState(const std::string& app, std::string state, std::string message) {
  std::lock_guard lock(mu_);
  auto& s = snapshots_[app];
  s.name = app;
  s.state = std::move(state);
  s.message = std::move(message);
}

Status Reconciler::observeExits(const std::vector<ActualContainer>& actual,
                                std::map<std::string, AppRuntimeState>& states) {
  auto now = options_.now();
  for (const auto& c : actual) {
    if (c.task != ActualContainer::Task::kStopped) continue;
    std::string exit_id = c.id + ":" + std::to_string(c.pid);
    auto& s = states[c.app];
    if (s.last_exit_id == exit_id) continue;
    auto ran = s.started_at
                   ? std::chrono::duration_cast<std::chrono::milliseconds>(now - *s.started_at)
                   : std::chrono::milliseconds(0);
    s.last_exit_id = exit_id;
    s.last_exit_code = static_cast<int>(c.exit_status);
    s.last_exit_at = now;
    s.backoff = nextBackoff(s.backoff, ran);
    s.backoff_until = now + s.backoff;
    FLEETLET_RETURN_IF_ERROR(store_.saveAppState(c.app, s));
    emit(c.app, "exited", fmt::format("exit code {}", c.exit_status));
  }
  return {};
}

Status Reconciler::executeApp(const manifest::App* app, const std::vector<Step>& steps,
                              int64_t revision) {
  for (const auto& step : steps) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return fail(ErrorCode::kUnavailable, "fleetletd is stopping");
    }
    Status st;
    switch (step.kind) {
      case Step::Kind::kPull:
        setAppState(step.app, "pulling", "");
        st = runtime_.ensureImage(*app);
        break;
      case Step::Kind::kCreate:
        st = runtime_.create(*app, step.container_id, revision);
        if (st) emit(step.app, "created", step.container_id + " (" + step.reason + ")");
        break;
      case Step::Kind::kStart:
      case Step::Kind::kRestart: {
        auto pid = runtime_.start(*app, step.container_id);
        if (!pid) {
          st = std::unexpected(pid.error());
          break;
        }
        auto states = store_.appStates();
        if (!states) return std::unexpected(states.error());
        auto& s = (*states)[step.app];
        s.started_at = options_.now();
        if (step.kind == Step::Kind::kRestart) ++s.restarts;
        FLEETLET_RETURN_IF_ERROR(store_.saveAppState(step.app, s));
        if (step.kind == Step::Kind::kRestart) {
          std::lock_guard lock(mu_);
          restart_requested_.erase(step.app);
        }
        emit(step.app, step.kind == Step::Kind::kRestart ? "restarted" : "started",
             fmt::format("pid {} ({})", *pid, step.reason));
        break;
      }
      case Step::Kind::kStop: {
        auto grace = app != nullptr ? app->stop_grace : std::chrono::milliseconds(10000);
        setAppState(step.app, "stopping", "");
        st = runtime_.stop(step.container_id, grace);
        break;
      }
      case Step::Kind::kRemove:
        st = runtime_.remove(step.container_id);
        if (st) emit(step.app, "removed", step.container_id + " (" + step.reason + ")");
        break;
    }
    if (!st) {
      return std::unexpected(st.error().wrap("{} {}", toString(step.kind), step.container_id));
    }
  }
  return {};
}

Result<Reconciler::PassResult> Reconciler::reconcileOnce() {
  std::shared_ptr<const manifest::NodeState> desired;
  std::set<std::string> requested;
  {
    std::lock_guard lock(mu_);
    desired = desired_;
    requested = restart_requested_;
  }
  spdlog::debug("reconcile pass: revision {}", desired ? desired->revision : 0);
  FLEETLET_ASSIGN_OR_RETURN(auto actual, runtime_.list());
  FLEETLET_ASSIGN_OR_RETURN(auto states, store_.appStates());
  FLEETLET_RETURN_IF_ERROR(observeExits(actual, states));

  PlanInput input{.desired = desired.get(),
                  .actual = actual,
                  .states = states,
                  .restart_requested = requested,
                  .now = options_.now()};
  Plan plan = planSteps(input);

  // Group steps per app, keeping their order; apps not desired any more form their own group.
  std::map<std::string, std::vector<Step>> by_app;
  std::vector<std::string> order;
  for (const auto& step : plan.steps) {
    if (!by_app.contains(step.app)) order.push_back(step.app);
    by_app[step.app].push_back(step);
  }

  PassResult result;
  result.steps = plan.steps.size();
  result.wake_at = plan.wake_at;
  std::map<std::string, std::string> errors = plan.unsupported;
  int64_t revision = desired ? desired->revision : 0;

  // Undesired apps first; then desired apps in parallel waves that respect dependsOn (an app
  // starts once every app it depends on finished its steps). At most `parallelism` apps run
  // steps at a time.
  std::map<std::string, std::shared_future<bool>> done;
  std::counting_semaphore<64> slots(
      static_cast<std::ptrdiff_t>(std::max<size_t>(1, std::min<size_t>(options_.parallelism, 64))));
  std::mutex errors_mu;
  auto runApp = [&](const std::string& name, const std::vector<std::shared_future<bool>>& deps) {
    for (auto& d : deps) d.wait();
    slots.acquire();
    const manifest::App* app = nullptr;
    if (desired) {
      auto it = desired->apps.find(name);
      if (it != desired->apps.end()) app = &it->second;
    }
    auto st = executeApp(app, by_app[name], revision);
    slots.release();
    if (!st) {
      std::lock_guard lock(errors_mu);
      errors[name] = st.error().message();
      emit(name, "error", st.error().message());
      return false;
    }
    return true;
  };
  // Apps no longer desired are independent of each other: remove them in parallel, and
  // before any desired app starts (they may hold host ports the new ones need).
  {
    std::vector<std::thread> removers;
    for (const auto& name : order) {
      if (desired && desired->apps.contains(name)) continue;
      removers.emplace_back([&runApp, name] { runApp(name, {}); });
    }
    for (auto& t : removers) t.join();
  }
  std::vector<std::thread> workers;
  if (desired) {
    for (const auto& name : desired->start_order) {
      if (!by_app.contains(name)) continue;
      std::vector<std::shared_future<bool>> deps;
      for (const auto& dep : desired->apps.at(name).depends_on) {
        if (auto it = done.find(dep); it != done.end()) deps.push_back(it->second);
      }
      auto task = std::make_shared<std::packaged_task<bool()>>(
          [&runApp, name, deps] { return runApp(name, deps); });
      done[name] = task->get_future().share();
      workers.emplace_back([task] { (*task)(); });
    }
  }
  for (auto& w : workers) w.join();
  result.failed = errors.size() - plan.unsupported.size();

  // Read back what the steps did, for status queries.
  auto after = runtime_.list();
  auto after_states = store_.appStates();
  if (after && after_states) {
    std::map<std::string, AppSnapshot> snaps;
    if (desired) {
      for (const auto& [name, app] : desired->apps) {
        AppSnapshot s{.name = name,
                      .image = app.image,
                      .runtime = std::string(runtimeName(app.runtime)),
                      .state = "pending",
                      .spec_hash = app.spec_hash};
        if (auto it = after_states->find(name); it != after_states->end()) {
          s.runtime_state = it->second;
        }
        for (const auto& c : *after) {
          if (c.app != name || c.spec_hash != app.spec_hash) continue;
          s.container_id = c.id;
          s.pid = c.pid;
          switch (c.task) {
            case ActualContainer::Task::kRunning:
              s.state = "running";
              break;
            case ActualContainer::Task::kCreated:
            case ActualContainer::Task::kNone:
              s.state = "created";
              break;
            case ActualContainer::Task::kStopped: {
              bool waiting =
                  std::find(plan.waiting.begin(), plan.waiting.end(), name) != plan.waiting.end();
              bool never =
                  app.restart == manifest::RestartPolicy::kNever ||
                  (app.restart == manifest::RestartPolicy::kOnFailure && c.exit_status == 0);
              s.state = waiting ? "backoff" : never ? "exited" : "stopped";
              break;
            }
            case ActualContainer::Task::kOther:
              s.state = "paused";
              break;
          }
        }
        if (auto it = errors.find(name); it != errors.end()) {
          s.message = it->second;
          if (s.state == "pending") s.state = "failed";
        }
        snaps.emplace(name, std::move(s));
      }
    }
    std::vector<AppSnapshot> list;
    list.reserve(snaps.size());
    for (const auto& [name, snap] : snaps) list.push_back(snap);
    {
      std::lock_guard lock(mu_);
      snapshots_ = std::move(snaps);
      errors_ = errors;
    }
    if (options_.on_pass) options_.on_pass(list);
  }

  result.converged = desired != nullptr && result.failed == 0 && plan.steps.empty();
  if (desired && result.steps > 0 && result.failed == 0) {
    // Steps were taken: verify with another pass right away.
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  if (result.converged && store_.appliedRevision() != revision) {
    bool clean = errors.empty() && plan.waiting.empty();
    FLEETLET_RETURN_IF_ERROR(store_.markApplied(revision, clean));
    emit("", "converged", fmt::format("revision {}", revision));
  }
  return result;
}

std::vector<AppSnapshot> Reconciler::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<AppSnapshot> out;
  out.reserve(snapshots_.size());
  for (const auto& [name, s] : snapshots_) out.push_back(s);
  return out;
}

std::map<std::string, std::string> Reconciler::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

}  // namespace fleetlet::reconcile
