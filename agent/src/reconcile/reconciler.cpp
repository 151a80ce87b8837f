#include "reconcile/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <thread>

namespace fleetlet::reconcile {
namespace {

// The queue key of a resync; app names are never empty.
const std::string kResyncKey;
// When a running app's refresh (its service listeners) failed, it is tried again after this.
constexpr auto kRefreshRetry = std::chrono::seconds(5);

std::string runtimeName(manifest::Runtime r) {
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

std::string seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{:.1f}s", static_cast<double>(d.count()) / 1000.0);
}

bool startsNewContainer(const std::vector<Step>& steps) {
  return std::any_of(steps.begin(), steps.end(), [](const Step& s) {
    return s.kind == Step::Kind::kCreate || s.kind == Step::Kind::kStart;
  });
}

// The status of an app from its current container (or "pending" without one).
std::string stateOf(const ActualContainer* c, const manifest::App& app, bool waiting) {
  if (c == nullptr) return "pending";
  switch (c->task) {
    case ActualContainer::Task::kRunning:
      return "running";
    case ActualContainer::Task::kCreated:
    case ActualContainer::Task::kNone:
      return "created";
    case ActualContainer::Task::kStopped: {
      if (waiting) return "backoff";
      bool never = app.restart == manifest::RestartPolicy::kNever ||
                   (app.restart == manifest::RestartPolicy::kOnFailure && c->exit_status == 0);
      return never ? "exited" : "stopped";
    }
    case ActualContainer::Task::kOther:
      return "paused";
  }
  return "pending";
}

// Starts a thread; a failure (no memory, pids limit) is a value, not a crash.
Result<std::thread> startThread(std::function<void()> body) {
  try {
    return std::thread(std::move(body));
  } catch (const std::exception& e) {
    return fail(ErrorCode::kResourceExhausted, "cannot start a thread: {}", e.what());
  }
}

}  // namespace

Reconciler::Reconciler(ContainerRuntime& runtime, state::StateStore& store,
                       ReconcilerOptions options)
    : runtime_(runtime), store_(store), options_(std::move(options)), queue_(options_.now) {
  queue_.add(kResyncKey);
}

Reconciler::~Reconciler() { stop(); }

void Reconciler::setDesired(std::shared_ptr<const manifest::NodeState> desired, bool complete) {
  std::vector<std::string> changed;  // failure backoff starts again
  std::vector<std::string> queued;
  std::vector<AppSnapshot> reported;
  {
    std::lock_guard lock(mu_);
    auto previous = desired_;
    desired_ = std::move(desired);
    desired_received_ = complete && desired_ != nullptr;
    unsynced_.clear();
    unclean_.clear();
    dependents_.clear();
    if (desired_) {
      for (const auto& [name, app] : desired_->apps) {
        for (const auto& dep : app.depends_on) dependents_[dep].push_back(name);
        const manifest::App* before = nullptr;
        if (previous) {
          auto it = previous->apps.find(name);
          if (it != previous->apps.end()) before = &it->second;
        }
        unsynced_.insert(name);
        queued.push_back(name);
        auto& s = snapshots_[name];
        bool fresh = s.name.empty();
        if (fresh) s = AppSnapshot{.name = name, .state = "pending"};
        s.image = app.image;
        s.runtime = runtimeName(app.runtime);
        if (before == nullptr || before->spec_hash != app.spec_hash) {
          s.spec_hash = app.spec_hash;
          changed.push_back(name);
          retry_at_.erase(name);  // a spec change is tried at once
          if (fresh) reported.push_back(s);
        }
      }
    }
    // Apps no longer desired: their containers go; an app without any is gone at once.
    for (auto it = snapshots_.begin(); it != snapshots_.end();) {
      const auto& name = it->first;
      if (desired_ && desired_->apps.contains(name)) {
        ++it;
        continue;
      }
      if (known_.contains(name)) {
        unsynced_.insert(name);
        retry_at_.erase(name);  // removing it is not the work that failed
        queued.push_back(name);
        ++it;
      } else {
        AppSnapshot gone = it->second;
        gone.state = "removed";
        reported.push_back(std::move(gone));
        it = snapshots_.erase(it);
      }
    }
    for (const auto& [name, ids] : known_) {
      if (!snapshots_.contains(name)) {
        unsynced_.insert(name);
        retry_at_.erase(name);
        queued.push_back(name);
      }
    }
  }
  for (const auto& name : changed) queue_.forget(name);
  for (const auto& name : queued) queue_.add(name);
  if (options_.on_app) {
    for (const auto& s : reported) options_.on_app(s);
  }
}

std::shared_ptr<const manifest::NodeState> Reconciler::desired() const {
  std::lock_guard lock(mu_);
  return desired_;
}

void Reconciler::oomKilled(const std::string& container_id) {
  constexpr size_t kMaxRemembered = 1024;  // of containers whose exit was never accounted
  {
    std::lock_guard lock(mu_);
    if (oom_killed_.size() >= kMaxRemembered) oom_killed_.clear();
    oom_killed_.insert(container_id);
  }
  containerChanged(container_id, std::nullopt);
}

void Reconciler::requestRestart(const std::string& app, std::string reason) {
  {
    std::lock_guard lock(mu_);
    restart_requested_[app] = std::move(reason);
    retry_at_.erase(app);
  }
  queue_.forget(app);  // an operator's restart starts the failure backoff again at 1 s
  queue_.add(app);
}

void Reconciler::externalChanged(const std::string& app) { queue_.add(app); }

void Reconciler::containerChanged(const std::string& container_id,
                                  std::optional<uint32_t> exited_pid) {
  std::string app;
  AppSnapshot changed;
  bool report = false;
  {
    std::lock_guard lock(mu_);
    auto it = owner_.find(container_id);
    if (it != owner_.end()) {
      app = it->second;
      auto snap = snapshots_.find(app);
      if (exited_pid && snap != snapshots_.end() && snap->second.container_id == container_id &&
          snap->second.pid == *exited_pid && snap->second.state == "running") {
        snap->second.state = "stopped";
        snap->second.pid = 0;
        changed = snap->second;
        report = true;
      }
    }
  }
  if (report && options_.on_app) options_.on_app(changed);
  queue_.add(app.empty() ? kResyncKey : app);
}

void Reconciler::resync() { queue_.add(kResyncKey); }

void Reconciler::stop() {
  stop_.request_stop();
  queue_.shutDown();
}

bool Reconciler::stopping() const { return stop_.stop_requested(); }

Status Reconciler::run() {
  std::vector<std::thread> threads;
  // At least one pull thread and one worker, or nothing can converge.
  auto startSome = [&](size_t wanted, const char* what,
                       const std::function<void()>& body) -> Result<size_t> {
    size_t n = 0;
    Error last(ErrorCode::kResourceExhausted, "no thread");
    for (size_t i = 0; i < std::max<size_t>(1, wanted); ++i) {
      auto t = startThread(body);
      if (!t) {
        last = t.error();
        break;
      }
      threads.push_back(std::move(*t));
      ++n;
    }
    if (n == 0) return std::unexpected(last.wrap("reconcile {}", what));
    if (n < wanted) spdlog::warn("reconcile: running with {} of {} {}", n, wanted, what);
    return n;
  };
  auto pulls = startSome(options_.pull_parallelism, "pull threads",
                         [this, token = stop_.get_token()] { pullLoop(token); });
  Result<size_t> workers = std::unexpected(Error(ErrorCode::kResourceExhausted, "not started"));
  if (pulls) {
    workers = startSome(options_.parallelism, "workers", [this] {
      while (auto key = queue_.get()) {
        work(*key);
        queue_.done(*key);
      }
    });
  }
  if (!pulls || !workers) stop();
  for (auto& t : threads) t.join();
  if (!pulls) return std::unexpected(pulls.error());
  if (!workers) return std::unexpected(workers.error());
  return {};
}

size_t Reconciler::runDue() {
  size_t n = 0;
  for (;;) {
    if (auto key = queue_.tryGet()) {
      work(*key);
      queue_.done(*key);
      ++n;
      continue;
    }
    if (runOnePull(stop_.get_token())) {
      ++n;
      continue;
    }
    return n;
  }
}

void Reconciler::work(const std::string& key) {
  const auto began = std::chrono::steady_clock::now();
  // A failure to allocate, or anything else thrown below, fails this item only.
  try {
    if (key == kResyncKey) {
      doResync();
    } else {
      workApp(key);
    }
  } catch (const std::exception& e) {
    spdlog::error("reconcile {}: {}", key.empty() ? "resync" : key, e.what());
    if (key.empty()) {
      queue_.addRateLimited(key);
    } else {
      retryLater(desired().get(), key, Error(ErrorCode::kInternal, e.what()));
    }
  }
  firstPassWorked(key);
  if (options_.on_worked) options_.on_worked(key, std::chrono::steady_clock::now() - began);
}

void Reconciler::retryLater(const manifest::NodeState* based_on, const std::string& name,
                            const Error& error) {
  auto delay = queue_.addRateLimited(name);
  auto at = options_.now() + delay;
  std::string message = fmt::format("{}; retry in {}", error.message(), seconds(delay));
  {
    std::lock_guard lock(mu_);
    errors_[name] = error.message();
    retry_at_[name] = at;
  }
  update(name, [&](AppSnapshot& s) {
    s.state = "backoff";
    s.message = message;
    s.retry_at = at;
  });
  emit(name, "error", message);
  settle(based_on, name, false, false);
}

void Reconciler::firstPassWorked(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    if (first_pass_done_ || !listed_) return;
    first_pass_.erase(key);
    if (!first_pass_.empty()) return;
    first_pass_done_ = true;
  }
  spdlog::debug("reconcile: every app worked on once since the start");
  if (options_.on_first_pass) options_.on_first_pass();
}

void Reconciler::doResync() {
  auto listed = runtime_.list();
  if (!listed) {
    auto delay = queue_.addRateLimited(kResyncKey);
    spdlog::warn("reconcile: listing containers: {} (again in {})", listed.error().message(),
                 seconds(delay));
    return;
  }
  queue_.forget(kResyncKey);
  {
    std::lock_guard lock(mu_);
    known_.clear();
    owner_.clear();
    for (const auto& c : *listed) {
      known_[c.app].insert(c.id);
      owner_[c.id] = c.app;
      // Containers of an app that is not desired are work to do.
      if (!desired_ || !desired_->apps.contains(c.app)) unsynced_.insert(c.app);
    }
    listed_ = true;
  }
  const auto apps = liveApps();
  {
    std::lock_guard lock(mu_);
    if (!first_pass_done_ && first_pass_.empty()) first_pass_ = apps;
  }
  runtime_.pruneAppData(apps);
  for (const auto& name : apps) queue_.add(name);
  queue_.addAfter(kResyncKey, options_.now() + options_.resync);
}

std::set<std::string> Reconciler::liveApps() const {
  std::lock_guard lock(mu_);
  std::set<std::string> live;
  for (const auto& [name, ids] : known_) live.insert(name);
  for (const auto& [name, s] : snapshots_) live.insert(name);
  if (desired_) {
    for (const auto& [name, app] : desired_->apps) live.insert(name);
  }
  return live;
}

std::vector<std::string> Reconciler::pendingDependencies(const manifest::NodeState& desired,
                                                         const manifest::App& app) const {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& dep : app.depends_on) {
    if (!desired.apps.contains(dep)) continue;
    if (unsynced_.contains(dep) && !errors_.contains(dep)) out.push_back(dep);
  }
  return out;
}

Status Reconciler::accountExit(const std::string& name, const std::vector<ActualContainer>& actual,
                               AppRuntimeState& s) {
  auto now = options_.now();
  for (const auto& c : actual) {
    if (c.task != ActualContainer::Task::kStopped) continue;
    std::string exit_id = c.id + ":" + std::to_string(c.pid);
    if (s.last_exit_id == exit_id) continue;
    auto ran = s.started_at
                   ? std::chrono::duration_cast<std::chrono::milliseconds>(now - *s.started_at)
                   : std::chrono::milliseconds(0);
    bool flagged = false;  // by a TaskOOM event
    {
      std::lock_guard lock(mu_);
      flagged = oom_killed_.erase(c.id) > 0;
    }
    // An OOM kill ends the task with SIGKILL; a flag without that killed a child process only.
    const bool oom = c.exit_status == 128 + SIGKILL && (flagged || c.oom_killed);
    s.last_exit_id = exit_id;
    s.last_exit_code = static_cast<int>(c.exit_status);
    s.last_exit_at = now;
    s.backoff = nextBackoff(s.backoff, ran);
    s.backoff_until = now + s.backoff;
    FLEETLET_RETURN_IF_ERROR(store_.saveAppState(name, s));
    emit(name, "exited", fmt::format("exit code {}{}", c.exit_status, oom ? kOomKilled : ""));
  }
  return {};
}

void Reconciler::workApp(const std::string& name) {
  std::shared_ptr<const manifest::NodeState> desired;
  std::vector<std::string> ids;
  bool restart = false;
  std::string restart_reason;
  bool desired_received = false;
  {
    std::lock_guard lock(mu_);
    if (!listed_) return;  // the first resync queues every app again
    // A failing app is tried again when its backoff ends, not on every event or resync.
    if (auto it = retry_at_.find(name); it != retry_at_.end()) {
      if (it->second > options_.now()) return;
      retry_at_.erase(it);
    }
    desired = desired_;
    if (auto it = known_.find(name); it != known_.end())
      ids.assign(it->second.begin(), it->second.end());
    if (auto it = restart_requested_.find(name); it != restart_requested_.end()) {
      restart = true;
      restart_reason = it->second;
    }
    desired_received = desired_received_;
  }
  const manifest::App* app = nullptr;
  if (desired) {
    auto it = desired->apps.find(name);
    if (it != desired->apps.end()) app = &it->second;
  }
  spdlog::debug("reconcile {}: revision {}", name, desired ? desired->revision : 0);
  if (app == nullptr && !ids.empty() && !desired_received) {
    // No desired state yet says whether this app should run: its containers stay as they are.
    spdlog::info("app {}: left running until a desired state says whether it is wanted", name);
    settle(desired.get(), name, true, true);
    return;
  }
  if (app == nullptr && ids.empty()) {
    // Not desired, nothing left in containerd: forget it (once: late events queue it again).
    std::optional<AppSnapshot> gone;
    {
      std::lock_guard lock(mu_);
      if (!snapshots_.contains(name) && !known_.contains(name) && !unsynced_.contains(name)) {
        return;
      }
      if (auto it = snapshots_.find(name); it != snapshots_.end()) {
        gone = it->second;
        snapshots_.erase(it);
      }
      known_.erase(name);
      errors_.erase(name);
      retry_at_.erase(name);
      unsynced_.erase(name);
      unclean_.erase(name);
      restart_requested_.erase(name);
    }
    queue_.forget(name);
    {
      std::lock_guard lock(pull_mu_);
      pull_results_.erase(name);
    }
    if (auto st = store_.forgetApp(name); !st)
      spdlog::warn("app {}: {}", name, st.error().message());
    runtime_.pruneAppData(liveApps());
    if (gone && options_.on_app) {
      gone->state = "removed";
      options_.on_app(*gone);
    }
    settle(desired.get(), name, true, true);
    return;
  }
  if (app != nullptr) {
    std::string id = containerId(name, app->spec_hash);
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }

  auto fail_and_retry = [&](const Error& e) { retryLater(desired.get(), name, e); };

  auto actual = runtime_.inspect(ids);
  if (!actual) return fail_and_retry(actual.error().wrap("read containers"));
  {
    std::lock_guard lock(mu_);
    auto& mine = known_[name];
    for (const auto& id : ids) mine.erase(id);
    for (const auto& c : *actual) {
      mine.insert(c.id);
      owner_[c.id] = name;
    }
    if (mine.empty() && app == nullptr) known_.erase(name);
  }
  auto state = store_.appState(name);
  if (!state) return fail_and_retry(state.error());
  if (auto st = accountExit(name, *actual, *state); !st) return fail_and_retry(st.error());

  std::optional<std::string> lost_host_path;
  if (app != nullptr && std::any_of(actual->begin(), actual->end(), [](const ActualContainer& c) {
        return c.task == ActualContainer::Task::kRunning;
      })) {
    lost_host_path = runtime_.lostHostPath(*app);
    if (lost_host_path) {
      emit(name, "volume lost",
           fmt::format("{} is gone while the app runs (was the node's data directory removed?): "
                       "restarting it onto a new, empty one",
                       *lost_host_path));
    }
  }
  AppPlan plan = planApp({.name = name,
                          .app = app,
                          .actual = *actual,
                          .state = *state,
                          .restart_requested = restart,
                          .restart_reason = restart_reason,
                          .lost_host_path = std::move(lost_host_path),
                          .now = options_.now()});
  if (plan.unsupported) {
    std::optional<ExternalAppStatus> external;
    if (app != nullptr && options_.external_status) external = options_.external_status(name);
    update(name, [&](AppSnapshot& s) {
      s.state = external ? external->state : "failed";
      s.message = external ? external->message : *plan.unsupported;
      if (external) s.runtime_state.restarts = external->restarts;
    });
    {
      std::lock_guard lock(mu_);
      if (external) {
        errors_.erase(name);
      } else {
        errors_[name] = *plan.unsupported;
      }
    }
    settle(desired.get(), name, true, external && external->state == "running");
    return;
  }
  if (app != nullptr && startsNewContainer(plan.steps)) {
    auto waiting = pendingDependencies(*desired, *app);
    if (!waiting.empty()) {
      update(name, [&](AppSnapshot& s) {
        s.state = "pending";
        s.message = fmt::format("waiting for {}", fmt::join(waiting, ", "));
      });
      return;  // queued again when they settle
    }
  }

  if (!plan.steps.empty()) {
    auto done = execute(app, plan, desired ? desired->revision : 0, *state);
    if (!done) return fail_and_retry(done.error());
    if (!*done) return;  // a pull in flight, or stopping
    queue_.forget(name);
    {
      std::lock_guard lock(mu_);
      errors_.erase(name);
    }
    queue_.add(name);  // read back what the steps did
    return;
  }

  // Nothing to do: record what runs.
  queue_.forget(name);
  const ActualContainer* current = nullptr;
  if (app != nullptr) {
    for (const auto& c : *actual) {
      if (c.spec_hash == app->spec_hash) current = &c;
    }
  }
  bool waiting = plan.wait_until.has_value();
  if (waiting) queue_.addAfter(name, *plan.wait_until);
  std::string note;  // a problem beside a running task: shown, retried, not a failure
  if (current != nullptr && current->task == ActualContainer::Task::kRunning) {
    if (auto st = runtime_.refresh(*app); !st) {
      note = st.error().message();
      spdlog::warn("app {}: {}", name, note);
      queue_.addAfter(name, options_.now() + kRefreshRetry);
    }
  }
  {
    std::lock_guard lock(mu_);
    errors_.erase(name);
  }
  if (app != nullptr) {
    update(name, [&](AppSnapshot& s) {
      s.state = stateOf(current, *app, waiting);
      s.message = note;
      s.retry_at.reset();
      s.container_id = current != nullptr ? current->id : "";
      s.pid =
          current != nullptr && current->task == ActualContainer::Task::kRunning ? current->pid : 0;
      s.runtime_state = *state;
    });
  }
  settle(desired.get(), name, true, !waiting);
}

Result<bool> Reconciler::execute(const manifest::App* app, const AppPlan& plan, int64_t revision,
                                 AppRuntimeState& state) {
  // Old containers stopped for a replacement (or exited before it), started again should it
  // fail to start.
  std::vector<std::string> stopped_old = plan.revert;
  for (const auto& step : plan.steps) {
    if (stopping()) return false;
    const bool replacing =
        app != nullptr && step.container_id != containerId(step.app, app->spec_hash);
    Status st;
    switch (step.kind) {
      case Step::Kind::kPull: {
        auto present = runtime_.hasImage(*app);
        if (present && *present) break;
        auto pulled = requestPull(*app);
        if (!pulled) {
          update(step.app, [](AppSnapshot& s) {
            s.state = "pulling";
            s.message.clear();
          });
          return false;
        }
        st = *pulled;
        break;
      }
      case Step::Kind::kCreate:
        update(step.app, [](AppSnapshot& s) { s.state = "creating"; });
        st = runtime_.create(*app, step.container_id, revision);
        if (st) {
          std::lock_guard lock(mu_);
          known_[step.app].insert(step.container_id);
          owner_[step.container_id] = step.app;
        }
        if (st) emit(step.app, "created", step.container_id + " (" + step.reason + ")");
        break;
      case Step::Kind::kStart:
      case Step::Kind::kRestart: {
        update(step.app, [](AppSnapshot& s) { s.state = "starting"; });
        auto pid = runtime_.start(*app, step.container_id);
        if (!pid) {
          st = std::unexpected(pid.error());
          for (const auto& old : stopped_old) {
            auto again = runtime_.start(*app, old);
            if (again) {
              emit(step.app, "reverted",
                   fmt::format("{} runs again (pid {}): its replacement did not start", old,
                               *again));
            } else {
              spdlog::warn("app {}: starting {} again: {}", step.app, old, again.error().message());
            }
          }
          break;
        }
        state.started_at = options_.now();
        if (step.kind == Step::Kind::kRestart) ++state.restarts;
        FLEETLET_RETURN_IF_ERROR(store_.saveAppState(step.app, state));
        if (step.kind == Step::Kind::kRestart) {
          std::lock_guard lock(mu_);
          restart_requested_.erase(step.app);
        }
        update(step.app, [&](AppSnapshot& s) {
          s.state = "running";
          s.container_id = step.container_id;
          s.pid = *pid;
          s.message.clear();
          s.retry_at.reset();
          s.runtime_state = state;
        });
        emit(step.app, step.kind == Step::Kind::kRestart ? "restarted" : "started",
             fmt::format("pid {} ({})", *pid, step.reason));
        break;
      }
      case Step::Kind::kStop:
        update(step.app, [&](AppSnapshot& s) {
          if (app == nullptr || !replacing) s.state = app == nullptr ? "removing" : "stopping";
        });
        st = runtime_.stop(step.container_id, step.grace);
        if (st && replacing) stopped_old.push_back(step.container_id);
        break;
      case Step::Kind::kRemove:
        if (app == nullptr) update(step.app, [](AppSnapshot& s) { s.state = "removing"; });
        st = runtime_.remove(step.container_id);
        if (st) {
          // owner_ keeps the id until the next resync: late events of the removed container
          // then queue its app instead of a resync of every app.
          std::lock_guard lock(mu_);
          if (auto it = known_.find(step.app); it != known_.end())
            it->second.erase(step.container_id);
        }
        if (st) emit(step.app, "removed", step.container_id + " (" + step.reason + ")");
        break;
    }
    if (!st) {
      return std::unexpected(st.error().wrap("{} {}", toString(step.kind), step.container_id));
    }
  }
  return true;
}

std::optional<Status> Reconciler::requestPull(const manifest::App& app) {
  std::lock_guard lock(pull_mu_);
  if (auto it = pull_results_.find(app.name); it != pull_results_.end()) {
    auto result = std::move(it->second);
    pull_results_.erase(it);
    if (result.image == app.image) return result.status;
  }
  auto [job, added] = pulls_.try_emplace(app.image, PullJob{.app = app, .waiters = {}});
  job->second.waiters.insert(app.name);
  if (added) {
    pull_queue_.push_back(app.image);
    pull_cv_.notify_one();
  }
  return std::nullopt;
}

bool Reconciler::runOnePull(const std::stop_token& stop) {
  manifest::App app;
  {
    std::lock_guard lock(pull_mu_);
    if (pull_queue_.empty()) return false;
    app = pulls_.at(pull_queue_.front()).app;
    pull_queue_.pop_front();
  }
  emit(app.name, "pulling", app.image);
  Status st;
  try {
    st = runtime_.ensureImage(app, stop);
  } catch (const std::exception& e) {
    st = fail(ErrorCode::kInternal, "pull {}: {}", app.image, e.what());
  }
  std::set<std::string> waiters;
  {
    std::lock_guard lock(pull_mu_);
    auto it = pulls_.find(app.image);
    waiters = std::move(it->second.waiters);
    pulls_.erase(it);
    for (const auto& w : waiters) pull_results_[w] = PullResult{.image = app.image, .status = st};
  }
  if (st) emit(app.name, "pulled", app.image);
  for (const auto& w : waiters) queue_.add(w);
  return true;
}

void Reconciler::pullLoop(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(pull_mu_);
      pull_cv_.wait(lock, stop, [&] { return !pull_queue_.empty(); });
      if (stop.stop_requested()) return;
    }
    runOnePull(stop);
  }
}

void Reconciler::update(const std::string& name, const std::function<void(AppSnapshot&)>& change) {
  AppSnapshot after;
  {
    std::lock_guard lock(mu_);
    auto it = snapshots_.find(name);
    if (it == snapshots_.end()) {
      if (!desired_ || !desired_->apps.contains(name)) {
        // An app being removed that the status never listed (found by a resync).
        it = snapshots_.emplace(name, AppSnapshot{.name = name, .state = "removing"}).first;
      } else {
        it = snapshots_.emplace(name, AppSnapshot{.name = name, .state = "pending"}).first;
      }
    }
    AppSnapshot before = it->second;
    change(it->second);
    if (it->second == before) return;
    after = it->second;
  }
  if (options_.on_app) options_.on_app(after);
}

void Reconciler::settle(const manifest::NodeState* based_on, const std::string& name, bool in_sync,
                        bool clean) {
  std::vector<std::string> dependents;
  int64_t revision = 0;
  bool converged = false;
  bool all_clean = false;
  {
    std::lock_guard lock(mu_);
    // Work done against an older manifest says nothing about the new one (setDesired queued
    // every app again).
    if (based_on != desired_.get()) return;
    if (in_sync) {
      unsynced_.erase(name);
    } else {
      unsynced_.insert(name);
    }
    if (clean) {
      unclean_.erase(name);
    } else {
      unclean_.insert(name);
    }
    if (auto it = dependents_.find(name); it != dependents_.end()) dependents = it->second;
    if (desired_ && unsynced_.empty() && marked_revision_ != desired_->revision) {
      converged = true;
      revision = desired_->revision;
      marked_revision_ = revision;
      all_clean = unclean_.empty();
    }
  }
  for (const auto& d : dependents) queue_.add(d);
  if (converged && store_.appliedRevision() != revision) {
    if (auto st = store_.markApplied(revision, all_clean); !st) {
      spdlog::error("reconcile: recording revision {} as applied: {}", revision,
                    st.error().message());
      return;
    }
    emit("", "converged", fmt::format("revision {}", revision));
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
