#include "core/recovery.h"

#include <gtest/gtest.h>

namespace fleetlet::webview {
namespace {

using namespace std::chrono_literals;

class RecoveryTest : public ::testing::Test {
 protected:
  SteadyTime t0 = SteadyTime{} + 1000s;
  RecoveryOptions options{.initial_backoff = 250ms,
                          .max_backoff = 2s,
                          .stable_after = 60s,
                          .hang_timeout = 5s,
                          .unresponsive_grace = 3s};
};

TEST_F(RecoveryTest, FirstFailureReloadsAtOnceThenBacksOffUpToTheMaximum) {
  Recovery r(options);
  r.loadStarted(t0);
  EXPECT_EQ(r.failed(LoadState::kCrashed, "web process crashed", t0), 0ms);
  EXPECT_EQ(r.failed(LoadState::kCrashed, "again", t0 + 1s), 250ms);
  EXPECT_EQ(r.failed(LoadState::kFailed, "load", t0 + 2s), 500ms);
  EXPECT_EQ(r.failed(LoadState::kCrashed, "x", t0 + 3s), 1000ms);
  EXPECT_EQ(r.failed(LoadState::kCrashed, "x", t0 + 4s), 2000ms);
  EXPECT_EQ(r.failed(LoadState::kCrashed, "x", t0 + 5s), 2000ms);
  EXPECT_EQ(r.failures(), 6u);
  EXPECT_EQ(r.lastFailure(), LoadState::kCrashed);
  EXPECT_EQ(r.lastFailureAt(), t0 + 5s);
}

TEST_F(RecoveryTest, AStablePageResetsTheBackoff) {
  Recovery r(options);
  r.failed(LoadState::kCrashed, "a", t0);
  r.failed(LoadState::kCrashed, "b", t0 + 1s);
  r.loadStarted(t0 + 2s);
  r.loadFinished(t0 + 2s);
  r.heartbeat(t0 + 30s);
  EXPECT_EQ(r.failed(LoadState::kCrashed, "not stable yet", t0 + 31s), 500ms);
  r.loadStarted(t0 + 40s);
  r.loadFinished(t0 + 40s);
  r.heartbeat(t0 + 101s);  // healthy for 61 s
  EXPECT_EQ(r.failed(LoadState::kCrashed, "after a stable minute", t0 + 102s), 0ms);
  EXPECT_EQ(r.consecutiveFailures(), 1u);
}

TEST_F(RecoveryTest, NoHeartbeatMeansHung) {
  Recovery r(options);
  EXPECT_FALSE(r.hung(t0 + 100s)) << "idle views are not watched";
  r.loadStarted(t0);
  EXPECT_FALSE(r.hung(t0 + 4s));
  EXPECT_TRUE(r.hung(t0 + 5s)) << "a load that never beats hangs";
  r.heartbeat(t0 + 4s);
  r.loadFinished(t0 + 4s);
  EXPECT_FALSE(r.hung(t0 + 8s));
  EXPECT_TRUE(r.hung(t0 + 9s));
  EXPECT_EQ(r.heartbeatAge(t0 + 9s), 5000ms);
  r.failed(LoadState::kHung, "no heartbeat", t0 + 9s);
  EXPECT_FALSE(r.hung(t0 + 100s)) << "waiting for its reload";
}

TEST_F(RecoveryTest, WatchFromRestartsTheHangClock) {
  Recovery r(options);
  r.loadStarted(t0);
  r.heartbeat(t0 + 1s);
  r.watchFrom(t0 + 20s);  // shown again after being hidden (throttled timers)
  EXPECT_FALSE(r.hung(t0 + 24s));
  EXPECT_TRUE(r.hung(t0 + 25s));
}

TEST_F(RecoveryTest, UnresponsiveForTheGraceMeansHung) {
  Recovery r(options);
  r.loadStarted(t0);
  r.heartbeat(t0);
  r.responsive(false, t0 + 1s);
  EXPECT_FALSE(r.hung(t0 + 3500ms));
  r.responsive(true, t0 + 3500ms);
  r.heartbeat(t0 + 3500ms);
  EXPECT_FALSE(r.hung(t0 + 4100ms));
  r.responsive(false, t0 + 5s);
  r.heartbeat(t0 + 7s);
  EXPECT_TRUE(r.hung(t0 + 8s)) << "unresponsive for 3 s even though a beat came in";
}

}  // namespace
}  // namespace fleetlet::webview
