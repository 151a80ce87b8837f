#include "core/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "manifest/parse.h"
#include "system_apps/system_apps.h"

namespace fleetlet::core {

Agent::Agent(reconcile::ContainerRuntime& runtime, state::StateStore& store, AgentOptions options)
    : store_(store),
      options_(std::move(options)),
      reconciler_(runtime, store,
                  {.parallelism = options_.parallelism,
                   .pull_parallelism = options_.pull_parallelism,
                   .on_event = [this](const std::string& app, const std::string& kind,
                                      const std::string& message) { record(app, kind, message); },
                   .on_app = options_.on_app,
                   .on_first_pass = options_.on_first_pass,
                   .external_status = options_.external_status,
                   .on_worked = options_.on_worked}) {
  rollback_thread_ = std::jthread([this](const std::stop_token& stop) { rollbackLoop(stop); });
}

Agent::~Agent() {
  rollback_thread_.request_stop();
  rollback_cv_.notify_all();
  if (rollback_thread_.joinable()) rollback_thread_.join();  // before any member goes
}

void Agent::record(const std::string& app, const std::string& kind, const std::string& message) {
  {
    std::lock_guard seq_lock(seq_mu_);
    if (next_seq_ > seq_ceiling_) reserveEventSeqs();
    NodeEvent event{
        .seq = next_seq_++, .time = Clock::now(), .app = app, .kind = kind, .message = message};
    if (options_.on_event) options_.on_event(event);
    std::lock_guard lock(events_mu_);
    events_.push_back(std::move(event));
    while (events_.size() > options_.event_capacity) events_.pop_front();
  }
  notifier_.notify();
  note(app, kind, message);
  observe(app, kind, message);
}

std::string restartReasonKind(std::string_view reason) {
  if (reason.starts_with("exit code")) return "exit";
  if (reason == "oom") return "oom";
  if (reason.starts_with("failed health check")) return "health";
  if (reason == "manual") return "manual";
  return "other";
}

void Agent::note(const std::string& app, const std::string& kind, const std::string& message) {
  std::lock_guard lock(notes_mu_);
  if (kind == "pulled") digests_.erase(message);  // the image record may point elsewhere now
  if (app.empty()) return;
  auto& n = notes_[app];
  if (kind == "exited") {
    if (!n.cause_is_request) {
      n.cause = message.ends_with(reconcile::kOomKilled) ? "oom" : message;
    }
  } else if (kind == "unhealthy") {
    n.cause = "failed health check: " + message;
    n.cause_is_request = true;
    n.healthy = false;
  } else if (kind == "restarting") {
    n.cause = "manual";
    n.cause_is_request = true;
  } else if (kind == "restarted") {
    n.last_restart_reason = n.cause.empty() ? message : n.cause;
    ++n.restarts_by_reason[restartReasonKind(n.last_restart_reason)];
    n.cause.clear();
    n.cause_is_request = false;
    n.healthy = true;
  } else if (kind == "started") {
    n.healthy = true;
  }
}

void Agent::annotate(AppStatus& status) {
  status.system = options_.system && options_.system->apps.contains(status.name);
  std::optional<std::string> cached;
  {
    std::lock_guard lock(notes_mu_);
    if (auto it = notes_.find(status.name); it != notes_.end()) {
      status.last_restart_reason = it->second.last_restart_reason;
      status.restarts_by_reason = it->second.restarts_by_reason;
      status.healthy = it->second.healthy;
    }
    if (auto it = digests_.find(status.image); it != digests_.end()) cached = it->second;
  }
  if (!cached && options_.image_digest && !status.image.empty()) {
    auto digest = options_.image_digest(status.image);
    if (const std::optional<std::string> found = digest ? *digest : std::nullopt; found) {
      cached = *found;
      std::lock_guard lock(notes_mu_);
      digests_[status.image] = *found;
    }
  }
  if (!cached) {
    // A reference that pins a digest names it, pulled or not.
    if (auto at = status.image.find("@sha256:"); at != std::string::npos) {
      cached = status.image.substr(at + 1);
    }
  }
  status.image_digest = cached.value_or("");
}

std::optional<state::RollbackWatch> Agent::rollbackWatchFor(const manifest::NodeState& next,
                                                            const manifest::NodeState* previous) {
  const int64_t back_to = store_.lastGoodRevision();
  if (!next.rollback_window || back_to == 0 || back_to >= next.revision) return std::nullopt;
  state::RollbackWatch watch{.revision = next.revision,
                             .back_to = back_to,
                             .until = options_.now() + *next.rollback_window,
                             .apps = {},
                             .exits = {},
                             .converged_clean = false};
  for (const auto& [name, app] : next.apps) {
    const manifest::App* before = nullptr;
    if (previous != nullptr) {
      if (auto it = previous->apps.find(name); it != previous->apps.end()) before = &it->second;
    }
    if (before == nullptr || before->spec_hash != app.spec_hash) watch.apps.insert(name);
  }
  if (watch.apps.empty()) return std::nullopt;
  return watch;
}

void Agent::observe(const std::string& app, const std::string& kind, const std::string& message) {
  if (app.empty()) return;
  std::optional<state::RollbackWatch> passed;
  {
    std::lock_guard lock(rollback_mu_);
    if (!watch_) return;
    if (options_.now() >= watch_->until) {
      passed = std::exchange(watch_, std::nullopt);
    } else {
      if (!watch_->apps.contains(app)) return;
      std::string reason;
      if (kind == "error") {
        reason = fmt::format("app {}: {}", app, message);
      } else if (kind == "unhealthy") {
        reason = fmt::format("app {}: failed health check: {}", app, message);
      } else if (kind == "exited") {
        int& exits = watch_->exits[app];
        if (++exits >= kRollbackExits) {
          reason = fmt::format("app {}: exited {} times ({})", app, kRollbackExits, message);
        } else if (auto st = store_.saveRollbackExits(watch_->revision, watch_->exits); !st) {
          spdlog::error("rollback watch of revision {}: {}", watch_->revision,
                        st.error().message());
        }
      }
      if (reason.empty()) return;
      pending_ = PendingRollback{
          .revision = watch_->revision, .back_to = watch_->back_to, .reason = std::move(reason)};
      watch_.reset();
      rollback_cv_.notify_all();
      return;
    }
  }
  if (passed) windowPassed(*passed);  // the event came after the window: it does not count
}

void Agent::windowPassed(const state::RollbackWatch& watch) {
  auto good = store_.endRollbackWatch(watch.revision);
  if (!good) {
    spdlog::error("rollback watch of revision {}: {}", watch.revision, good.error().message());
    return;
  }
  record("", "confirmed",
         *good ? fmt::format("revision {}: no failure within its rollback window; it is the last "
                             "good revision",
                             watch.revision)
               : fmt::format("revision {}: no failure within its rollback window; it becomes the "
                             "last good revision once it converges without errors",
                             watch.revision));
}

void Agent::rollbackLoop(const std::stop_token& stop) {
  // Time comes from options_.now (a test may move it): the window's end is looked at again
  // at least every kRecheck.
  constexpr auto kRecheck = std::chrono::seconds(1);
  for (;;) {
    std::optional<PendingRollback> next;
    std::optional<state::RollbackWatch> passed;
    {
      std::unique_lock lock(rollback_mu_);
      for (;;) {
        if (stop.stop_requested()) return;
        if (pending_) {
          next = std::exchange(pending_, std::nullopt);
          break;
        }
        if (watch_ && options_.now() >= watch_->until) {
          passed = std::exchange(watch_, std::nullopt);
          break;
        }
        Clock::duration wait = kRecheck;
        if (watch_)
          wait = std::clamp<Clock::duration>(watch_->until - options_.now(),
                                             std::chrono::milliseconds(1), kRecheck);
        if (!watch_) {
          rollback_cv_.wait(lock, stop, [&] { return pending_.has_value() || watch_.has_value(); });
        } else {
          rollback_cv_.wait_for(lock, stop, wait, [&] { return pending_.has_value(); });
        }
      }
    }
    if (passed) windowPassed(*passed);
    if (next) rollBack(*next);
  }
}

void Agent::rollBack(const PendingRollback& r) {
  std::lock_guard lock(apply_mu_);
  if (store_.desiredRevision() != r.revision) return;  // a newer revision came meanwhile
  auto fail_with = [&](const Error& e) {
    spdlog::error("rollback of revision {} to {}: {}", r.revision, r.back_to, e.message());
  };
  auto stored = store_.manifestAt(r.back_to);
  if (!stored) return fail_with(stored.error());
  const std::optional<state::StoredManifest> kept = std::move(*stored);
  if (!kept.has_value()) return fail_with(Error(ErrorCode::kNotFound, "that manifest is not kept"));
  auto parsed = manifest::parseNodeState(kept->text, kept->source);
  if (!parsed) return fail_with(parsed.error());
  if (auto st = store_.rollBack(r.revision, r.reason, r.back_to); !st) return fail_with(st.error());
  setDesired(std::make_shared<const manifest::NodeState>(std::move(*parsed)));
  spdlog::warn("revision {} failed ({}); rolled back to revision {}", r.revision, r.reason,
               r.back_to);
  record(
      "", "rolledBack",
      fmt::format("revision {} failed: {}; back to revision {}", r.revision, r.reason, r.back_to));
}

void Agent::reserveEventSeqs() {
  if (!seq_loaded_) {
    seq_loaded_ = true;
    auto stored = store_.eventSeqCeiling();
    if (stored) {
      next_seq_ = std::max(next_seq_, *stored + 1);
    } else {
      spdlog::error("node events: reading the last seq: {}; numbering from {}",
                    stored.error().message(), next_seq_);
    }
  }
  // On failure numbering goes on: only a restart could then reuse seqs of this run.
  int64_t ceiling = next_seq_ - 1 + kEventSeqBlock;
  if (auto st = store_.raiseEventSeqCeiling(ceiling); !st) {
    spdlog::error("node events: storing the seq ceiling {}: {}", ceiling, st.error().message());
  }
  seq_ceiling_ = ceiling;
}

void Agent::setDesired(std::shared_ptr<const manifest::NodeState> desired) {
  desired_ = desired;
  if (!options_.system) {
    if (desired) reconciler_.setDesired(std::move(desired));
    return;
  }
  reconciler_.setDesired(system_apps::merge(desired.get(), *options_.system),
                         /*complete=*/desired != nullptr);
}

Status Agent::load() {
  std::lock_guard lock(apply_mu_);
  if (options_.system) {
    std::string names;
    for (const auto& [name, app] : options_.system->apps)
      names += (names.empty() ? "" : ", ") + name;
    record("", "system",
           fmt::format("system manifest revision {} ({})", options_.system->revision, names));
  }
  FLEETLET_ASSIGN_OR_RETURN(auto stored, store_.desired());
  if (!stored) {
    if (options_.system) setDesired(nullptr);
    return {};
  }
  auto parsed = manifest::parseNodeState(stored->text, stored->source);
  if (!parsed) {
    // It was valid when accepted; a newer fleetletd may be stricter. Keep running what runs.
    if (options_.system) setDesired(nullptr);
    return std::unexpected(parsed.error().wrap("stored revision {}", stored->revision));
  }
  if (options_.system) {
    // Accepted before that name was a system app's: the system app wins.
    if (auto st = system_apps::checkNoSystemApps(*parsed, *options_.system); !st) {
      spdlog::error("stored revision {}: {}", stored->revision, st.error().message());
      record("", "error",
             fmt::format("stored revision {}: {}", stored->revision, st.error().message()));
    }
  }
  setDesired(std::make_shared<const manifest::NodeState>(std::move(*parsed)));
  record("", "loaded", fmt::format("revision {} from {}", stored->revision, stored->source));
  // A rollback window that was open when fleetletd stopped goes on (or ends now, if it passed).
  auto watch = store_.rollbackWatch();
  if (!watch) {
    spdlog::error("rollback watch: {}", watch.error().message());
  } else if (auto w = std::move(*watch); w && w->revision == stored->revision) {
    spdlog::info(
        "rollback: watching revision {} for {} s more", w->revision,
        std::chrono::duration_cast<std::chrono::seconds>(w->until - options_.now()).count());
    std::lock_guard watch_lock(rollback_mu_);
    watch_ = std::move(w);
    rollback_cv_.notify_all();
  }
  return {};
}

Result<ApplyResult> Agent::apply(std::string_view text, std::string_view source) {
  return applyFrom(text, source, trust::Origin::kLocal);
}

Result<ApplyResult> Agent::applyFrom(std::string_view text, std::string_view source,
                                     trust::Origin origin) {
  std::lock_guard lock(apply_mu_);
  auto refuse = [&](const Error& e) -> Result<ApplyResult> {
    Error error = source.empty() ? e : e.wrap("{}", source);
    record("", "rejected", error.message());
    return std::unexpected(error);
  };
  auto admitted = options_.trust.admit(text, origin);
  if (!admitted) return refuse(admitted.error());
  auto parsed = manifest::parseNodeState(admitted->manifest);
  if (!parsed) return refuse(parsed.error());
  if (options_.system) {
    if (auto st = system_apps::checkNoSystemApps(*parsed, *options_.system); !st) {
      return refuse(st.error());
    }
  }
  if (origin == trust::Origin::kCloud && parsed->revision == store_.desiredRevision()) {
    auto stored = store_.desired();
    const std::optional<state::StoredManifest> current =
        stored ? std::move(*stored) : std::optional<state::StoredManifest>();
    if (current.has_value() && current->text == admitted->manifest) {
      return ApplyResult{.revision = parsed->revision,
                         .apps = static_cast<int>(parsed->apps.size()),
                         .unchanged = true};
    }
  }
  // A revision that failed and was rolled back is refused by the store, which says so.
  if (auto st = trust::checkBinding(*parsed, options_.node_id, admitted->is_signed,
                                    store_.desiredRevision(), options_.now());
      !st) {
    return refuse(st.error());
  }
  auto previous = desired_;  // without the system apps
  auto watch = rollbackWatchFor(*parsed, previous.get());
  if (auto st = store_.accept(parsed->revision, admitted->manifest, source, watch); !st) {
    return refuse(st.error());
  }
  ApplyResult result{.revision = parsed->revision, .apps = static_cast<int>(parsed->apps.size())};
  {
    std::lock_guard watch_lock(rollback_mu_);
    watch_ = std::move(watch);  // a window of the revision before ends here
    rollback_cv_.notify_all();
  }
  setDesired(std::make_shared<const manifest::NodeState>(std::move(*parsed)));
  std::string signers;
  for (const auto& id : admitted->key_ids) {
    signers += signers.empty() ? ", signed by " : " and ";
    signers += id.substr(0, 16);
  }
  record("", "applied",
         fmt::format("revision {} ({} apps) from {}{}", result.revision, result.apps,
                     source.empty() ? "api" : source, signers));
  return result;
}

void Agent::refused(std::string_view source, const Error& why) {
  record("", "rejected", source.empty() ? why.message() : why.wrap("{}", source).message());
}

namespace {

AppStatus toStatus(const reconcile::AppSnapshot& s) {
  const auto& rs = s.runtime_state;
  AppStatus out{.name = s.name,
                .runtime = s.runtime,
                .image = s.image,
                .state = s.state,
                .restarts = rs.restarts,
                .last_exit_code = rs.last_exit_code,
                .last_exit_at = rs.last_exit_at,
                .started_at = rs.started_at,
                .backoff_until = rs.backoff_until,
                .message = s.message,
                .container_id = s.container_id,
                .spec_hash = s.spec_hash,
                .pid = s.pid};
  if (s.state != "backoff") {
    out.backoff_until.reset();
  } else if (s.retry_at) {
    out.backoff_until = s.retry_at;  // a failing step, not a crash, is being retried
  }
  return out;
}

}  // namespace

Result<std::vector<AppStatus>> Agent::apps() {
  std::vector<AppStatus> out;
  for (const auto& s : reconciler_.snapshot()) {
    out.push_back(toStatus(s));
    annotate(out.back());
  }
  return out;
}

Result<AppDetail> Agent::describe(std::string_view name) {
  auto desired = reconciler_.desired();
  const manifest::App* app = nullptr;
  if (desired) {
    auto it = desired->apps.find(std::string(name));
    if (it != desired->apps.end()) app = &it->second;
  }
  AppDetail detail;
  bool found = false;
  for (const auto& s : reconciler_.snapshot()) {
    if (s.name == name) {
      detail.status = toStatus(s);
      annotate(detail.status);
      found = true;
    }
  }
  if (!found && app == nullptr) return fail(ErrorCode::kNotFound, "no app {}", name);
  if (app != nullptr) detail.spec = manifest::canonicalJson(*app);
  if (!found) detail.status = AppStatus{.name = std::string(name), .state = "pending"};
  if (options_.app_network) detail.network = options_.app_network(std::string(name));
  if (options_.screen_status && app != nullptr && app->runtime == manifest::Runtime::kWebview) {
    if (auto screen = options_.screen_status(std::string(name))) detail.screen = std::move(*screen);
  }
  std::lock_guard lock(events_mu_);
  for (const auto& e : events_) {
    if (e.app == name) detail.recent_events.push_back(e);
  }
  if (detail.recent_events.size() > 20) {
    detail.recent_events.erase(detail.recent_events.begin(), detail.recent_events.end() - 20);
  }
  return detail;
}

Status Agent::restart(std::string_view name) {
  auto desired = reconciler_.desired();
  if (!desired || !desired->apps.contains(std::string(name))) {
    return fail(ErrorCode::kNotFound, "no app {} in the applied manifest", name);
  }
  // Recorded first: the restart (and its "restarted" event) may follow at once.
  record(std::string(name), "restarting", "requested");
  reconciler_.requestRestart(std::string(name));
  return {};
}

void Agent::unhealthy(const std::string& app, const std::string& why) {
  spdlog::warn("app {}: unhealthy: {}", app, why);
  record(app, "unhealthy", why);
  reconciler_.requestRestart(app, "failed health check: " + why);
}

Result<NodeStatus> Agent::status() {
  NodeStatus s{.desired_revision = store_.desiredRevision(),
               .applied_revision = store_.appliedRevision(),
               .last_good_revision = store_.lastGoodRevision()};
  for (const auto& [app, message] : reconciler_.errors()) {
    s.errors.push_back(fmt::format("{}: {}", app, message));
  }
  if (auto failed = store_.failedRevisions()) {
    for (auto& f : *failed)
      s.failed.push_back({.revision = f.revision, .reason = std::move(f.reason)});
  }
  s.converged = s.desired_revision != 0 && s.applied_revision == s.desired_revision;
  {
    std::lock_guard lock(rollback_mu_);
    if (watch_) {
      s.rollback_window = RollbackWindow{
          .revision = watch_->revision, .back_to = watch_->back_to, .until = watch_->until};
    }
  }
  return s;
}

std::vector<NodeEvent> Agent::events(int64_t after_seq, size_t limit) {
  std::lock_guard lock(events_mu_);
  auto first = std::partition_point(events_.begin(), events_.end(),
                                    [after_seq](const NodeEvent& e) { return e.seq <= after_seq; });
  auto count = std::min(limit, static_cast<size_t>(events_.end() - first));
  return {first, first + static_cast<std::ptrdiff_t>(count)};
}

std::unique_ptr<EventWatch> Agent::watchEvents(std::function<void()> wake) {
  return notifier_.watch(std::move(wake));
}

Result<std::filesystem::path> Agent::logDir(std::string_view app) {
  FLEETLET_RETURN_IF_ERROR(manifest::checkAppName(app));
  if (!options_.log_dir) return fail(ErrorCode::kNotFound, "no logs for {}", app);
  auto dir = options_.log_dir(std::string(app));
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return fail(ErrorCode::kNotFound, "app {} has no logs on this node", app);
  }
  return dir;
}

Result<NodeService::LogSource> Agent::logSource(std::string_view app) {
  auto dir = logDir(app);
  if (dir || dir.error().code() != ErrorCode::kNotFound || options_.webview_log_app.empty()) {
    return NodeService::logSource(app);
  }
  // A webview app writes no log of its own: the kiosk logs its console and what happens to
  // its page under "[<app>] " (docs/webview.md, "Console").
  auto desired = reconciler_.desired();
  if (!desired) return std::unexpected(dir.error());
  auto it = desired->apps.find(std::string(app));
  if (it == desired->apps.end() || it->second.runtime != manifest::Runtime::kWebview) {
    return std::unexpected(dir.error());
  }
  auto kiosk = logDir(options_.webview_log_app);
  if (!kiosk) {
    return fail(ErrorCode::kNotFound,
                "app {} has no logs on this node yet (the kiosk, {}, has not logged)", app,
                options_.webview_log_app);
  }
  return LogSource{.dir = std::move(*kiosk), .only = fmt::format(" [{}] ", app)};
}

Result<std::string> Agent::screenshot(std::string_view app) {
  if (!options_.screenshot) return NodeService::screenshot(app);
  if (!app.empty()) FLEETLET_RETURN_IF_ERROR(manifest::checkAppName(app));
  return options_.screenshot(std::string(app));
}

Status Agent::show(std::string_view app) {
  if (!options_.show) return NodeService::show(app);
  FLEETLET_RETURN_IF_ERROR(manifest::checkAppName(app));
  return options_.show(std::string(app));
}

}  // namespace fleetlet::core
