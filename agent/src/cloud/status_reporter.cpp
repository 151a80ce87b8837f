#include "cloud/status_reporter.h"

#include <spdlog/spdlog.h>

#include "api/json_codec.h"

namespace fleetlet::cloud {
namespace {

bool finishesAnApply(const std::string& kind) {
  return kind == "applied" || kind == "rejected" || kind == "converged" || kind == "rolledBack" ||
         kind == "confirmed";
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

void queueEvent(StatusOutbox& outbox, const core::NodeEvent& event) {
  if (auto st = outbox.addEvent(api::toJson(event)); !st) {
    spdlog::error("status: queueing node event {}: {}", event.seq, st.error().message());
  }
}

Json StatusReporter::appsJson(const std::vector<core::AppStatus>& apps) {
  Json out = Json::object();
  for (const auto& a : apps) {
    Json j = {{"state", a.state},       {"healthy", a.healthy}, {"restarts", a.restarts},
              {"image", a.image},       {"runtime", a.runtime}, {"message", a.message},
              {"specHash", a.spec_hash}};
    if (a.last_exit_code) j["lastExitCode"] = *a.last_exit_code;
    if (a.last_exit_at) j["lastExitAt"] = api::formatTime(*a.last_exit_at);
    if (a.started_at) j["startedAt"] = api::formatTime(*a.started_at);
    if (!a.image_digest.empty()) j["imageDigest"] = a.image_digest;
    if (!a.last_restart_reason.empty()) j["lastRestartReason"] = a.last_restart_reason;
    out[a.name] = std::move(j);
  }
  return out;
}

Result<bool> StatusReporter::collect() {
  FLEETLET_ASSIGN_OR_RETURN(Json events, outbox_.queuedEvents());
  bool urgent = false;
  for (const auto& e : events) urgent = urgent || finishesAnApply(e.value("kind", ""));
  // A log request's end goes out at once, like an apply's.
  FLEETLET_ASSIGN_OR_RETURN(int64_t results, outbox_.queuedResults());
  urgent = urgent || results > 0;
  FLEETLET_ASSIGN_OR_RETURN(auto apps, node_.apps());
  Json apps_json = appsJson(apps);
  Json alerts = options_.active_alerts ? options_.active_alerts() : Json::array();
  // What the state members say, to notice changes.
  std::string apps_text = apps_json.dump() + alerts.dump();
  const auto now = options_.now();
  const bool changed = !events.empty() || results > 0 || apps_text != last_apps_ || !last_report_;
  const bool due = !last_report_ || urgent || now - *last_report_ >= options_.min_interval;
  if (!changed || !due) return false;  // queued events wait in the outbox
  FLEETLET_ASSIGN_OR_RETURN(auto status, node_.status());
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
      {"alerts", std::move(alerts)},
  };
  // The outbox adds every queued event (those queued since `events` was read too).
  FLEETLET_ASSIGN_OR_RETURN(int64_t seq, outbox_.add(std::move(report)));
  spdlog::debug("status: report {} queued", seq);
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

std::unique_ptr<ReporterThread> ReporterThread::start(const config::CloudConfig& config,
                                                      std::string_view node_id,
                                                      StatusOutbox& outbox, core::NodeService& node,
                                                      std::function<Json()> active_alerts) {
  std::unique_ptr<ReporterThread> thread(
      new ReporterThread(outbox, config, node_id, node, std::move(active_alerts)));
  spdlog::info("status: reporting to {} ({})", thread->reporter_.urlFor(0), config.status_method);
  thread->loop_.start([r = thread.get()](const SleepFn& sleep) { r->reporter_.run(sleep); });
  return thread;
}

ReporterThread::ReporterThread(StatusOutbox& outbox, const config::CloudConfig& config,
                               std::string_view node_id, core::NodeService& node,
                               std::function<Json()> active_alerts)
    : sender_(HttpFetcherOptions{.tls = config.tls,
                                 .max_body_bytes = int64_t{64} * 1024,
                                 .timeout = config.timeout,
                                 .stop = loop_.token()}),
      reporter_(ReporterOptions{.node_id = std::string(node_id),
                                .url = config.status_url,
                                .method = config.status_method,
                                .min_interval = config.status_interval,
                                .max_backoff = config.interval,
                                .active_alerts = std::move(active_alerts)},
                node, outbox, sender_) {}

}  // namespace fleetlet::cloud
