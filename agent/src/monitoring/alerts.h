#pragma once
// Alerts (docs/observability.md, "Alerts"): threshold rules on node and per-app readings with
// AosCore's raise / continue / fall semantics.
//
//   alerts:
//     interval: 10s          # how often the readings are taken and the rules evaluated
//     continueEvery: 60s     # a raised alert that still holds is repeated this often
//     rules:
//       - app cpu > 90% for 60s           # share of one core, held for 60 s
//       - app memory > 80% of limit       # cgroup usage against resources.memory
//       - node disk free < 500Mi          # the data directory's filesystem
//       - app restarts > 3 in 10m         # restarts within the last 10 minutes
//
// A rule is "<node|app> <metric> <'>'|'<'> <threshold> [of limit] [for D] [in D]" with the
// metrics: node cpu (%, all CPUs), node memory (% in use), node disk free (bytes), app cpu (%
// of one core), app memory (bytes, or % of limit), app restarts (count, needs "in D").
//
// AlertReadings turns successive metric samples into each rule's values per subject (the app,
// or "" for the node); AlertEvaluator turns values over time into events. Both are pure given
// their inputs (time is passed in), so tests drive them with an injected clock.
//
// Concurrency: neither class is thread-safe; one evaluation loop owns them.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error/error.h"
#include "monitoring/agent_metrics.h"

namespace fleetlet::monitoring {

using AlertClock = std::chrono::system_clock;

enum class AlertMetric : std::uint8_t {
  kNodeCpu,           // busy share of all CPUs, 0..1
  kNodeMemory,        // in-use share of memory, 0..1
  kNodeDiskFree,      // bytes free on the data directory's filesystem
  kAppCpu,            // share of one core, 0..N
  kAppMemoryBytes,    // bytes
  kAppMemoryOfLimit,  // share of the app's memory limit, 0..1 (apps without a limit: none)
  kAppRestarts,       // restarts within `window`
};

struct AlertRule {
  std::string text;  // as configured, normalised to single spaces: names the alert
  AlertMetric metric = AlertMetric::kNodeCpu;
  bool above = true;  // '>' (else '<')
  double threshold = 0;
  std::chrono::seconds hold{0};    // "for D": how long it must hold before it is raised
  std::chrono::seconds window{0};  // "in D": the restarts window
  bool percent = false;            // the threshold was given in % (for messages)
  bool perApp() const;
};

// Parses one rule. kInvalidArgument naming the problem and the rule ("alert rule \"app cpu >
// 9x%\": \"9x%\" is not a percentage").
Result<AlertRule> parseAlertRule(std::string_view text);

enum class AlertPhase : std::uint8_t { kRaise, kContinue, kFall };
std::string_view toString(AlertPhase phase);  // "raise", "continue", "fall"

struct AlertEvent {
  AlertPhase phase = AlertPhase::kRaise;
  std::string rule;     // AlertRule::text
  std::string subject;  // the app, or "" for the node
  double value = 0;     // the reading at this evaluation (at a fall: the last one, if any)
  AlertClock::time_point time;
  std::string message;  // "app cpu > 90% for 60s: camera at 97.3%"
};

class AlertReadings {
 public:
  // Takes one sample (at `now`); values() then answers from it and the ones before.
  void observe(const Sample& sample, AlertClock::time_point now);
  // The rule's value per subject now; a subject without a value (no previous sample for a
  // rate, no limit, no task) is absent.
  std::map<std::string, double> values(const AlertRule& rule) const;

 private:
  std::optional<Sample> previous_;
  std::optional<Sample> current_;
  AlertClock::time_point previous_at_;
  AlertClock::time_point current_at_;
  // Restart counts per app over time, for windows (kept for the longest window asked, 1 h at
  // the least).
  std::map<std::string, std::deque<std::pair<AlertClock::time_point, int64_t>>> restarts_;
};

class AlertEvaluator {
 public:
  AlertEvaluator(std::vector<AlertRule> rules, std::chrono::seconds continue_every);

  // Evaluates every rule against `values(rule)` at `now`: a condition that has held for the
  // rule's hold time raises (once); while it keeps holding it continues every continue_every;
  // when it stops holding (or its subject has no value any more) a raised alert falls (once).
  template <typename Values>
  std::vector<AlertEvent> evaluate(AlertClock::time_point now, const Values& values) {
    std::vector<AlertEvent> out;
    for (size_t i = 0; i < rules_.size(); ++i) step(i, values(rules_[i]), now, out);
    return out;
  }
  // Alerts raised and not fallen: (rule, subject).
  std::vector<std::pair<std::string, std::string>> active() const;
  // The same with the value of their last raise or continue (so it changes only with an
  // event, not at every evaluation), when they were raised and the message.
  struct Active {
    std::string rule;
    std::string subject;
    double value = 0;
    AlertClock::time_point since;
    std::string message;
  };
  std::vector<Active> activeAlerts() const;
  const std::vector<AlertRule>& rules() const { return rules_; }

 private:
  struct State {
    std::optional<AlertClock::time_point> since;  // the condition has held since
    bool raised = false;
    AlertClock::time_point last_emitted;
    double last_value = 0;
    AlertClock::time_point raised_at;
    double emitted_value = 0;  // at the last raise or continue
  };
  void step(size_t rule, const std::map<std::string, double>& values, AlertClock::time_point now,
            std::vector<AlertEvent>& out);

  std::vector<AlertRule> rules_;
  std::chrono::seconds continue_every_;
  std::map<std::pair<size_t, std::string>, State> states_;
};

// The event service's publish body (POST /api/v1/events/publish, shared/api/events-v1.md) for
// `event`: one event of semantics "fleetlet.alert", named after the app (or `node_id` for a
// node alert), payload {"phase","rule","app","node","value","timeMs","message"}.
std::string alertPublishBody(const AlertEvent& event, const std::string& node_id);

// "camera at 97.3%", "node at 312.0MiB" as used in AlertEvent::message.
std::string describeValue(const AlertRule& rule, const std::string& subject, double value);

}  // namespace fleetlet::monitoring
