#include "monitoring/alerts.h"

#include <gtest/gtest.h>

namespace fleetlet::monitoring {
namespace {

using namespace std::chrono_literals;

const AlertClock::time_point kT0 = AlertClock::time_point(std::chrono::hours(500000));

AlertRule rule(std::string_view text) {
  auto r = parseAlertRule(text);
  EXPECT_TRUE(r) << r.error().message();
  return r.value_or(AlertRule{});
}

TEST(AlertRules, TheIssuesRulesParse) {
  auto cpu = rule("app cpu > 90% for 60s");
  EXPECT_EQ(cpu.metric, AlertMetric::kAppCpu);
  EXPECT_TRUE(cpu.above);
  EXPECT_DOUBLE_EQ(cpu.threshold, 0.9);
  EXPECT_EQ(cpu.hold, 60s);
  auto memory = rule("app  memory > 80% of limit");
  EXPECT_EQ(memory.metric, AlertMetric::kAppMemoryOfLimit);
  EXPECT_DOUBLE_EQ(memory.threshold, 0.8);
  EXPECT_EQ(memory.text, "app memory > 80% of limit");
  auto disk = rule("node disk free < 500Mi");
  EXPECT_EQ(disk.metric, AlertMetric::kNodeDiskFree);
  EXPECT_FALSE(disk.above);
  EXPECT_DOUBLE_EQ(disk.threshold, 500.0 * 1024 * 1024);
  auto restarts = rule("app restarts > 3 in 10m");
  EXPECT_EQ(restarts.metric, AlertMetric::kAppRestarts);
  EXPECT_DOUBLE_EQ(restarts.threshold, 3);
  EXPECT_EQ(restarts.window, 600s);
  EXPECT_EQ(rule("app memory > 256Mi").metric, AlertMetric::kAppMemoryBytes);
  EXPECT_EQ(rule("node memory > 95%").metric, AlertMetric::kNodeMemory);
  EXPECT_EQ(rule("node cpu > 80% for 5m").hold, 300s);
}

TEST(AlertRules, BadRulesAreRefusedNamingTheProblem) {
  for (auto [text, problem] : std::vector<std::pair<std::string, std::string>>{
           {"", "expected"},
           {"app cpu 90%", "expected"},
           {"app cpu >", "a threshold must follow"},
           {"app cpu > 9x%", "\"9x%\" is not a percentage"},
           {"app cpu > 90", "\"90\" must be a percentage"},
           {"app gpu > 90%", "unknown metric \"app gpu\""},
           {"node disk free < lots", "\"lots\" is not a quantity"},
           {"app restarts > 3", "restarts need a window"},
           {"app restarts > 3 in soon", "\"soon\" is not a duration"},
           {"app cpu > 90% of limit", "\"of limit\" applies to app memory only"},
           {"app cpu > 90% in 5m", "\"in D\" applies to app restarts only"},
           {"app cpu > 90% please", "unexpected \"please\""},
       }) {
    auto r = parseAlertRule(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(problem), std::string::npos)
        << text << ": " << r.error().message();
    EXPECT_NE(r.error().message().find("alert rule \""), std::string::npos);
  }
}

// Drives one rule through a script of (seconds after t0, value) and collects the events.
struct Drive {
  AlertEvaluator evaluator;
  std::vector<AlertEvent> events;
  void at(int seconds, std::optional<double> value, const std::string& subject = "camera") {
    auto got = evaluator.evaluate(kT0 + std::chrono::seconds(seconds), [&](const AlertRule&) {
      std::map<std::string, double> v;
      if (value) v[subject] = *value;
      return v;
    });
    events.insert(events.end(), got.begin(), got.end());
  }
  size_t count(AlertPhase phase) const {
    return static_cast<size_t>(std::count_if(events.begin(), events.end(),
                                             [&](const auto& e) { return e.phase == phase; }));
  }
};

TEST(AlertEvaluator, RaisesAfterTheHoldContinuesWhileHoldingAndFallsExactlyOnceEach) {
  Drive d{.evaluator = AlertEvaluator({rule("app cpu > 90% for 60s")}, 30s)};
  d.at(0, 0.95);   // holds from now
  d.at(30, 0.97);  // not for 60 s yet
  EXPECT_TRUE(d.events.empty());
  d.at(60, 0.96);  // held 60 s: raise
  ASSERT_EQ(d.events.size(), 1U);
  EXPECT_EQ(d.events[0].phase, AlertPhase::kRaise);
  EXPECT_EQ(d.events[0].subject, "camera");
  EXPECT_EQ(d.events[0].time, kT0 + 60s);
  EXPECT_EQ(d.events[0].message, "app cpu > 90% for 60s: camera at 96.0%");
  d.at(75, 0.99);  // within continueEvery: nothing
  d.at(90, 0.93);  // 30 s after the raise: continue
  d.at(100, 0.5);  // below: fall
  d.at(110, 0.4);
  d.at(120, 0.3);
  EXPECT_EQ(d.count(AlertPhase::kRaise), 1U);
  EXPECT_EQ(d.count(AlertPhase::kContinue), 1U);
  EXPECT_EQ(d.count(AlertPhase::kFall), 1U);
  ASSERT_EQ(d.events.size(), 3U);
  EXPECT_EQ(d.events[1].phase, AlertPhase::kContinue);
  EXPECT_EQ(d.events[1].time, kT0 + 90s);
  EXPECT_EQ(d.events[2].phase, AlertPhase::kFall);
  EXPECT_EQ(d.events[2].time, kT0 + 100s);
  EXPECT_TRUE(d.evaluator.active().empty());
}

TEST(AlertEvaluator, ADipBeforeTheHoldTimeRestartsIt) {
  Drive d{.evaluator = AlertEvaluator({rule("app cpu > 90% for 60s")}, 30s)};
  d.at(0, 0.95);
  d.at(50, 0.50);  // dips: the hold starts again
  d.at(60, 0.95);
  d.at(100, 0.95);
  EXPECT_TRUE(d.events.empty());
  d.at(120, 0.95);
  ASSERT_EQ(d.events.size(), 1U);
  EXPECT_EQ(d.events[0].phase, AlertPhase::kRaise);
}

TEST(AlertEvaluator, AnAlertWithoutHoldRaisesAtOnceAndFallsWhenItsSubjectGoes) {
  Drive d{.evaluator = AlertEvaluator({rule("node disk free < 500Mi")}, 60s)};
  d.at(0, 100.0 * 1024 * 1024, "");
  ASSERT_EQ(d.events.size(), 1U);
  EXPECT_EQ(d.events[0].message, "node disk free < 500Mi: node at 100.0MiB");
  EXPECT_EQ(d.evaluator.active().size(), 1U);
  d.at(10, std::nullopt, "");  // no reading any more
  ASSERT_EQ(d.events.size(), 2U);
  EXPECT_EQ(d.events[1].phase, AlertPhase::kFall);
  EXPECT_EQ(d.events[1].value, 100.0 * 1024 * 1024);
}

TEST(AlertEvaluator, APublishedAlertIsAFleetletAlertEventNamedAfterItsSubject) {
  AlertEvent e{.phase = AlertPhase::kContinue,
               .rule = "app cpu > 90% for 60s",
               .subject = "camera",
               .value = 0.97,
               .time = AlertClock::time_point(std::chrono::milliseconds(1700000000123)),
               .message = "app cpu > 90% for 60s: camera at 97.0%"};
  auto body = parseJson(alertPublishBody(e, "press-line-3"), "publish body");
  ASSERT_TRUE(body) << body.error().message();
  const auto& event = (*body)["data"][0];
  EXPECT_EQ(event["semantics"], "fleetlet.alert");
  EXPECT_EQ(event["name"], "camera");
  EXPECT_EQ(event["payload"]["phase"], "continue");
  EXPECT_EQ(event["payload"]["node"], "press-line-3");
  EXPECT_EQ(event["payload"]["timeMs"], 1700000000123);
  e.subject = "";
  EXPECT_EQ((*parseJson(alertPublishBody(e, "press-line-3"), "body"))["data"][0]["name"],
            "press-line-3");
}

Sample sampleWith(std::vector<AppSample> apps) {
  Sample s;
  s.apps = std::move(apps);
  s.disk = DiskInfo{.total_bytes = 1000, .free_bytes = 400};
  s.memory = MemoryInfo{.total_bytes = 1000, .available_bytes = 250};
  return s;
}

AppSample appSample(const std::string& name, uint64_t cpu_ns, uint64_t memory, int restarts) {
  AppSample a;
  a.status.name = name;
  a.status.container_id = name + "-1";
  a.status.restarts = restarts;
  a.resources = containerd::TaskMetrics{
      .cpu_ns = cpu_ns, .memory_bytes = memory, .memory_limit_bytes = uint64_t{1000}};
  return a;
}

TEST(AlertReadings, RatesSharesAndWindowsComeFromSuccessiveSamples) {
  AlertReadings r;
  r.observe(sampleWith({appSample("camera", 1'000'000'000, 850, 1)}), kT0);
  EXPECT_TRUE(r.values(rule("app cpu > 90%")).empty());  // a rate needs two samples
  r.observe(sampleWith({appSample("camera", 10'500'000'000, 850, 3)}), kT0 + 10s);
  EXPECT_DOUBLE_EQ(r.values(rule("app cpu > 90%")).at("camera"), 0.95);
  EXPECT_DOUBLE_EQ(r.values(rule("app memory > 80% of limit")).at("camera"), 0.85);
  EXPECT_DOUBLE_EQ(r.values(rule("node disk free < 500Mi")).at(""), 400);
  EXPECT_DOUBLE_EQ(r.values(rule("node memory > 50%")).at(""), 0.75);
  EXPECT_DOUBLE_EQ(r.values(rule("app restarts > 3 in 10m")).at("camera"), 2);
  r.observe(sampleWith({appSample("camera", 11'000'000'000, 100, 7)}), kT0 + 11min);
  // 10 minutes back is +1 min: the restarts since the last count before it (3, at +10 s).
  EXPECT_DOUBLE_EQ(r.values(rule("app restarts > 3 in 10m")).at("camera"), 4);
  EXPECT_DOUBLE_EQ(r.values(rule("app restarts > 3 in 1h")).at("camera"), 6);
}

}  // namespace
}  // namespace fleetlet::monitoring
