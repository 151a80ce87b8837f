// The reconciler's per-app work against a fake ContainerRuntime (the real one is exercised by
// the integration tests in tests/agent/fleetletd) and a real StateStore in a temp dir. Most
// tests work the queue on the test's thread with runDue() and an injected clock; the threaded
// ones run the real workers.
#include "reconcile/reconciler.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

namespace fleetlet::reconcile {
namespace {

using Task = ActualContainer::Task;
using std::chrono::milliseconds;
using std::chrono::seconds;

class FakeRuntime : public ContainerRuntime {
 public:
  Result<std::vector<ActualContainer>> list() override {
    std::lock_guard lock(mu);
    std::vector<ActualContainer> out;
    out.reserve(containers.size());
    for (const auto& [id, c] : containers) out.push_back(c);
    return out;
  }
  Result<std::vector<ActualContainer>> inspect(const std::vector<std::string>& ids) override {
    std::lock_guard lock(mu);
    ++inspections;
    std::vector<ActualContainer> out;
    for (const auto& id : ids) {
      if (auto it = containers.find(id); it != containers.end()) out.push_back(it->second);
    }
    return out;
  }
  Result<bool> hasImage(const manifest::App& app) override {
    std::lock_guard lock(mu);
    return !missing_images.contains(app.image);
  }
  Status ensureImage(const manifest::App& app, std::stop_token stop) override {
    std::unique_lock lock(mu);
    ++pulls[app.image];
    cv.wait(lock, stop, [&] { return !blocked_pulls.contains(app.image); });
    if (stop.stop_requested()) return fail(ErrorCode::kUnavailable, "cancelled");
    if (failing_pulls.contains(app.image)) {
      return fail(ErrorCode::kNotFound, "manifest unknown: {}", app.image);
    }
    missing_images.erase(app.image);
    return {};
  }
  Status create(const manifest::App& app, const std::string& id, int64_t revision) override {
    std::lock_guard lock(mu);
    if (throwing_creates.contains(app.name)) throw std::bad_alloc();
    containers.emplace(id, ActualContainer{.app = app.name,
                                           .id = id,
                                           .spec_hash = app.spec_hash,
                                           .revision = revision,
                                           .stop_grace = app.stop_grace});
    return {};
  }
  Result<uint32_t> start(const manifest::App&, const std::string& id) override {
    std::lock_guard lock(mu);
    auto& c = containers.at(id);
    if (failing_starts.contains(c.spec_hash)) {
      return fail(ErrorCode::kInternal, "runc create failed: cgroup memory limit too low");
    }
    c.task = Task::kRunning;
    c.pid = next_pid++;
    started.push_back(c.id);
    return c.pid;
  }
  Status refresh(const manifest::App& app) override {
    std::lock_guard lock(mu);
    ++refreshes[app.name];
    if (failing_refresh) return fail(ErrorCode::kUnavailable, "events service: not up");
    return {};
  }
  Status stop(const std::string& id, milliseconds grace) override {
    std::lock_guard lock(mu);
    graces[id] = grace;
    if (auto it = containers.find(id); it != containers.end()) it->second.task = Task::kStopped;
    return {};
  }
  Status remove(const std::string& id) override {
    std::lock_guard lock(mu);
    containers.erase(id);
    return {};
  }
  void pruneAppData(const std::set<std::string>& live) override {
    std::lock_guard lock(mu);
    pruned_with = live;
  }

  // The app's task exits; returns its container id and pid.
  std::pair<std::string, uint32_t> exit(const std::string& app, uint32_t code) {
    std::lock_guard lock(mu);
    for (auto& [id, c] : containers) {
      if (c.app == app) {
        c.task = Task::kStopped;
        c.exit_status = code;
        return {id, c.pid};
      }
    }
    return {};
  }
  void release(const std::string& image) {
    {
      std::lock_guard lock(mu);
      blocked_pulls.erase(image);
    }
    cv.notify_all();
  }
  Task taskOf(const std::string& id) {
    std::lock_guard lock(mu);
    auto it = containers.find(id);
    return it == containers.end() ? Task::kNone : it->second.task;
  }

  std::mutex mu;
  std::condition_variable_any cv;
  std::map<std::string, ActualContainer> containers;
  std::set<std::string> missing_images;  // hasImage() says no until pulled
  std::set<std::string> failing_pulls;
  std::set<std::string> blocked_pulls;   // ensureImage waits until released
  std::set<std::string> failing_starts;  // spec hashes whose task cannot start
  std::map<std::string, int> refreshes;  // refresh() calls by app
  bool failing_refresh = false;
  std::set<std::string> throwing_creates;  // apps whose create throws std::bad_alloc
  std::map<std::string, int> pulls;
  std::map<std::string, milliseconds> graces;
  std::vector<std::string> started;
  std::set<std::string> pruned_with;
  int inspections = 0;
  uint32_t next_pid = 100;
};

manifest::App app(std::string name, std::string hash, std::vector<std::string> deps = {}) {
  manifest::App a;
  a.name = std::move(name);
  a.image = "127.0.0.1:5000/" + a.name + ":1";
  a.spec_hash = std::move(hash);
  a.depends_on = std::move(deps);
  return a;
}

std::shared_ptr<const manifest::NodeState> state(int64_t revision,
                                                 std::vector<manifest::App> apps) {
  auto s = std::make_shared<manifest::NodeState>();
  s->revision = revision;
  for (auto& a : apps) {
    s->start_order.push_back(a.name);
    s->apps.emplace(a.name, std::move(a));
  }
  return s;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fleetlet-reconcile-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto store = state::StateStore::open(dir_);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    reconciler_ = make();
  }
  void TearDown() override {
    reconciler_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Reconciler> make(size_t parallelism = 2,
                                   std::function<Clock::time_point()> now = {}) {
    if (!now) now = [this] { return now_; };
    return std::make_unique<Reconciler>(
        runtime_, *store_,
        ReconcilerOptions{
            .parallelism = parallelism,
            .pull_parallelism = 1,
            .resync = std::chrono::hours(10),  // out of the way of the clock steps
            .now = std::move(now),
            .on_event =
                [this](const std::string& app, const std::string& kind, const std::string&) {
                  std::lock_guard lock(events_mu_);
                  events_.push_back(app + ":" + kind);
                },
            .on_app = {},
            .on_first_pass =
                [this] {
                  std::lock_guard lock(events_mu_);
                  events_.push_back(":first-pass");
                }});
  }
  AppSnapshot snap(const std::string& app) {
    for (const auto& s : reconciler_->snapshot()) {
      if (s.name == app) return s;
    }
    return {.name = app, .state = "absent"};
  }
  std::string stateOf(const std::string& app) { return snap(app).state; }
  // Moves the clock to the next due item (not the periodic resync) and works it.
  milliseconds advance() {
    auto due = reconciler_->nextDue().value_or(now_);
    auto step = std::chrono::duration_cast<milliseconds>(due - now_);
    EXPECT_GT(step.count(), 0) << "nothing was due later";
    now_ = due;
    reconciler_->runDue();
    return step;
  }
  // App "flaky" whose image cannot be pulled, after two failed attempts: next in 4 s.
  void backOffAFlakyPull() {
    const std::string image = "127.0.0.1:5000/flaky:1";
    runtime_.missing_images.insert(image);
    runtime_.failing_pulls.insert(image);
    reconciler_->setDesired(state(1, {app("flaky", "h1")}));
    reconciler_->runDue();
    EXPECT_EQ(advance(), seconds(1));
    EXPECT_EQ(advance(), seconds(2));
    ASSERT_EQ(snap("flaky").retry_at, now_ + seconds(4));
  }
  bool hasEvent(const std::string& e) {
    std::lock_guard lock(events_mu_);
    return std::find(events_.begin(), events_.end(), e) != events_.end();
  }

  std::filesystem::path dir_;
  FakeRuntime runtime_;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<Reconciler> reconciler_;
  Clock::time_point now_ = Clock::time_point(std::chrono::hours(500000));
  std::mutex events_mu_;
  std::vector<std::string> events_;
};

TEST_F(ReconcilerTest, ConvergesThenMarksTheRevisionApplied) {
  reconciler_->setDesired(state(3, {app("a", "h1"), app("b", "h2")}));
  reconciler_->runDue();
  EXPECT_EQ(stateOf("a"), "running");
  EXPECT_EQ(stateOf("b"), "running");
  EXPECT_EQ(store_->appliedRevision(), 3);
  EXPECT_EQ(store_->lastGoodRevision(), 3);
  EXPECT_TRUE(hasEvent(":converged"));
}

TEST_F(ReconcilerTest, EveryDesiredAppIsListedAtOnce) {
  runtime_.missing_images.insert("127.0.0.1:5000/b:1");
  runtime_.blocked_pulls.insert("127.0.0.1:5000/b:1");
  reconciler_->setDesired(state(1, {app("a", "h1"), app("b", "h2"), app("c", "h3")}));
  // Before any work: all three, pending.
  for (const auto* name : {"a", "b", "c"}) EXPECT_EQ(stateOf(name), "pending") << name;
  auto stop = std::jthread([this] { reconciler_->runDue(); });
  // The pull of b blocks runDue(); a and c were worked first and already show their state.
  for (int i = 0; i < 500 && stateOf("c") != "running"; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(stateOf("a"), "running");
  EXPECT_EQ(stateOf("c"), "running");
  EXPECT_EQ(stateOf("b"), "pulling");
  runtime_.release("127.0.0.1:5000/b:1");
}

TEST_F(ReconcilerTest, DependenciesStartFirst) {
  reconciler_->setDesired(
      state(1, {app("web", "h1", {"db"}), app("cache", "h3", {"db"}), app("db", "h2")}));
  reconciler_->runDue();
  ASSERT_EQ(runtime_.started.size(), 3u);
  EXPECT_EQ(runtime_.started.front(), "db-h2");
}

TEST_F(ReconcilerTest, AppWaitsForADependencyThatIsStillPulling) {
  runtime_.missing_images.insert("127.0.0.1:5000/db:1");
  runtime_.failing_pulls.insert("127.0.0.1:5000/db:1");
  reconciler_->setDesired(state(1, {app("web", "h1", {"db"}), app("db", "h2")}));
  reconciler_->runDue();
  // db's pull failed: web no longer waits for it (as before: order, not health).
  EXPECT_EQ(stateOf("db"), "backoff");
  EXPECT_EQ(stateOf("web"), "running");
}

TEST_F(ReconcilerTest, CrashingAppBacksOffWithGrowingDelays) {
  reconciler_->setDesired(state(1, {app("crash", "h1")}));
  reconciler_->runDue();
  std::vector<milliseconds> delays;
  for (int i = 0; i < 4; ++i) {
    auto [id, pid] = runtime_.exit("crash", 1);
    reconciler_->containerChanged(id, pid);
    reconciler_->runDue();  // sees the exit, waits
    EXPECT_EQ(stateOf("crash"), "backoff");
    delays.push_back(advance());  // restarts when the backoff ends
    EXPECT_EQ(stateOf("crash"), "running");
  }
  EXPECT_THAT(delays, ::testing::ElementsAre(milliseconds(1000), milliseconds(2000),
                                             milliseconds(4000), milliseconds(8000)));
  auto states = store_->appStates().value();
  EXPECT_EQ(states["crash"].restarts, 4);
  EXPECT_EQ(states["crash"].last_exit_code, 1);
}

TEST_F(ReconcilerTest, DeadTaskIsNeverReportedRunning) {
  reconciler_->setDesired(state(1, {app("a", "h1")}));
  reconciler_->runDue();
  ASSERT_EQ(stateOf("a"), "running");
  // An exec'd probe exiting changes nothing.
  const auto id = snap("a").container_id;
  const auto pid = snap("a").pid;
  reconciler_->containerChanged(id, pid + 1000);
  EXPECT_EQ(stateOf("a"), "running");
  // The task's exit event alone, before any worker has looked: no longer running, no pid.
  runtime_.exit("a", 137);
  reconciler_->containerChanged(id, pid);
  EXPECT_NE(stateOf("a"), "running");
  EXPECT_EQ(snap("a").pid, 0u);
}

TEST_F(ReconcilerTest, BackoffSurvivesAnAgentRestart) {
  reconciler_->setDesired(state(1, {app("crash", "h1")}));
  reconciler_->runDue();
  runtime_.exit("crash", 1);
  reconciler_->resync();
  reconciler_->runDue();
  auto started = runtime_.started.size();
  // A new reconciler on the same store and runtime does not restart before the backoff ends.
  reconciler_ = make();
  reconciler_->setDesired(state(1, {app("crash", "h1")}));
  reconciler_->runDue();
  EXPECT_EQ(runtime_.started.size(), started);
  EXPECT_EQ(stateOf("crash"), "backoff");
  advance();
  EXPECT_EQ(runtime_.started.size(), started + 1);
}

TEST_F(ReconcilerTest, AFailingAppDoesNotStopTheOthers) {
  runtime_.missing_images.insert("127.0.0.1:5000/broken:1");
  runtime_.failing_pulls.insert("127.0.0.1:5000/broken:1");
  reconciler_->setDesired(state(2, {app("broken", "h1"), app("fine", "h2")}));
  reconciler_->runDue();
  EXPECT_EQ(stateOf("fine"), "running");
  auto broken = snap("broken");
  EXPECT_EQ(broken.state, "backoff");
  EXPECT_THAT(broken.message, ::testing::HasSubstr("manifest unknown"));
  EXPECT_THAT(broken.message, ::testing::HasSubstr("retry in 1s"));
  EXPECT_EQ(broken.retry_at, now_ + seconds(1));
  auto errors = reconciler_->errors();
  ASSERT_TRUE(errors.contains("broken"));
  EXPECT_EQ(store_->appliedRevision(), 0);
}

TEST_F(ReconcilerTest, FailingStepsAreRetriedWithDoublingBackoffNotInALoop) {
  const std::string image = "127.0.0.1:5000/broken:1";
  runtime_.missing_images.insert(image);
  runtime_.failing_pulls.insert(image);
  reconciler_->setDesired(state(1, {app("broken", "h1")}));
  reconciler_->runDue();
  EXPECT_EQ(runtime_.pulls[image], 1);
  std::vector<milliseconds> delays;
  for (int i = 0; i < 10; ++i) {
    // Nothing is retried before its time, however often the queue is worked or resynced.
    now_ += milliseconds(1);
    reconciler_->resync();
    reconciler_->runDue();
    EXPECT_EQ(runtime_.pulls[image], i + 1);
    delays.push_back(advance() + milliseconds(1));
    EXPECT_EQ(runtime_.pulls[image], i + 2);
  }
  EXPECT_THAT(delays, ::testing::ElementsAre(seconds(1), seconds(2), seconds(4), seconds(8),
                                             seconds(16), seconds(32), seconds(64), seconds(128),
                                             seconds(256), seconds(300)));
  // A spec change starts again at 1 s.
  auto fixed = app("broken", "h2");
  fixed.image = "127.0.0.1:5000/fixed:1";
  runtime_.missing_images.insert(fixed.image);
  runtime_.failing_pulls.insert(fixed.image);
  reconciler_->setDesired(state(2, {fixed}));
  reconciler_->runDue();
  EXPECT_EQ(snap("broken").retry_at, now_ + seconds(1));
}

TEST_F(ReconcilerTest, ASuccessResetsTheFailureBackoff) {
  ASSERT_NO_FATAL_FAILURE(backOffAFlakyPull());
  // The registry recovers: the app runs, and its next failure starts at 1 s again.
  runtime_.failing_pulls.clear();
  advance();
  ASSERT_EQ(stateOf("flaky"), "running");
  runtime_.failing_starts.insert("h1");
  auto [id, pid] = runtime_.exit("flaky", 1);
  reconciler_->containerChanged(id, pid);
  reconciler_->runDue();  // the exit: restart backoff
  advance();              // the restart fails: failure backoff from 1 s
  EXPECT_EQ(stateOf("flaky"), "backoff");
  EXPECT_EQ(snap("flaky").retry_at, now_ + seconds(1));
}

TEST_F(ReconcilerTest, ARequestedRestartStartsTheFailureBackoffAgain) {
  ASSERT_NO_FATAL_FAILURE(backOffAFlakyPull());
  // fleetletctl restart: tried at once, and a failure waits 1 s again, not 8 s.
  reconciler_->requestRestart("flaky");
  reconciler_->runDue();
  EXPECT_EQ(stateOf("flaky"), "backoff");
  EXPECT_EQ(snap("flaky").retry_at, now_ + seconds(1));
}

TEST_F(ReconcilerTest, AnExceptionInOneAppsWorkBacksThatAppOffOnly) {
  runtime_.throwing_creates.insert("bad");
  reconciler_->setDesired(state(1, {app("bad", "h1"), app("good", "h2")}));
  reconciler_->runDue();
  EXPECT_EQ(stateOf("good"), "running");
  auto bad = snap("bad");
  EXPECT_EQ(bad.state, "backoff");
  EXPECT_THAT(bad.message, ::testing::HasSubstr("retry in 1s"));
  EXPECT_TRUE(reconciler_->errors().contains("bad"));
  // It is tried again after its backoff, and runs once the fault is gone.
  runtime_.throwing_creates.clear();
  advance();
  EXPECT_EQ(stateOf("bad"), "running");
}

TEST_F(ReconcilerTest, AnImageIsPulledOnceForAllItsApps) {
  std::vector<manifest::App> apps;
  for (int i = 0; i < 50; ++i) {
    auto a = app("app" + std::to_string(i), "h" + std::to_string(i));
    a.image = "127.0.0.1:5000/shared:1";
    apps.push_back(a);
  }
  runtime_.missing_images.insert("127.0.0.1:5000/shared:1");
  reconciler_->setDesired(state(1, apps));
  reconciler_->runDue();
  EXPECT_EQ(runtime_.pulls["127.0.0.1:5000/shared:1"], 1);
  EXPECT_EQ(runtime_.started.size(), 50u);
}

TEST_F(ReconcilerTest, RemovedAppIsRemovedAndLeavesTheList) {
  reconciler_->setDesired(state(1, {app("a", "h1"), app("b", "h2")}));
  reconciler_->runDue();
  reconciler_->setDesired(state(2, {app("a", "h1")}));
  EXPECT_EQ(stateOf("b"), "running");  // until a worker has removed it
  reconciler_->runDue();
  EXPECT_EQ(runtime_.containers.size(), 1u);
  EXPECT_TRUE(runtime_.containers.contains(containerId("a", "h1")));
  EXPECT_EQ(stateOf("b"), "absent");
  EXPECT_TRUE(hasEvent("b:removed"));
  EXPECT_EQ(store_->appliedRevision(), 2);
}

TEST_F(ReconcilerTest, ContainersOfUnknownAppsFoundByAResyncAreRemoved) {
  runtime_.containers.emplace("ghost-x", ActualContainer{.app = "ghost",
                                                         .id = "ghost-x",
                                                         .spec_hash = "x",
                                                         .task = Task::kRunning,
                                                         .stop_grace = seconds(7)});
  reconciler_->setDesired(state(1, {app("a", "h1")}));
  reconciler_->runDue();
  EXPECT_FALSE(runtime_.containers.contains("ghost-x"));
  EXPECT_EQ(runtime_.graces["ghost-x"], seconds(7));
  EXPECT_EQ(stateOf("ghost"), "absent");
  // App data of everything else may go; the live apps' stays.
  EXPECT_TRUE(runtime_.pruned_with.contains("a"));
}

TEST_F(ReconcilerTest, StopsUseTheGraceOfTheSpecThatRuns) {
  auto slow = app("slow", "h1");
  slow.stop_grace = seconds(20);
  auto gone = app("gone", "h9");
  gone.stop_grace = seconds(30);
  reconciler_->setDesired(state(1, {slow, gone}));
  reconciler_->runDue();
  // Replaced by a spec with a 1 s grace: the running one still gets its 20 s.
  auto quick = app("slow", "h2");
  quick.stop_grace = seconds(1);
  reconciler_->setDesired(state(2, {quick}));
  reconciler_->runDue();
  EXPECT_EQ(runtime_.graces[containerId("slow", "h1")], seconds(20));
  // Removed: its own 30 s, not a default.
  EXPECT_EQ(runtime_.graces[containerId("gone", "h9")], seconds(30));
}

TEST_F(ReconcilerTest, ReplacementThatCannotStartLeavesTheOldVersionRunning) {
  reconciler_->setDesired(state(1, {app("a", "good")}));
  reconciler_->runDue();
  runtime_.failing_starts.insert("bad");
  reconciler_->setDesired(state(2, {app("a", "bad")}));
  reconciler_->runDue();
  EXPECT_EQ(runtime_.taskOf(containerId("a", "good")), Task::kRunning);
  EXPECT_TRUE(hasEvent("a:reverted"));
  auto s = snap("a");
  EXPECT_EQ(s.state, "backoff");
  EXPECT_THAT(s.message, ::testing::HasSubstr("cgroup memory limit too low"));
  EXPECT_EQ(store_->appliedRevision(), 1);
  // Retried after the backoff, the old one keeps running while the new one fails.
  advance();
  EXPECT_EQ(runtime_.taskOf(containerId("a", "good")), Task::kRunning);
  // Once the new version can start, the old one goes.
  runtime_.failing_starts.clear();
  advance();
  EXPECT_EQ(runtime_.taskOf(containerId("a", "bad")), Task::kRunning);
  EXPECT_FALSE(runtime_.containers.contains(containerId("a", "good")));
  EXPECT_EQ(store_->appliedRevision(), 2);
}

// The old version of a replaced app is kept alive by its restart policy until the replacement
// runs: an old task that exits while the new one cannot start, or while the new image cannot
// be pulled, is started again.
TEST_F(ReconcilerTest, AnOldVersionThatExitsIsRestartedWhileItsReplacementIsNotReady) {
  reconciler_->setDesired(state(1, {app("a", "good")}));
  reconciler_->runDue();
  runtime_.failing_starts.insert("bad");
  reconciler_->setDesired(state(2, {app("a", "bad")}));
  reconciler_->runDue();
  ASSERT_EQ(stateOf("a"), "backoff");
  const std::string good = containerId("a", "good");
  auto crash = [&](const std::string& id) {
    uint32_t pid = 0;
    {
      std::lock_guard lock(runtime_.mu);
      auto& c = runtime_.containers.at(id);
      c.task = Task::kStopped;
      c.exit_status = 1;
      pid = c.pid;
    }
    reconciler_->containerChanged(id, pid);
    reconciler_->runDue();
  };
  crash(good);
  ASSERT_EQ(runtime_.taskOf(good), Task::kStopped);
  for (int i = 0; i < 10 && runtime_.taskOf(good) != Task::kRunning; ++i) advance();
  EXPECT_EQ(runtime_.taskOf(good), Task::kRunning) << "the old version runs again";
  EXPECT_NE(runtime_.taskOf(containerId("a", "bad")), Task::kRunning);

  // The new image cannot be pulled: the old version is restarted while the pulls fail.
  auto pulled = app("a", "unpullable");
  pulled.image = "127.0.0.1:5000/a:2";
  runtime_.missing_images.insert(pulled.image);
  runtime_.failing_pulls.insert(pulled.image);
  reconciler_->setDesired(state(3, {pulled}));
  reconciler_->runDue();
  ASSERT_EQ(runtime_.taskOf(good), Task::kRunning);
  crash(good);
  for (int i = 0; i < 10 && runtime_.taskOf(good) != Task::kRunning; ++i) advance();
  EXPECT_EQ(runtime_.taskOf(good), Task::kRunning);
  EXPECT_TRUE(hasEvent("a:restarted"));
}

// A running app's listeners are refreshed on every pass (a restarted fleetletd makes them
// again); a failure is shown and retried, the app keeps running and is not backed off.
TEST_F(ReconcilerTest, RunningAppsAreRefreshedAndARefreshProblemIsShownNotBackedOff) {
  reconciler_->setDesired(state(1, {app("a", "h1")}));
  reconciler_->runDue();
  EXPECT_GE(runtime_.refreshes["a"], 1);
  runtime_.failing_refresh = true;
  reconciler_->resync();
  reconciler_->runDue();
  auto s = snap("a");
  EXPECT_EQ(s.state, "running");
  EXPECT_THAT(s.message, ::testing::HasSubstr("events service: not up"));
  const int before = runtime_.refreshes["a"];
  runtime_.failing_refresh = false;
  advance();  // the retry comes after a few seconds, without a resync
  EXPECT_GT(runtime_.refreshes["a"], before);
  EXPECT_EQ(snap("a").message, "");
  EXPECT_EQ(runtime_.taskOf(containerId("a", "h1")), Task::kRunning);
}

// on_first_pass fires once, after the first resync's apps were each worked on: after a
// restart the running ones have been refreshed by then.
TEST_F(ReconcilerTest, FirstPassFiresOnceAfterEveryAppWasWorkedOn) {
  reconciler_ = make();
  reconciler_->setDesired(state(1, {app("a", "h1"), app("b", "h2")}));
  reconciler_->runDue();
  auto fired = [&] {
    std::lock_guard lock(events_mu_);
    return std::count(events_.begin(), events_.end(), ":first-pass");
  };
  EXPECT_EQ(fired(), 1);
  EXPECT_GE(runtime_.refreshes["a"], 1) << "before it fired";
  EXPECT_GE(runtime_.refreshes["b"], 1);
  reconciler_->resync();
  reconciler_->runDue();
  EXPECT_EQ(fired(), 1) << "once";
}

// Threaded: a pull that never ends holds up only its own app.
TEST_F(ReconcilerTest, ASlowPullDelaysOnlyItsOwnApp) {
  reconciler_ = make(/*parallelism=*/1, [] { return Clock::now(); });
  runtime_.missing_images.insert("127.0.0.1:5000/slow:1");
  runtime_.blocked_pulls.insert("127.0.0.1:5000/slow:1");
  reconciler_->setDesired(state(1, {app("slow", "h1"), app("crash", "h2")}));
  std::jthread runner([this] { EXPECT_TRUE(reconciler_->run()); });
  auto waitFor = [&](const std::function<bool()>& cond) {
    for (int i = 0; i < 1000 && !cond(); ++i) std::this_thread::sleep_for(milliseconds(10));
    return cond();
  };
  ASSERT_TRUE(waitFor([&] { return stateOf("crash") == "running"; }));
  // crash dies and is restarted by its policy (after its 1 s backoff) while slow still pulls;
  // a changed app is applied meanwhile too.
  auto [id, pid] = runtime_.exit("crash", 1);
  reconciler_->containerChanged(id, pid);
  // The restart is counted when it begins ("starting"); wait for the task it starts.
  ASSERT_TRUE(waitFor([&] {
    return store_->appStates().value()["crash"].restarts == 1 && stateOf("crash") == "running";
  }));
  reconciler_->setDesired(state(2, {app("slow", "h1"), app("crash", "h3")}));
  ASSERT_TRUE(waitFor([&] { return snap("crash").container_id == containerId("crash", "h3"); }));
  EXPECT_EQ(stateOf("slow"), "pulling");
  reconciler_->stop();  // cancels the pull
}

int threadCount() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// Threaded: hundreds of failing apps cost a bounded number of threads.
TEST_F(ReconcilerTest, ThreadsAreBoundedWhateverTheNumberOfApps) {
  reconciler_ = make(/*parallelism=*/3, [] { return Clock::now(); });
  std::vector<manifest::App> apps;
  for (int i = 0; i < 300; ++i) {
    auto a = app("app" + std::to_string(i), "h" + std::to_string(i));
    runtime_.missing_images.insert(a.image);
    runtime_.failing_pulls.insert(a.image);
    apps.push_back(a);
  }
  int before = threadCount();
  reconciler_->setDesired(state(1, apps));
  int most = before;
  {
    std::jthread runner([this] { EXPECT_TRUE(reconciler_->run()); });
    for (int i = 0; i < 500; ++i) {
      most = std::max(most, threadCount());
      auto errors = reconciler_->errors();
      if (errors.size() == 300) break;
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(reconciler_->errors().size(), 300u);
    reconciler_->stop();
  }
  // 3 workers and 1 pull thread (the test's own runner thread is the +1).
  EXPECT_LE(most - before, 3 + 1 + 1);
}

}  // namespace
}  // namespace fleetlet::reconcile

namespace fleetlet::reconcile {
namespace {

// Apps of a runtime run outside containerd (webview) take their status from
// ReconcilerOptions::external_status; without one they fail as unsupported.
TEST_F(ReconcilerTest, ExternallyRunAppsReportTheRuntimesStatus) {
  auto webviewApp = [](std::string name, std::string hash) {
    manifest::App a = app(std::move(name), std::move(hash));
    a.runtime = manifest::Runtime::kWebview;
    a.image.clear();
    return a;
  };
  reconciler_->setDesired(state(1, {webviewApp("ui", "h1")}));
  reconciler_->runDue();
  EXPECT_EQ(stateOf("ui"), "failed");
  EXPECT_EQ(snap("ui").message, "runtime not supported by this fleetletd yet");

  std::mutex mu;
  ExternalAppStatus external{.state = "starting", .message = "", .restarts = 0};
  reconciler_.reset();
  reconciler_ = std::make_unique<Reconciler>(
      runtime_, *store_,
      ReconcilerOptions{
          .parallelism = 1,
          .resync = std::chrono::hours(10),
          .now = [this] { return now_; },
          .external_status = [&](const std::string& name) -> std::optional<ExternalAppStatus> {
            std::lock_guard lock(mu);
            if (name != "ui") return std::nullopt;
            return external;
          }});
  reconciler_->setDesired(state(2, {webviewApp("ui", "h2")}));
  reconciler_->runDue();
  EXPECT_EQ(stateOf("ui"), "starting");
  {
    std::lock_guard lock(mu);
    external = {.state = "running", .message = "", .restarts = 2};
  }
  reconciler_->externalChanged("ui");
  reconciler_->runDue();
  EXPECT_EQ(stateOf("ui"), "running");
  EXPECT_EQ(snap("ui").runtime_state.restarts, 2);
  EXPECT_EQ(store_->appliedRevision(), 2);
  EXPECT_TRUE(runtime_.containers.empty()) << "no container for a webview app";
}

}  // namespace
}  // namespace fleetlet::reconcile
