// The status outbox in SQLite: seqs never reused, merging into the open report, frozen
// reports, the byte bound with counted drops, and survival across reopening (as after kill -9).
#include "cloud/status_outbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace fleetlet::cloud {
namespace {

class StatusOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("outbox-test");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
  }
  std::unique_ptr<StatusOutbox> open(size_t max_bytes = StatusOutbox::kDefaultMaxBytes) {
    auto outbox = StatusOutbox::open(dir_->path() / "status.db", max_bytes);
    EXPECT_TRUE(outbox.has_value()) << outbox.error().message();
    return std::move(*outbox);
  }
  static Json report(int applied, std::vector<int> event_seqs) {
    Json events = Json::array();
    for (int s : event_seqs) events.push_back({{"seq", s}, {"kind", "exited"}});
    return {{"revisions", {{"applied", applied}}}, {"events", events}};
  }
  static Json body(const OutboxReport& r) { return Json::parse(r.body); }

  std::unique_ptr<fleetlet::testing::TempDir> dir_;
};

TEST_F(StatusOutboxTest, AnOpenReportAbsorbsTheNextAndAFrozenOneDoesNot) {
  auto outbox = open();
  EXPECT_EQ(outbox->add(report(1, {1, 2})), 1);
  EXPECT_EQ(outbox->add(report(2, {3})), 1);  // merged: never handed out
  auto first = outbox->next();
  ASSERT_TRUE(first && first->has_value());
  auto b = body(**first);
  EXPECT_EQ(b["seq"], 1);
  EXPECT_EQ(b["revisions"]["applied"], 2);  // the newer state
  EXPECT_EQ(b["events"].size(), 3U);        // all events, in order
  EXPECT_EQ(b["events"][2]["seq"], 3);
  // Report 1 is frozen now: the next state starts report 2, which grows while 1 is retried.
  EXPECT_EQ(outbox->add(report(3, {4})), 2);
  EXPECT_EQ(outbox->add(report(4, {5})), 2);
  auto again = outbox->next();
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->body, (*first)->body);  // the same bytes on a retry
  ASSERT_TRUE(outbox->ack(1));
  auto second = outbox->next();
  ASSERT_TRUE(second && second->has_value());
  EXPECT_EQ(body(**second)["events"].size(), 2U);
  ASSERT_TRUE(outbox->ack(2));
  auto none = outbox->next();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST_F(StatusOutboxTest, SeqsSurviveReopeningAndAreNeverReused) {
  {
    auto outbox = open();
    ASSERT_EQ(outbox->add(report(1, {})), 1);
    ASSERT_TRUE(outbox->next());
    ASSERT_TRUE(outbox->ack(1));
    ASSERT_EQ(outbox->add(report(2, {7})), 2);
    ASSERT_TRUE(outbox->next());  // handed out, then the process dies before the ack
  }
  auto outbox = open();
  auto pending = outbox->pending();
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->first, 1);
  auto again = outbox->next();
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->seq, 2);
  EXPECT_EQ(outbox->add(report(3, {})), 3);  // 2 is frozen; 1 was acknowledged: never reused
}

TEST_F(StatusOutboxTest, TheBoundDropsTheOldestEventsAndCountsThem) {
  auto outbox = open(2000);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(outbox->add(report(i, {i})));
  auto pending = outbox->pending();
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->first, 1);
  EXPECT_LE(pending->second, 2000);
  auto r = outbox->next();
  ASSERT_TRUE(r && r->has_value());
  auto b = body(**r);
  const auto kept = b["events"].size();
  EXPECT_GT(kept, 10U);
  EXPECT_EQ(b["eventsDropped"].get<size_t>() + kept, 200U);
  EXPECT_EQ(b["events"].back()["seq"], 199);  // the newest are kept
  EXPECT_EQ(b["revisions"]["applied"], 199);
}

TEST_F(StatusOutboxTest, QueuedEventsGoIntoTheNextReport) {
  auto outbox = open();
  ASSERT_TRUE(outbox->addEvent({{"seq", 10}, {"kind", "exited"}}));
  ASSERT_TRUE(outbox->addEvent({{"seq", 11}, {"kind", "restarted"}}));
  ASSERT_TRUE(outbox->addEvent({{"seq", 11}, {"kind", "restarted"}}));  // once only
  auto queued = outbox->queuedEvents();
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->size(), 2U);
  EXPECT_EQ(outbox->add(report(1, {})), 1);
  queued = outbox->queuedEvents();
  ASSERT_TRUE(queued);
  EXPECT_TRUE(queued->empty());
  auto r = outbox->next();
  ASSERT_TRUE(r && r->has_value());
  auto b = body(**r);
  ASSERT_EQ(b["events"].size(), 2U);
  EXPECT_EQ(b["events"][0]["seq"], 10);
  EXPECT_EQ(b["events"][1]["seq"], 11);
}

TEST_F(StatusOutboxTest, QueuedEventsAreBoundedAndTheDropsCounted) {
  auto outbox = open(2000);
  for (int i = 1; i <= 200; ++i) {
    ASSERT_TRUE(outbox->addEvent({{"seq", i}, {"kind", "exited"}, {"message", "exit code 1"}}));
  }
  auto queued = outbox->queuedEvents();
  ASSERT_TRUE(queued);
  EXPECT_LT(queued->size(), 200U);
  EXPECT_EQ(queued->back()["seq"], 200);  // the newest are kept
  EXPECT_EQ(outbox->add(report(1, {})), 1);
  auto r = outbox->next();
  ASSERT_TRUE(r && r->has_value());
  auto b = body(**r);
  EXPECT_EQ(b["eventsDropped"].get<size_t>() + b["events"].size(), 200U);
  EXPECT_EQ(b["events"].back()["seq"], 200);
}

}  // namespace
}  // namespace fleetlet::cloud
