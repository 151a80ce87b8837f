#include "subscribe/heartbeat.h"

#include <gtest/gtest.h>

namespace fleetlet::streams {
namespace {

using namespace std::chrono_literals;
using TimePoint = HeartbeatSchedule::TimePoint;

const TimePoint kStart{};

TEST(HeartbeatSchedule, AnAcknowledgedHeartbeatKeepsTheClient) {
  HeartbeatSchedule h(kStart, 100ms);
  EXPECT_FALSE(h.sendDue(kStart + 99ms));
  EXPECT_TRUE(h.sendDue(kStart + 100ms));
  h.sent(4, kStart + 100ms);
  EXPECT_FALSE(h.sendDue(kStart + 150ms));
  h.acked(4);
  EXPECT_FALSE(h.expired(kStart + 250ms));
  EXPECT_TRUE(h.sendDue(kStart + 200ms));
  EXPECT_EQ(h.nextDue(), kStart + 200ms);
}

TEST(HeartbeatSchedule, AnUnacknowledgedHeartbeatExpiresWhenTheNextIsDue) {
  HeartbeatSchedule h(kStart, 100ms);
  h.sent(1, kStart + 100ms);
  h.acked(0);  // an older seq does not count
  EXPECT_FALSE(h.expired(kStart + 199ms));
  EXPECT_TRUE(h.expired(kStart + 200ms));
  EXPECT_EQ(h.deadline(), kStart + 200ms);
}

TEST(HeartbeatSchedule, AHeartbeatThatCouldNotBeSentStillHasItsDeadline) {
  // The client stopped reading, so the writer is stuck and never sends the heartbeat due at
  // 100 ms: it is cut off at 200 ms all the same.
  HeartbeatSchedule h(kStart, 100ms);
  EXPECT_FALSE(h.expired(kStart + 199ms));
  EXPECT_TRUE(h.expired(kStart + 200ms));
}

TEST(HeartbeatSchedule, AcksCannotBeGivenInAdvance) {
  HeartbeatSchedule h(kStart, 100ms);
  h.acked(1000);  // before any heartbeat was sent
  h.sent(1, kStart + 100ms);
  EXPECT_TRUE(h.expired(kStart + 200ms));
  h.acked(7);  // a later seq acknowledges the outstanding one
  EXPECT_FALSE(h.expired(kStart + 200ms));
}

}  // namespace
}  // namespace fleetlet::streams
