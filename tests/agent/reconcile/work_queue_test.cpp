// WorkQueue and FailureBackoff on an injected clock.
#include "reconcile/work_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace fleetlet::reconcile {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class WorkQueueTest : public ::testing::Test {
 protected:
  Clock::time_point now_ = Clock::time_point(std::chrono::hours(1000));
  WorkQueue queue_{[this] { return now_; }};
};

TEST_F(WorkQueueTest, AKeyIsQueuedOnceAndHandedOutInOrder) {
  queue_.add("a");
  queue_.add("b");
  queue_.add("a");
  EXPECT_EQ(queue_.size(), 2u);
  EXPECT_EQ(queue_.tryGet(), "a");
  EXPECT_EQ(queue_.tryGet(), "b");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
}

TEST_F(WorkQueueTest, AKeyBeingWorkedOnIsNotHandedOutTwiceButComesBackWhenDone) {
  queue_.add("a");
  ASSERT_EQ(queue_.tryGet(), "a");
  queue_.add("a");  // changed while a worker holds it
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  queue_.done("a");
  EXPECT_EQ(queue_.tryGet(), "a");
  queue_.done("a");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
}

TEST_F(WorkQueueTest, AddAfterHoldsAKeyBackUntilItsTimeAndTheEarliestTimeWins) {
  queue_.addAfter("a", now_ + seconds(10));
  queue_.addAfter("a", now_ + seconds(4));
  queue_.addAfter("a", now_ + seconds(8));
  EXPECT_EQ(queue_.nextDue(), now_ + seconds(4));
  now_ += seconds(3);
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  now_ += seconds(1);
  EXPECT_EQ(queue_.tryGet(), "a");
  queue_.done("a");
  EXPECT_EQ(queue_.nextDue(), std::nullopt);
}

TEST_F(WorkQueueTest, APlainAddDoesNotCancelALaterVisit) {
  queue_.addAfter("a", now_ + seconds(5));
  queue_.add("a");
  ASSERT_EQ(queue_.tryGet(), "a");
  queue_.done("a");
  EXPECT_EQ(queue_.nextDue(), now_ + seconds(5));
  now_ += seconds(5);
  EXPECT_EQ(queue_.tryGet(), "a");
}

TEST_F(WorkQueueTest, RateLimitedRetriesDoubleToFiveMinutesAndForgetStartsAgain) {
  std::vector<milliseconds> delays(11);
  for (auto& d : delays) d = queue_.addRateLimited("a");
  EXPECT_THAT(delays, ::testing::ElementsAre(seconds(1), seconds(2), seconds(4), seconds(8),
                                             seconds(16), seconds(32), seconds(64), seconds(128),
                                             seconds(256), seconds(300), seconds(300)));
  EXPECT_EQ(queue_.failures("a"), 11);
  EXPECT_EQ(queue_.addRateLimited("b"), seconds(1));  // per key
  queue_.forget("a");
  EXPECT_EQ(queue_.failures("a"), 0);
  EXPECT_EQ(queue_.addRateLimited("a"), seconds(1));
}

TEST_F(WorkQueueTest, GetBlocksUntilAKeyIsAddedAndShutDownReleasesIt) {
  std::optional<std::string> got;
  std::thread worker([&] { got = queue_.get(); });
  queue_.add("a");
  worker.join();
  EXPECT_EQ(got, "a");
  std::thread waiting([&] { got = queue_.get(); });
  queue_.shutDown();
  waiting.join();
  EXPECT_EQ(got, std::nullopt);
  queue_.add("b");  // ignored once shut down
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
}

}  // namespace
}  // namespace fleetlet::reconcile
