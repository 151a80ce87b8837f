#pragma once
// StatusReporter: what the node did, back to the cloud (docs/cloud.md, "Status reports").
//
// Node events reach the outbox the moment they happen (queueEvent(), wired to
// core::AgentOptions::on_event). collect() turns the node's state and the queued events into a
// report in the StatusOutbox — at most one per `min_interval` (10 s), at once when an apply
// finished (an `applied`, `rejected`, `converged`, `rolledBack` or `confirmed` event) — and
// only when something changed. flush() sends the
// outbox's reports oldest first, one request each (`PUT <status URL with {seq}>`, the report
// as JSON); a 2xx acknowledges (the report is deleted), anything else stops the flush and is
// retried after a backoff (15 s·2ⁿ capped at `max_backoff`, ±20 %, `Retry-After` honoured).
// A report is the same bytes every time it is sent, so a report whose acknowledgement was
// lost (kill -9 after the PUT) is sent again to the same URL with the same body: the cloud
// holds each seq once.
//
// Threading: collect(), flush() and run() on one thread. ReporterThread runs one.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "cloud/http_fetcher.h"
#include "cloud/loop_thread.h"
#include "cloud/poll_schedule.h"
#include "cloud/status_outbox.h"
#include "core/node_service.h"
#include "error/error.h"
#include "json/json.h"

namespace fleetlet::cloud {

struct ReporterOptions {
  std::string node_id;
  // {node} and {seq} are replaced; without {seq}, "/{seq}.json" is appended.
  std::string url;
  std::string method = "PUT";
  Duration min_interval{std::chrono::seconds(10)};
  Duration max_backoff{std::chrono::seconds(60)};
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  std::function<double()> random01;  // empty: std::mt19937
  // The alerts in force now, for the report's "alerts" member (an array; a change makes a
  // report like an app's change does). Empty: always [].
  std::function<Json()> active_alerts;
};

// Queues `event` in `outbox` for the next report (errors are logged: the event is then only in
// the local API's log).
void queueEvent(StatusOutbox& outbox, const core::NodeEvent& event);

class StatusReporter {
 public:
  StatusReporter(ReporterOptions options, core::NodeService& node, StatusOutbox& outbox,
                 StatusSender& sender);

  // Adds a report when one is due (see above). Returns whether it did.
  Result<bool> collect();
  // Sends what the outbox holds. nullopt when it is empty now; otherwise the delay before the
  // next attempt.
  std::optional<Duration> flush();
  // Every `tick`: collect(), and flush() when no backoff is pending; until `sleep` returns false.
  void run(const std::function<bool(Duration)>& sleep, Duration tick = std::chrono::seconds(1));

  std::string urlFor(int64_t seq) const;
  int64_t sent() const { return sent_; }

 private:
  static Json appsJson(const std::vector<core::AppStatus>& apps);

  ReporterOptions options_;
  core::NodeService& node_;
  StatusOutbox& outbox_;
  StatusSender& sender_;
  PollSchedule backoff_;
  std::mt19937 rng_{std::random_device{}()};
  std::string last_apps_;  // the apps' JSON in the last report, to notice changes
  std::optional<std::chrono::system_clock::time_point> last_report_;
  std::optional<std::chrono::system_clock::time_point> retry_at_;
  int64_t sent_ = 0;
};

// Reports `node`'s status to `config.status_url` (must be set) from `outbox` (which node
// events are queued into: queueEvent), on a thread of its own; stopped on destruction.
class ReporterThread {
 public:
  static std::unique_ptr<ReporterThread> start(const config::CloudConfig& config,
                                               std::string_view node_id, StatusOutbox& outbox,
                                               core::NodeService& node,
                                               std::function<Json()> active_alerts = {});
  ~ReporterThread() { loop_.stop(); }

 private:
  ReporterThread(StatusOutbox& outbox, const config::CloudConfig& config, std::string_view node_id,
                 core::NodeService& node, std::function<Json()> active_alerts);

  LoopThread loop_;
  HttpFetcher sender_;
  StatusReporter reporter_;
};

}  // namespace fleetlet::cloud
