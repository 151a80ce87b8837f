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

manifest::NodeState state(std::vector<manifest::App> apps) {
  manifest::NodeState s;
  s.revision = 1;
  for (auto& a : apps) {
    s.start_order.push_back(a.name);
    s.apps.emplace(a.name, std::move(a));
  }
  return s;
}

ActualContainer container(std::string app, std::string hash, Task task, uint32_t exit = 0) {
  ActualContainer c{.app = app, .id = containerId(app, hash), .spec_hash = hash, .task = task};
  c.exit_status = exit;
  return c;
}

std::vector<std::pair<Kind, std::string>> kinds(const Plan& p) {
  std::vector<std::pair<Kind, std::string>> out;
  for (const auto& s : p.steps) out.emplace_back(s.kind, s.app);
  return out;
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

const auto kNow = Clock::time_point(std::chrono::hours(1000));

TEST(Planner, NothingDesiredTouchesNothing) {
  PlanInput in{.desired = nullptr, .actual = {container("a", "h1", Task::kRunning)}, .now = kNow};
  EXPECT_THAT(planSteps(in).steps, IsEmpty());
}

TEST(Planner, NewAppsArePulledCreatedAndStartedInDependencyOrder) {
  auto desired = state({app("db", "h1"), app("web", "h2")});
  desired.start_order = {"db", "web"};
  PlanInput in{.desired = &desired, .now = kNow};
  auto plan = planSteps(in);
  EXPECT_THAT(kinds(plan), ElementsAre(Pair(Kind::kPull, "db"), Pair(Kind::kCreate, "db"),
                                       Pair(Kind::kStart, "db"), Pair(Kind::kPull, "web"),
                                       Pair(Kind::kCreate, "web"), Pair(Kind::kStart, "web")));
  EXPECT_EQ(plan.steps[1].container_id, "db-h1");
}

TEST(Planner, ConvergedNodeNeedsNoSteps) {
  auto desired = state({app("a", "h1")});
  PlanInput in{.desired = &desired, .actual = {container("a", "h1", Task::kRunning)}, .now = kNow};
  EXPECT_THAT(planSteps(in).steps, IsEmpty());
}

TEST(Planner, ChangedSpecPullsBeforeKillingByDefault) {
  auto desired = state({app("a", "h2")});
  PlanInput in{.desired = &desired, .actual = {container("a", "h1", Task::kRunning)}, .now = kNow};
  EXPECT_THAT(kinds(planSteps(in)),
              ElementsAre(Pair(Kind::kPull, "a"), Pair(Kind::kStop, "a"), Pair(Kind::kRemove, "a"),
                          Pair(Kind::kCreate, "a"), Pair(Kind::kStart, "a")));
}

TEST(Planner, KillThenDownloadStopsFirst) {
  auto a = app("a", "h2");
  a.update = manifest::UpdateStrategy::kKillThenDownload;
  auto desired = state({a});
  PlanInput in{.desired = &desired, .actual = {container("a", "h1", Task::kRunning)}, .now = kNow};
  EXPECT_THAT(kinds(planSteps(in)),
              ElementsAre(Pair(Kind::kStop, "a"), Pair(Kind::kRemove, "a"), Pair(Kind::kPull, "a"),
                          Pair(Kind::kCreate, "a"), Pair(Kind::kStart, "a")));
}

TEST(Planner, OnlyTheChangedAppIsReplaced) {
  auto desired = state({app("a", "h1"), app("b", "new")});
  PlanInput in{
      .desired = &desired,
      .actual = {container("a", "h1", Task::kRunning), container("b", "old", Task::kRunning)},
      .now = kNow};
  for (const auto& s : planSteps(in).steps) EXPECT_EQ(s.app, "b");
}

TEST(Planner, UndesiredAppsAreStoppedAndRemovedFirst) {
  auto desired = state({app("a", "h1")});
  PlanInput in{
      .desired = &desired,
      .actual = {container("gone", "x", Task::kRunning), container("old", "y", Task::kStopped)},
      .now = kNow};
  EXPECT_THAT(kinds(planSteps(in)),
              ElementsAre(Pair(Kind::kRemove, "old"), Pair(Kind::kStop, "gone"),
                          Pair(Kind::kRemove, "gone"), Pair(Kind::kPull, "a"),
                          Pair(Kind::kCreate, "a"), Pair(Kind::kStart, "a")));
}

TEST(Planner, DuplicatesAreRemovedKeepingTheRunningOne) {
  auto desired = state({app("a", "h1")});
  auto stopped = container("a", "h1", Task::kStopped);
  stopped.id = "a-h1-copy";
  PlanInput in{
      .desired = &desired, .actual = {stopped, container("a", "h1", Task::kRunning)}, .now = kNow};
  auto plan = planSteps(in);
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(plan.steps[0].kind, Kind::kRemove);
  EXPECT_EQ(plan.steps[0].container_id, "a-h1-copy");
}

TEST(Planner, CreatedContainerWithoutTaskIsStarted) {
  auto desired = state({app("a", "h1")});
  PlanInput in{.desired = &desired, .actual = {container("a", "h1", Task::kNone)}, .now = kNow};
  EXPECT_THAT(kinds(planSteps(in)), ElementsAre(Pair(Kind::kStart, "a")));
}

TEST(Planner, ExitedAppRestartsOnlyAfterItsBackoff) {
  auto desired = state({app("a", "h1")});
  PlanInput in{
      .desired = &desired, .actual = {container("a", "h1", Task::kStopped, 1)}, .now = kNow};
  in.states["a"].backoff_until = kNow + std::chrono::seconds(4);
  auto waiting = planSteps(in);
  EXPECT_THAT(waiting.steps, IsEmpty());
  EXPECT_THAT(waiting.waiting, ElementsAre("a"));
  EXPECT_EQ(waiting.wake_at, kNow + std::chrono::seconds(4));

  in.now = kNow + std::chrono::seconds(4);
  EXPECT_THAT(kinds(planSteps(in)), ElementsAre(Pair(Kind::kRestart, "a")));
}

TEST(Planner, RestartPolicies) {
  using P = manifest::RestartPolicy;
  auto desired = state({app("never", "h", P::kNever), app("fail0", "h", P::kOnFailure),
                        app("fail1", "h", P::kOnFailure)});
  PlanInput in{.desired = &desired,
               .actual = {container("never", "h", Task::kStopped, 1),
                          container("fail0", "h", Task::kStopped, 0),
                          container("fail1", "h", Task::kStopped, 2)},
               .now = kNow};
  EXPECT_THAT(kinds(planSteps(in)), ElementsAre(Pair(Kind::kRestart, "fail1")));
}

TEST(Planner, RequestedRestartOfARunningApp) {
  auto desired = state({app("a", "h1")});
  PlanInput in{.desired = &desired,
               .actual = {container("a", "h1", Task::kRunning)},
               .restart_requested = {"a"},
               .now = kNow};
  EXPECT_THAT(kinds(planSteps(in)), ElementsAre(Pair(Kind::kRestart, "a")));
}

TEST(Planner, UnsupportedRuntimesAreReportedNotPlanned) {
  auto native = app("plc", "h1");
  native.runtime = manifest::Runtime::kNative;
  auto desired = state({native});
  PlanInput in{.desired = &desired, .now = kNow};
  auto plan = planSteps(in);
  EXPECT_THAT(plan.steps, IsEmpty());
  EXPECT_TRUE(plan.unsupported.contains("plc"));
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
