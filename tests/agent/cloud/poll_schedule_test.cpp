// When the cloud is polled next: jitter, backoff, Retry-After, max-age. Random values are
// injected; nothing waits.
#include "cloud/poll_schedule.h"

#include <gtest/gtest.h>

namespace fleetlet::cloud {
namespace {

using std::chrono::seconds;

TEST(PollSchedule, AnsweredPollsWaitTheIntervalWithTwentyPercentJitter) {
  double r = 0.5;
  PollSchedule s(seconds(60), [&] { return r; });
  EXPECT_EQ(s.next({.answered = true}), seconds(60));
  r = 0.0;
  EXPECT_EQ(s.next({.answered = true}), seconds(48));
  r = 0.999999;
  EXPECT_NEAR(s.next({.answered = true}).count(), 72000, 1);
}

TEST(PollSchedule, ALongPollCountsTowardsTheInterval) {
  PollSchedule s(seconds(60), [] { return 0.5; });
  EXPECT_EQ(s.next({.answered = true, .elapsed = seconds(55)}), seconds(5));
  EXPECT_EQ(s.next({.answered = true, .elapsed = seconds(70)}), seconds(0));
}

TEST(PollSchedule, FailuresBackOffFrom15sDoublingUpToTheInterval) {
  PollSchedule s(seconds(100), [] { return 0.5; });
  EXPECT_EQ(s.next({}), seconds(15));
  EXPECT_EQ(s.next({}), seconds(30));
  EXPECT_EQ(s.next({}), seconds(60));
  EXPECT_EQ(s.next({}), seconds(100));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.next({}), seconds(100));
  EXPECT_EQ(s.failures(), 104);
  // One answer resets the backoff.
  EXPECT_EQ(s.next({.answered = true}), seconds(100));
  EXPECT_EQ(s.next({}), seconds(15));
}

TEST(PollSchedule, BackoffIsJitteredToo) {
  PollSchedule s(seconds(100), [] { return 0.0; });
  EXPECT_EQ(s.next({}), seconds(12));
}

TEST(PollSchedule, RetryAfterIsAFloor) {
  PollSchedule s(seconds(60), [] { return 0.5; });
  EXPECT_EQ(s.next({.retry_after = seconds(300)}), seconds(300));
  EXPECT_EQ(s.next({.retry_after = seconds(1)}), seconds(30));  // 2nd failure: 30 s
  EXPECT_EQ(s.next({.answered = true, .retry_after = seconds(90)}), seconds(90));
  EXPECT_EQ(s.next({.retry_after = seconds(1000000)}), std::chrono::hours(24));
}

TEST(PollSchedule, MaxAgeReplacesTheInterval) {
  PollSchedule s(seconds(60), [] { return 0.5; });
  EXPECT_EQ(s.next({.answered = true, .max_age = seconds(600)}), seconds(600));
  EXPECT_EQ(s.next({.answered = true, .max_age = seconds(0)}), seconds(1));
}

TEST(Headers, RetryAfterSecondsAndDates) {
  auto now = std::chrono::system_clock::from_time_t(1784800000);
  EXPECT_EQ(parseRetryAfter("120", now), seconds(120));
  EXPECT_EQ(parseRetryAfter(" 7 ", now), seconds(7));
  // 1784800000 + 90 s = Thu, 23 Jul 2026 09:48:10 GMT.
  EXPECT_EQ(parseRetryAfter("Thu, 23 Jul 2026 09:48:10 GMT", now), seconds(90));
  EXPECT_EQ(parseRetryAfter("Thu, 23 Jul 2026 09:40:00 GMT", now), seconds(0));
  EXPECT_FALSE(parseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(parseRetryAfter("-5", now).has_value());
}

TEST(Headers, MaxAge) {
  EXPECT_EQ(parseMaxAge("max-age=30"), seconds(30));
  EXPECT_EQ(parseMaxAge("public, Max-Age=\"45\", must-revalidate"), seconds(45));
  EXPECT_FALSE(parseMaxAge("no-cache").has_value());
  EXPECT_FALSE(parseMaxAge("max-age=x").has_value());
  EXPECT_FALSE(parseMaxAge("").has_value());
}

}  // namespace
}  // namespace fleetlet::cloud
