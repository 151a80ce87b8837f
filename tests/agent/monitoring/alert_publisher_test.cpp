// AlertPublisher: alert events reach the event service in order and none is lost while it
// restarts within the queue's bound; failures back off; a full queue drops the oldest, counted.
#include "monitoring/alert_publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::monitoring {
namespace {

using namespace std::chrono_literals;

// An event service behind EventPoster: down (no answer) or answering `status`.
class FakeEventService : public EventPoster {
 public:
  Result<long> post(const std::string& body) override {
    ++attempts;
    if (!up) return fail(ErrorCode::kUnavailable, "127.0.0.1:4457 unreachable: connection refused");
    if (status / 100 == 2) received.push_back(body);
    return status;
  }
  bool up = true;
  long status = 200;
  int attempts = 0;
  std::vector<std::string> received;
};

TEST(AlertPublisher, NothingIsLostWhileTheServiceRestartsAndOrderIsKept) {
  FakeEventService service;
  AlertPublisher publisher(service, {.max_queued = 100, .first_backoff = 1s, .max_backoff = 8s});
  auto t = AlertPublisher::Clock::time_point{} + 1h;
  publisher.enqueue("raise 1");
  EXPECT_EQ(publisher.flush(t), 1U);
  service.up = false;  // the service restarts
  publisher.enqueue("continue 2");
  publisher.enqueue("continue 3");
  EXPECT_EQ(publisher.flush(t), 0U);
  EXPECT_EQ(service.attempts, 2);
  // Backoff: 1 s, then 2, 4, 8, 8 — no post before it has passed.
  EXPECT_EQ(publisher.flush(t + 500ms), 0U);
  EXPECT_EQ(service.attempts, 2);
  t += 1s;
  publisher.flush(t);
  EXPECT_EQ(service.attempts, 3);
  t += 1s;
  publisher.flush(t);  // 2 s not yet passed
  EXPECT_EQ(service.attempts, 3);
  for (auto step : {1s, 4s, 8s, 8s}) {
    t += step;
    publisher.flush(t);
  }
  EXPECT_EQ(service.attempts, 7);
  EXPECT_EQ(publisher.failures(), 6U);  // every attempt but the first
  publisher.enqueue("fall 4");
  service.up = true;  // back
  t += 8s;
  EXPECT_EQ(publisher.flush(t), 3U);
  EXPECT_THAT(service.received,
              ::testing::ElementsAre("raise 1", "continue 2", "continue 3", "fall 4"));
  EXPECT_EQ(publisher.queued(), 0U);
  EXPECT_EQ(publisher.dropped(), 0U);
  // The backoff was reset by the success: the next failure waits 1 s again.
  service.up = false;
  publisher.enqueue("raise 5");
  publisher.flush(t);
  const int before = service.attempts;
  publisher.flush(t + 1s);
  EXPECT_EQ(service.attempts, before + 1);
}

TEST(AlertPublisher, AFullQueueDropsTheOldestAndARefusedBodyIsSkipped) {
  FakeEventService service;
  service.up = false;
  AlertPublisher publisher(service, {.max_queued = 3});
  for (int i = 1; i <= 5; ++i) publisher.enqueue("e" + std::to_string(i));
  EXPECT_EQ(publisher.queued(), 3U);
  EXPECT_EQ(publisher.dropped(), 2U);
  service.up = true;
  EXPECT_EQ(publisher.flush(AlertPublisher::Clock::time_point{} + 1h), 3U);
  EXPECT_THAT(service.received, ::testing::ElementsAre("e3", "e4", "e5"));

  // A 400 will never be taken: dropped and counted, the rest goes on; a 503 is retried.
  FakeEventService picky;
  AlertPublisher second(picky);
  picky.status = 400;
  second.enqueue("bad");
  EXPECT_EQ(second.flush(AlertPublisher::Clock::time_point{}), 0U);
  EXPECT_EQ(second.refused(), 1U);
  EXPECT_EQ(second.queued(), 0U);
  picky.status = 503;
  second.enqueue("later");
  second.flush(AlertPublisher::Clock::time_point{});
  EXPECT_EQ(second.queued(), 1U);
  picky.status = 200;
  EXPECT_EQ(second.flush(AlertPublisher::Clock::time_point{} + 2s), 1U);
  EXPECT_THAT(picky.received, ::testing::ElementsAre("later"));
}

}  // namespace
}  // namespace fleetlet::monitoring
