#include "cloud/status_reporter.h"

#include <spdlog/spdlog.h>

#include "api/json_codec.h"

namespace fleetlet::cloud {
namespace {

constexpr size_t kEventBatch = 5000;

bool finishesAnApply(const std::string& kind) {
  return kind == "applied" || kind == "rejected" || kind == "converged" || kind == "rolledBack";
}

Json failedJson(const std::vector<core::FailedRevision>& failed) {
  Json out = Json::array();
  for (const auto& f : failed) out.push_back({{"revision", f.revision}, {"reason", f.reason}});
  return out;
}

std::string replaceAll(std::string text, std::string_view what, std::string_view with) {
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
  return text;
}

}  // namespace

StatusReporter::StatusReporter(ReporterOptions options, core::NodeService& node,
                               StatusOutbox& outbox, StatusSender& sender)
    : options_(std::move(options)),
      node_(node),
      outbox_(outbox),
      sender_(sender),
      backoff_(options_.max_backoff, [this] {
        return options_.random01 ? options_.random01()
                                 : std::uniform_real_distribution<double>(0, 1)(rng_);
      }) {}

std::string StatusReporter::urlFor(int64_t seq) const {
  std::string url = replaceAll(options_.url, "{node}", options_.node_id);
  if (url.find("{seq}") == std::string::npos) {
    if (!url.ends_with('/')) url += '/';
    url += "{seq}.json";
  }
  return replaceAll(url, "{seq}", std::to_string(seq));
}

void StatusReporter::noteEvent(const core::NodeEvent& e) {
  if (e.app.empty()) return;
  if (e.kind == "exited") {
    pending_cause_[e.app] = e.message;  // "exit code 137"
  } else if (e.kind == "unhealthy") {
    pending_cause_[e.app] = "failed health check: " + e.message;
  } else if (e.kind == "restarting") {
    pending_cause_[e.app] = "manual";
  } else if (e.kind == "restarted") {
    auto cause = pending_cause_.find(e.app);
    restart_reason_[e.app] = cause != pending_cause_.end() ? cause->second : e.message;
    if (cause != pending_cause_.end()) pending_cause_.erase(cause);
  }
}

Json StatusReporter::appsJson(const std::vector<core::AppStatus>& apps) const {
  Json out = Json::object();
  for (const auto& a : apps) {
    Json j = {{"state", a.state},       {"healthy", a.healthy}, {"restarts", a.restarts},
              {"image", a.image},       {"runtime", a.runtime}, {"message", a.message},
              {"specHash", a.spec_hash}};
    if (a.last_exit_code) j["lastExitCode"] = *a.last_exit_code;
    if (a.last_exit_at) j["lastExitAt"] = api::formatTime(*a.last_exit_at);
    if (a.started_at) j["startedAt"] = api::formatTime(*a.started_at);
    if (auto at = a.image.find("@sha256:"); at != std::string::npos) {
      j["imageDigest"] = a.image.substr(at + 1);
    }
    if (auto r = restart_reason_.find(a.name); r != restart_reason_.end()) {
      j["lastRestartReason"] = r->second;
    }
    out[a.name] = std::move(j);
  }
  return out;
}

Result<bool> StatusReporter::collect() {
  auto events = node_.events(after_seq_, kEventBatch);
  bool urgent = false;
  for (const auto& e : events) {
    noteEvent(e);
    urgent = urgent || finishesAnApply(e.kind);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto apps, node_.apps());
  Json apps_json = appsJson(apps);
  std::string apps_text = apps_json.dump();
  const auto now = options_.now();
  const bool changed = !events.empty() || apps_text != last_apps_ || !last_report_;
  const bool due = !last_report_ || urgent || now - *last_report_ >= options_.min_interval;
  if (!changed || !due) {
    // Events seen but not reported yet are read again next time (after_seq_ unchanged).
    return false;
  }
  FLEETLET_ASSIGN_OR_RETURN(auto status, node_.status());
  Json events_json = Json::array();
  for (const auto& e : events) events_json.push_back(api::toJson(e));
  Json report = {
      {"node", options_.node_id},
      {"time", api::formatTime(now)},
      {"revisions",
       {{"desired", status.desired_revision},
        {"applied", status.applied_revision},
        {"lastGood", status.last_good_revision},
        {"failed", failedJson(status.failed)}}},
      {"converged", status.converged},
      {"errors", status.errors},
      {"apps", std::move(apps_json)},
      {"events", std::move(events_json)},
  };
  FLEETLET_ASSIGN_OR_RETURN(int64_t seq, outbox_.add(std::move(report)));
  spdlog::debug("status: report {} queued ({} events)", seq, events.size());
  if (!events.empty()) after_seq_ = events.back().seq;
  last_apps_ = std::move(apps_text);
  last_report_ = now;
  return true;
}

std::optional<Duration> StatusReporter::flush() {
  for (;;) {
    auto next = outbox_.next();
    if (!next) {
      spdlog::error("status: outbox: {}", next.error().message());
      return backoff_.next({});
    }
    const std::optional<OutboxReport> waiting = std::move(*next);
    if (!waiting.has_value()) return std::nullopt;
    const OutboxReport& report = *waiting;
    const std::string url = urlFor(report.seq);
    auto sent = sender_.send(options_.method, url, report.body);
    PollOutcome outcome;
    if (sent) {
      if (const std::optional<std::string> retry = sent->retry_after; retry.has_value()) {
        outcome.retry_after = parseRetryAfter(*retry, options_.now());
      }
    }
    if (!sent || sent->status < 200 || sent->status >= 300) {
      spdlog::warn("status: {} {}: {}", options_.method, url,
                   sent ? fmt::format("HTTP {}", sent->status) : sent.error().message());
      return backoff_.next(outcome);
    }
    if (auto st = outbox_.ack(report.seq); !st) {
      spdlog::error("status: acknowledging report {}: {}", report.seq, st.error().message());
      return backoff_.next({});
    }
    backoff_.next({.answered = true});  // resets the backoff
    ++sent_;
  }
}

void StatusReporter::run(const std::function<bool(Duration)>& sleep, Duration tick) {
  for (;;) {
    if (auto st = collect(); !st) spdlog::error("status: {}", st.error().message());
    const auto now = options_.now();
    if (!retry_at_ || now >= *retry_at_) {
      auto delay = flush();
      retry_at_.reset();
      if (delay) retry_at_ = now + *delay;
    }
    if (!sleep(tick)) return;
  }
}

Result<std::unique_ptr<ReporterThread>> ReporterThread::start(
    const config::CloudConfig& config, std::string_view node_id,
    const std::filesystem::path& outbox_file, core::NodeService& node) {
  FLEETLET_ASSIGN_OR_RETURN(auto outbox, StatusOutbox::open(outbox_file));
  std::unique_ptr<ReporterThread> thread(
      new ReporterThread(std::move(outbox), config, node_id, node));
  spdlog::info("status: reporting to {} ({})", thread->reporter_.urlFor(0), config.status_method);
  thread->loop_.start([r = thread.get()](const SleepFn& sleep) { r->reporter_.run(sleep); });
  return thread;
}

ReporterThread::ReporterThread(std::unique_ptr<StatusOutbox> outbox,
                               const config::CloudConfig& config, std::string_view node_id,
                               core::NodeService& node)
    : outbox_(std::move(outbox)),
      sender_(HttpFetcherOptions{.tls = config.tls,
                                 .max_body_bytes = int64_t{64} * 1024,
                                 .timeout = config.timeout,
                                 .stop = loop_.token()}),
      reporter_(ReporterOptions{.node_id = std::string(node_id),
                                .url = config.status_url,
                                .method = config.status_method,
                                .min_interval = config.status_interval,
                                .max_backoff = config.interval},
                node, *outbox_, sender_) {}

}  // namespace fleetlet::cloud
