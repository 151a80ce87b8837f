// HealthMonitor with a fake prober and a fake clock: thresholds, reset on success, interval
// scheduling, replacing targets, stop, and that one hanging probe does not hold up others.
#include "health/health_monitor.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fake_clock.h"

namespace fleetlet::health {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Answers each app's probes with a settable result; can hold an app's probes until released.
class FakeProber final : public Prober {
 public:
  Status probe(const Target& target) override {
    std::unique_lock lock(mu_);
    ++calls_[target.app];
    last_[target.app] = target;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_.contains(target.app); });
    if (healthy_.contains(target.app) && !healthy_[target.app]) {
      return fail(ErrorCode::kUnavailable, "{} failed probe {}", target.app, calls_[target.app]);
    }
    return {};
  }

  void setHealthy(const std::string& app, bool healthy) {
    std::lock_guard lock(mu_);
    healthy_[app] = healthy;
  }
  void hold(const std::string& app) {
    std::lock_guard lock(mu_);
    held_.insert(app);
  }
  void release(const std::string& app) {
    std::lock_guard lock(mu_);
    held_.erase(app);
    cv_.notify_all();
  }
  int calls(const std::string& app) {
    std::lock_guard lock(mu_);
    return calls_[app];
  }
  Target lastTarget(const std::string& app) {
    std::lock_guard lock(mu_);
    return last_[app];
  }
  // Waits until `app` was probed at least `n` times (10 s safety net, not a timing check).
  bool awaitCalls(const std::string& app, int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return calls_[app] >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> calls_;
  std::map<std::string, Target> last_;
  std::map<std::string, bool> healthy_;
  std::set<std::string> held_;
};

// Records callbacks as "unhealthy <app>: <error>" and "healthy <app>".
class Events {
 public:
  HealthCallbacks callbacks() {
    return {.on_unhealthy =
                [this](const std::string& app, const Error& error) {
                  add("unhealthy " + app + ": " + error.message());
                },
            .on_healthy = [this](const std::string& app) { add("healthy " + app); }};
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return std::exchange(events_, {});
  }
  bool awaitCount(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return events_.size() >= n; });
  }

 private:
  void add(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

Target httpTarget(const std::string& app, uint32_t pid = 100, int failures = 3,
                  milliseconds interval = seconds(10)) {
  Target t{.app = app, .container_id = app + "-c", .pid = pid};
  t.check.kind = manifest::HealthCheck::Kind::kHttp;
  t.check.port = 8080;
  t.check.path = "/healthz";
  t.check.interval = interval;
  t.check.failures = failures;
  return t;
}

using Strings = std::vector<std::string>;

// Probes run on the scheduler thread: once the clock sees it parked, everything due has run
// and every callback has returned, so each step is deterministic.
class HealthMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    monitor_.emplace(prober_, clock_, events_.callbacks(),
                     HealthMonitorOptions{.probe_threads = 0});
    settle(0);
  }

  void settle(uint64_t since) { ASSERT_TRUE(clock_.awaitParked(since)) << "monitor never idled"; }
  void setTargets(std::vector<Target> targets) {
    auto mark = clock_.parks();
    monitor_->setTargets(std::move(targets));
    settle(mark);
  }
  void advance(milliseconds by) {
    auto mark = clock_.parks();
    clock_.advance(by);
    settle(mark);
  }
  // Advances one interval at a time, `n` times.
  void probeRounds(int n, milliseconds interval = seconds(10)) {
    for (int i = 0; i < n; ++i) advance(interval);
  }
  AppHealth health(const std::string& app) {
    for (auto& h : monitor_->snapshot()) {
      if (h.app == app) return h;
    }
    ADD_FAILURE() << "no app " << app;
    return {};
  }

  FakeProber prober_;
  FakeClock clock_;
  Events events_;
  std::optional<HealthMonitor> monitor_;
};

TEST_F(HealthMonitorTest, ProbesOnceEveryIntervalStartingOneIntervalAfterSetTargets) {
  setTargets({httpTarget("a")});
  EXPECT_EQ(prober_.calls("a"), 0);
  advance(seconds(9));
  EXPECT_EQ(prober_.calls("a"), 0);
  advance(seconds(1));
  EXPECT_EQ(prober_.calls("a"), 1);
  advance(milliseconds(9999));
  EXPECT_EQ(prober_.calls("a"), 1);
  advance(milliseconds(1));
  EXPECT_EQ(prober_.calls("a"), 2);
  // A long gap (a suspended device) yields one probe, not a burst to catch up.
  advance(seconds(45));
  EXPECT_EQ(prober_.calls("a"), 3);
  advance(seconds(9));
  EXPECT_EQ(prober_.calls("a"), 3);
  advance(seconds(1));
  EXPECT_EQ(prober_.calls("a"), 4);
  EXPECT_EQ(prober_.lastTarget("a").container_id, "a-c");
  EXPECT_TRUE(events_.take().empty());
}

TEST_F(HealthMonitorTest, EachAppKeepsItsOwnInterval) {
  setTargets({httpTarget("fast", 1, 3, seconds(2)), httpTarget("slow", 2, 3, seconds(5))});
  for (int i = 0; i < 10; ++i) advance(seconds(1));
  EXPECT_EQ(prober_.calls("fast"), 5);
  EXPECT_EQ(prober_.calls("slow"), 2);
}

TEST_F(HealthMonitorTest, ReportsUnhealthyOnceWhenFailuresReachTheThresholdThenCountsAgain) {
  prober_.setHealthy("a", false);
  setTargets({httpTarget("a", 100, 3), httpTarget("b", 101, 3)});
  probeRounds(2);
  EXPECT_TRUE(events_.take().empty());
  EXPECT_EQ(health("a").consecutive_failures, 2);
  ASSERT_TRUE(health("a").last_error);
  EXPECT_EQ(health("a").last_error->message(), "a failed probe 2");
  probeRounds(1);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 3"});
  EXPECT_TRUE(health("a").unhealthy);
  EXPECT_EQ(health("a").consecutive_failures, 0);
  EXPECT_FALSE(health("b").unhealthy);
  // Still failing: reported again only after another full run of failures.
  probeRounds(2);
  EXPECT_TRUE(events_.take().empty());
  probeRounds(1);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 6"});
}

TEST_F(HealthMonitorTest, ThresholdOfOneReportsTheFirstFailure) {
  prober_.setHealthy("a", false);
  setTargets({httpTarget("a", 100, 1)});
  probeRounds(1);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 1"});
}

TEST_F(HealthMonitorTest, ASuccessResetsTheCount) {
  setTargets({httpTarget("a", 100, 3)});
  prober_.setHealthy("a", false);
  probeRounds(2);
  prober_.setHealthy("a", true);
  probeRounds(1);
  EXPECT_EQ(health("a").consecutive_failures, 0);
  prober_.setHealthy("a", false);
  probeRounds(2);
  EXPECT_TRUE(events_.take().empty()) << "2 + 2 failures with a success between are no run of 3";
  probeRounds(1);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 6"});
}

TEST_F(HealthMonitorTest, ReportsRecoveryOnceAfterUnhealthy) {
  setTargets({httpTarget("a", 100, 2)});
  probeRounds(3);
  EXPECT_TRUE(events_.take().empty()) << "healthy from the start is not a recovery";
  prober_.setHealthy("a", false);
  probeRounds(2);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 5"});
  prober_.setHealthy("a", true);
  probeRounds(1);
  EXPECT_EQ(events_.take(), Strings{"healthy a"});
  EXPECT_FALSE(health("a").unhealthy);
  probeRounds(2);
  EXPECT_TRUE(events_.take().empty());
}

TEST_F(HealthMonitorTest, AChangedTargetStartsOverAndAnUnchangedOneKeepsItsCount) {
  prober_.setHealthy("a", false);
  setTargets({httpTarget("a", 100, 3)});
  probeRounds(2);
  advance(seconds(4));
  // Same target again (a reconcile pass that changed nothing): count and schedule stay.
  setTargets({httpTarget("a", 100, 3)});
  EXPECT_EQ(health("a").consecutive_failures, 2);
  advance(seconds(6));
  EXPECT_EQ(prober_.calls("a"), 3);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 3"});

  probeRounds(2);
  EXPECT_EQ(health("a").consecutive_failures, 2);
  // The app was restarted: a new pid is a new target.
  advance(seconds(5));
  setTargets({httpTarget("a", 200, 3)});
  EXPECT_EQ(health("a").consecutive_failures, 0);
  EXPECT_EQ(health("a").probes, 0u);
  EXPECT_FALSE(health("a").unhealthy);
  advance(seconds(9));
  EXPECT_EQ(prober_.calls("a"), 5) << "first probe of a new target comes one interval later";
  advance(seconds(1));
  EXPECT_EQ(prober_.calls("a"), 6);
  EXPECT_EQ(prober_.lastTarget("a").pid, 200u);
  probeRounds(1);
  EXPECT_TRUE(events_.take().empty());
  probeRounds(1);
  EXPECT_EQ(events_.take(), Strings{"unhealthy a: a failed probe 8"});

  // A changed check is a new target too.
  prober_.setHealthy("a", true);
  auto changed = httpTarget("a", 200, 3);
  changed.check.path = "/ready";
  setTargets({changed});
  probeRounds(1);
  EXPECT_TRUE(events_.take().empty()) << "a new target has no unhealthy report to recover from";
  EXPECT_EQ(prober_.lastTarget("a").check.path, "/ready");
}

TEST_F(HealthMonitorTest, RemovedAppsAreNoLongerProbed) {
  setTargets({httpTarget("a"), httpTarget("b")});
  probeRounds(1);
  setTargets({httpTarget("b")});
  probeRounds(3);
  EXPECT_EQ(prober_.calls("a"), 1);
  EXPECT_EQ(prober_.calls("b"), 4);
  ASSERT_EQ(monitor_->snapshot().size(), 1u);
  EXPECT_EQ(monitor_->snapshot()[0].app, "b");
  setTargets({});
  probeRounds(3);
  EXPECT_EQ(prober_.calls("b"), 4);
  EXPECT_TRUE(monitor_->snapshot().empty());
}

TEST_F(HealthMonitorTest, ALaterDuplicateAppWins) {
  setTargets({httpTarget("a", 1), httpTarget("a", 2)});
  probeRounds(1);
  EXPECT_EQ(prober_.calls("a"), 1);
  EXPECT_EQ(prober_.lastTarget("a").pid, 2u);
}

TEST_F(HealthMonitorTest, StopEndsProbingAndIsIdempotent) {
  prober_.setHealthy("a", false);
  setTargets({httpTarget("a", 100, 1)});
  probeRounds(1);
  EXPECT_EQ(events_.take().size(), 1u);
  monitor_->stop();
  monitor_->stop();
  clock_.advance(seconds(100));
  monitor_->setTargets({httpTarget("b", 100, 1)});
  EXPECT_EQ(prober_.calls("a"), 1);
  EXPECT_EQ(prober_.calls("b"), 0);
  EXPECT_TRUE(events_.take().empty());
  monitor_.reset();
}

// With worker threads: a probe that hangs (until its timeout, in real life) holds one worker
// and its own app, while other apps keep their schedule.
TEST(HealthMonitorPoolTest, AHangingProbeDoesNotHoldUpOtherApps) {
  FakeProber prober;
  FakeClock clock;
  Events events;
  prober.hold("stuck");
  prober.setHealthy("fast", false);
  HealthMonitor monitor(prober, clock, events.callbacks(), {.probe_threads = 2});
  monitor.setTargets({httpTarget("stuck", 1, 3), httpTarget("fast", 2, 3)});
  for (int i = 1; i <= 3; ++i) {
    clock.advance(seconds(10));
    ASSERT_TRUE(prober.awaitCalls("fast", i));
    // The first probe of "stuck" is due with the first of "fast" but may reach its worker
    // later on a busy machine; wait for it so the count below says "no second probe".
    ASSERT_TRUE(prober.awaitCalls("stuck", 1));
  }
  ASSERT_TRUE(events.awaitCount(1));
  EXPECT_EQ(events.take(), Strings{"unhealthy fast: fast failed probe 3"});
  EXPECT_EQ(prober.calls("stuck"), 1) << "no second probe while the first one runs";
  prober.release("stuck");
  // Its result arrives; the next probe of "stuck" starts at its next due time.
  clock.advance(seconds(10));
  ASSERT_TRUE(prober.awaitCalls("stuck", 2));
  monitor.stop();
  EXPECT_TRUE(events.take().empty());
}

TEST(HealthMonitorPoolTest, ResultsOfAReplacedTargetAreDiscarded) {
  FakeProber prober;
  FakeClock clock;
  Events events;
  prober.hold("a");
  prober.setHealthy("a", false);
  HealthMonitor monitor(prober, clock, events.callbacks(), {.probe_threads = 1});
  monitor.setTargets({httpTarget("a", 1, 1)});
  clock.advance(seconds(10));
  ASSERT_TRUE(prober.awaitCalls("a", 1));
  monitor.setTargets({httpTarget("a", 2, 1)});  // restarted while its probe ran
  prober.release("a");
  monitor.stop();  // waits for the running probe; its failure belongs to the old task
  EXPECT_TRUE(events.take().empty());
  ASSERT_EQ(monitor.snapshot().size(), 1u);
  EXPECT_EQ(monitor.snapshot()[0].probes, 0u);
}

}  // namespace
}  // namespace fleetlet::health
