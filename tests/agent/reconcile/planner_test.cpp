#include "reconcile/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::reconcile {
namespace {

using Kind = Step::Kind;
using Task = ActualContainer::Task;

manifest::App app(std::string name, std::string hash,
                  manifest::RestartPolicy restart = manifest::RestartPolicy::kAlways) {
  manifest::App a;
  a.name = std::move(name);
  a.image = "127.0.0.1:5000/x:1";
  a.spec_hash = std::move(hash);
  a.restart = restart;
  return a;
}

ActualContainer container(const std::string& app, const std::string& hash, Task task,
                          uint32_t exit = 0) {
  ActualContainer c{.app = app, .id = containerId(app, hash), .spec_hash = hash, .task = task};
  c.exit_status = exit;
  return c;
}

std::vector<std::pair<Kind, std::string>> kinds(const AppPlan& p) {
  std::vector<std::pair<Kind, std::string>> out;
  out.reserve(p.steps.size());
  for (const auto& s : p.steps) out.emplace_back(s.kind, s.container_id);
  return out;
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

const auto kNow = Clock::time_point(std::chrono::hours(1000));

AppPlan plan(const manifest::App* desired, std::vector<ActualContainer> actual,
             std::string name = "a") {
  return planApp(
      {.name = std::move(name), .app = desired, .actual = std::move(actual), .now = kNow});
}

TEST(Planner, UndesiredAppIsStoppedAndRemovedWithTheGraceItWasCreatedWith) {
  auto running = container("gone", "x", Task::kRunning);
  running.stop_grace = std::chrono::seconds(20);
  auto p = plan(nullptr, {running, container("gone", "y", Task::kStopped)}, "gone");
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kStop, "gone-x"), Pair(Kind::kRemove, "gone-x"),
                                    Pair(Kind::kRemove, "gone-y")));
  EXPECT_EQ(p.steps[0].grace, std::chrono::seconds(20));
}

TEST(Planner, UnlabelledContainerOfAnUndesiredAppGetsTheDefaultGrace) {
  auto p = plan(nullptr, {container("gone", "x", Task::kRunning)}, "gone");
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].grace, kDefaultStopGrace);
}

TEST(Planner, NewAppIsPulledCreatedAndStarted) {
  auto a = app("db", "h1");
  auto p = plan(&a, {}, "db");
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kPull, "db-h1"), Pair(Kind::kCreate, "db-h1"),
                                    Pair(Kind::kStart, "db-h1")));
}

TEST(Planner, ConvergedAppNeedsNoSteps) {
  auto a = app("a", "h1");
  EXPECT_THAT(plan(&a, {container("a", "h1", Task::kRunning)}).steps, IsEmpty());
}

TEST(Planner, ChangedSpecKeepsTheOldVersionUntilTheNewOneStarts) {
  auto a = app("a", "h2");
  a.stop_grace = std::chrono::seconds(1);
  auto old = container("a", "h1", Task::kRunning);
  old.stop_grace = std::chrono::seconds(20);
  auto p = plan(&a, {old});
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kPull, "a-h2"), Pair(Kind::kCreate, "a-h2"),
                                    Pair(Kind::kStop, "a-h1"), Pair(Kind::kStart, "a-h2"),
                                    Pair(Kind::kRemove, "a-h1")));
  // The old container stops with the grace of the spec it runs, not the new one's.
  EXPECT_EQ(p.steps[2].grace, std::chrono::seconds(20));
}

TEST(Planner, ReplacementCreatedEarlierIsStartedBeforeTheOldOneGoes) {
  auto a = app("a", "h2");
  auto p = plan(&a, {container("a", "h1", Task::kRunning), container("a", "h2", Task::kCreated)});
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kStop, "a-h1"), Pair(Kind::kStart, "a-h2"),
                                    Pair(Kind::kRemove, "a-h1")));
}

TEST(Planner, AnExitedOldVersionRunsAgainUntilItsReplacementIsReady) {
  auto a = app("a", "h2");
  // Not pulled or created yet: the old one is restarted, then replaced as if it ran.
  auto p = plan(&a, {container("a", "h1", Task::kStopped, 1)});
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kRestart, "a-h1"), Pair(Kind::kPull, "a-h2"),
                                    Pair(Kind::kCreate, "a-h2"), Pair(Kind::kStop, "a-h1"),
                                    Pair(Kind::kStart, "a-h2"), Pair(Kind::kRemove, "a-h1")));
  // Created already (its start failed): tried at once; the old one starts should it fail.
  p = plan(&a, {container("a", "h1", Task::kStopped, 1), container("a", "h2", Task::kCreated)});
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kStart, "a-h2"), Pair(Kind::kRemove, "a-h1")));
  EXPECT_THAT(p.revert, ElementsAre("a-h1"));
  // An old version its policy would not restart stays down.
  auto never = app("a", "h2", manifest::RestartPolicy::kOnFailure);
  p = plan(&never, {container("a", "h1", Task::kStopped, 0)});
  EXPECT_EQ(p.steps.front().kind, Kind::kPull);
  EXPECT_THAT(p.revert, IsEmpty());
}

TEST(Planner, RunningReplacementOnlyRemovesTheOldVersion) {
  auto a = app("a", "h2");
  auto p = plan(&a, {container("a", "h1", Task::kStopped), container("a", "h2", Task::kRunning)});
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kRemove, "a-h1")));
}

TEST(Planner, KillThenDownloadStopsFirst) {
  auto a = app("a", "h2");
  a.update = manifest::UpdateStrategy::kKillThenDownload;
  EXPECT_THAT(
      kinds(plan(&a, {container("a", "h1", Task::kRunning)})),
      ElementsAre(Pair(Kind::kStop, "a-h1"), Pair(Kind::kRemove, "a-h1"), Pair(Kind::kPull, "a-h2"),
                  Pair(Kind::kCreate, "a-h2"), Pair(Kind::kStart, "a-h2")));
}

TEST(Planner, DuplicatesAreRemovedKeepingTheRunningOne) {
  auto a = app("a", "h1");
  auto stopped = container("a", "h1", Task::kStopped);
  stopped.id = "a-h1-copy";
  auto p = plan(&a, {stopped, container("a", "h1", Task::kRunning)});
  ASSERT_EQ(p.steps.size(), 1u);
  EXPECT_EQ(p.steps[0].kind, Kind::kRemove);
  EXPECT_EQ(p.steps[0].container_id, "a-h1-copy");
}

TEST(Planner, CreatedContainerWithoutTaskIsStarted) {
  auto a = app("a", "h1");
  EXPECT_THAT(kinds(plan(&a, {container("a", "h1", Task::kNone)})),
              ElementsAre(Pair(Kind::kStart, "a-h1")));
}

TEST(Planner, ExitedAppRestartsOnlyAfterItsBackoff) {
  auto a = app("a", "h1");
  AppPlanInput in{
      .name = "a", .app = &a, .actual = {container("a", "h1", Task::kStopped, 1)}, .now = kNow};
  in.state.backoff_until = kNow + std::chrono::seconds(4);
  auto waiting = planApp(in);
  EXPECT_THAT(waiting.steps, IsEmpty());
  EXPECT_EQ(waiting.wait_until, kNow + std::chrono::seconds(4));

  in.now = kNow + std::chrono::seconds(4);
  EXPECT_THAT(kinds(planApp(in)), ElementsAre(Pair(Kind::kRestart, "a-h1")));
}

TEST(Planner, RestartPolicies) {
  using P = manifest::RestartPolicy;
  auto never = app("never", "h", P::kNever);
  auto fail0 = app("fail0", "h", P::kOnFailure);
  auto fail1 = app("fail1", "h", P::kOnFailure);
  EXPECT_THAT(plan(&never, {container("never", "h", Task::kStopped, 1)}, "never").steps, IsEmpty());
  EXPECT_THAT(plan(&fail0, {container("fail0", "h", Task::kStopped, 0)}, "fail0").steps, IsEmpty());
  EXPECT_THAT(kinds(plan(&fail1, {container("fail1", "h", Task::kStopped, 2)}, "fail1")),
              ElementsAre(Pair(Kind::kRestart, "fail1-h")));
}

TEST(Planner, RequestedRestartOfARunningApp) {
  auto a = app("a", "h1");
  auto p = planApp({.name = "a",
                    .app = &a,
                    .actual = {container("a", "h1", Task::kRunning)},
                    .restart_requested = true,
                    .now = kNow});
  // Stopped first: starting a running task would leave it as it is.
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kStop, "a-h1"), Pair(Kind::kRestart, "a-h1")));
}

TEST(Planner, ARequestedRestartCarriesItsReason) {
  auto a = app("a", "h1");
  auto p = planApp({.name = "a",
                    .app = &a,
                    .actual = {container("a", "h1", Task::kRunning)},
                    .restart_requested = true,
                    .restart_reason = "failed health check: exec exited 1",
                    .now = kNow});
  ASSERT_EQ(p.steps.size(), 2U);
  EXPECT_EQ(p.steps[1].reason, "failed health check: exec exited 1");
}

TEST(Planner, ARunningTaskWhoseVolumeIsGoneIsRestartedWithTheReason) {
  auto a = app("a", "h1");
  auto p = planApp({.name = "a",
                    .app = &a,
                    .actual = {container("a", "h1", Task::kRunning)},
                    .lost_host_path = "/var/lib/fleetlet/volumes/a/data",
                    .now = kNow});
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kStop, "a-h1"), Pair(Kind::kRestart, "a-h1")));
  ASSERT_EQ(p.steps.size(), 2U);
  EXPECT_EQ(p.steps[1].reason, "its volume /var/lib/fleetlet/volumes/a/data is gone");

  // A task that is not running is left to its restart policy (start() makes the directory).
  auto stopped = planApp({.name = "a",
                          .app = &a,
                          .actual = {container("a", "h1", Task::kStopped)},
                          .lost_host_path = "/var/lib/fleetlet/volumes/a/data",
                          .now = kNow});
  EXPECT_THAT(kinds(stopped), ElementsAre(Pair(Kind::kRestart, "a-h1")));
  EXPECT_NE(stopped.steps[0].reason, p.steps[1].reason);
}

TEST(Planner, UnsupportedRuntimesAreReportedNotPlanned) {
  auto webview = app("ui", "h1");
  webview.runtime = manifest::Runtime::kWebview;
  auto p = plan(&webview, {}, "ui");
  EXPECT_THAT(p.steps, IsEmpty());
  EXPECT_TRUE(p.unsupported.has_value());
}

TEST(Planner, ANativeAppIsCreatedAndStartedWithoutAPull) {
  auto native = app("plc", "h1");
  native.runtime = manifest::Runtime::kNative;
  native.image.clear();
  auto p = plan(&native, {}, "plc");
  EXPECT_FALSE(p.unsupported.has_value());
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kCreate, "plc-h1"), Pair(Kind::kStart, "plc-h1")));
  // Restarted by its policy like a container.
  native.restart = manifest::RestartPolicy::kOnFailure;
  p = plan(&native, {container("plc", "h1", Task::kStopped, 3)}, "plc");
  EXPECT_THAT(kinds(p), ElementsAre(Pair(Kind::kRestart, "plc-h1")));
}

TEST(Backoff, DoublesFromOneSecondToFiveMinutesAndResetsAfterAStableRun) {
  using std::chrono::milliseconds;
  auto short_run = milliseconds(500);
  EXPECT_EQ(nextBackoff(milliseconds(0), short_run), milliseconds(1000));
  EXPECT_EQ(nextBackoff(milliseconds(1000), short_run), milliseconds(2000));
  EXPECT_EQ(nextBackoff(milliseconds(256000), short_run), milliseconds(300000));
  EXPECT_EQ(nextBackoff(milliseconds(300000), short_run), milliseconds(300000));
  EXPECT_EQ(nextBackoff(milliseconds(300000), std::chrono::minutes(10)), milliseconds(1000));
}

}  // namespace
}  // namespace fleetlet::reconcile
