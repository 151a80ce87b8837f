// The reconciler's loop logic against a fake ContainerRuntime (the real one is exercised by
// the integration tests in tests/agent/fleetletd) and a real StateStore in a temp dir.
#include "reconcile/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

namespace fleetlet::reconcile {
namespace {

using Task = ActualContainer::Task;

class FakeRuntime : public ContainerRuntime {
 public:
  Result<std::vector<ActualContainer>> list() override {
    std::lock_guard lock(mu);
    std::vector<ActualContainer> out;
    for (const auto& [id, c] : containers) out.push_back(c);
    return out;
  }
  Status ensureImage(const manifest::App& app) override {
    std::lock_guard lock(mu);
    if (failing_pulls.contains(app.name)) {
      return fail(ErrorCode::kNotFound, "manifest unknown: {}", app.image);
    }
    return {};
  }
  Status create(const manifest::App& app, const std::string& id, int64_t revision) override {
    std::lock_guard lock(mu);
    containers.emplace(
        id, ActualContainer{
                .app = app.name, .id = id, .spec_hash = app.spec_hash, .revision = revision});
    return {};
  }
  Result<uint32_t> start(const manifest::App&, const std::string& id) override {
    std::lock_guard lock(mu);
    auto& c = containers.at(id);
    c.task = Task::kRunning;
    c.pid = next_pid++;
    started.push_back(c.app);
    return c.pid;
  }
  Status stop(const std::string& id, std::chrono::milliseconds) override {
    std::lock_guard lock(mu);
    if (auto it = containers.find(id); it != containers.end()) it->second.task = Task::kStopped;
    return {};
  }
  Status remove(const std::string& id) override {
    std::lock_guard lock(mu);
    containers.erase(id);
    return {};
  }
  void exit(const std::string& app, uint32_t code) {
    std::lock_guard lock(mu);
    for (auto& [id, c] : containers) {
      if (c.app == app) {
        c.task = Task::kStopped;
        c.exit_status = code;
      }
    }
  }

  std::mutex mu;
  std::map<std::string, ActualContainer> containers;
  std::set<std::string> failing_pulls;
  std::vector<std::string> started;
  uint32_t next_pid = 100;
};

manifest::App app(std::string name, std::string hash, std::vector<std::string> deps = {}) {
  manifest::App a;
  a.name = std::move(name);
  a.image = "127.0.0.1:5000/x:1";
  a.spec_hash = std::move(hash);
  a.depends_on = std::move(deps);
  return a;
}

std::shared_ptr<const manifest::NodeState> state(int64_t revision, std::vector<manifest::App> apps,
                                                 std::vector<std::string> order) {
  auto s = std::make_shared<manifest::NodeState>();
  s->revision = revision;
  for (auto& a : apps) s->apps.emplace(a.name, std::move(a));
  s->start_order = std::move(order);
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
    reconciler_ = std::make_unique<Reconciler>(
        runtime_, *store_,
        ReconcilerOptions{
            .parallelism = 2,
            .now = [this] { return now_; },
            .on_event =
                [this](const std::string& app, const std::string& kind, const std::string&) {
                  std::lock_guard lock(events_mu_);
                  events_.push_back(app + ":" + kind);
                }});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Reconciler::PassResult pass() {
    auto r = reconciler_->reconcileOnce();
    EXPECT_TRUE(r) << r.error().message();
    return r.value_or(Reconciler::PassResult{});
  }
  std::string stateOf(const std::string& app) {
    for (const auto& s : reconciler_->snapshot()) {
      if (s.name == app) return s.state;
    }
    return "?";
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
  reconciler_->setDesired(state(3, {app("a", "h1"), app("b", "h2")}, {"a", "b"}));
  auto first = pass();
  EXPECT_EQ(first.steps, 6u);
  EXPECT_FALSE(first.converged);
  EXPECT_EQ(stateOf("a"), "running");
  EXPECT_EQ(store_->appliedRevision(), 0);
  auto second = pass();
  EXPECT_EQ(second.steps, 0u);
  EXPECT_TRUE(second.converged);
  EXPECT_EQ(store_->appliedRevision(), 3);
  EXPECT_EQ(store_->lastGoodRevision(), 3);
}

TEST_F(ReconcilerTest, DependenciesStartFirst) {
  reconciler_->setDesired(
      state(1, {app("web", "h1", {"db"}), app("db", "h2"), app("cache", "h3", {"db"})},
            {"db", "cache", "web"}));
  pass();
  ASSERT_EQ(runtime_.started.size(), 3u);
  EXPECT_EQ(runtime_.started.front(), "db");
}

TEST_F(ReconcilerTest, CrashingAppBacksOffWithGrowingDelays) {
  reconciler_->setDesired(state(1, {app("crash", "h1")}, {"crash"}));
  pass();
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 4; ++i) {
    runtime_.exit("crash", 1);
    auto waiting = pass();  // sees the exit, waits
    ASSERT_TRUE(waiting.wake_at.has_value());
    EXPECT_EQ(stateOf("crash"), "backoff");
    delays.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(*waiting.wake_at - now_));
    now_ = *waiting.wake_at;
    pass();  // restarts
    EXPECT_EQ(stateOf("crash"), "running");
  }
  using std::chrono::milliseconds;
  EXPECT_THAT(delays, ::testing::ElementsAre(milliseconds(1000), milliseconds(2000),
                                             milliseconds(4000), milliseconds(8000)));
  auto states = store_->appStates().value();
  EXPECT_EQ(states["crash"].restarts, 4);
  EXPECT_EQ(states["crash"].last_exit_code, 1);
}

TEST_F(ReconcilerTest, BackoffSurvivesAnAgentRestart) {
  reconciler_->setDesired(state(1, {app("crash", "h1")}, {"crash"}));
  pass();
  runtime_.exit("crash", 1);
  pass();
  // A new reconciler on the same store and runtime does not restart before the backoff ends.
  Reconciler again(runtime_, *store_, {.now = [this] { return now_; }});
  again.setDesired(state(1, {app("crash", "h1")}, {"crash"}));
  auto r = again.reconcileOnce();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->steps, 0u);
}

TEST_F(ReconcilerTest, AFailingAppDoesNotStopTheOthers) {
  runtime_.failing_pulls.insert("broken");
  reconciler_->setDesired(state(2, {app("broken", "h1"), app("fine", "h2")}, {"broken", "fine"}));
  auto r = pass();
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(stateOf("fine"), "running");
  EXPECT_EQ(stateOf("broken"), "failed");
  auto errors = reconciler_->errors();
  ASSERT_TRUE(errors.contains("broken"));
  EXPECT_NE(errors["broken"].find("manifest unknown"), std::string::npos);
  EXPECT_EQ(store_->appliedRevision(), 0);
}

TEST_F(ReconcilerTest, RemovedAppIsRemoved) {
  reconciler_->setDesired(state(1, {app("a", "h1"), app("b", "h2")}, {"a", "b"}));
  pass();
  reconciler_->setDesired(state(2, {app("a", "h1")}, {"a"}));
  pass();
  EXPECT_EQ(runtime_.containers.size(), 1u);
  EXPECT_TRUE(runtime_.containers.contains(containerId("a", "h1")));
  std::lock_guard lock(events_mu_);
  EXPECT_THAT(events_, ::testing::Contains("b:removed"));
}

}  // namespace
}  // namespace fleetlet::reconcile
