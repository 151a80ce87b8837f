#include "subscribe/hub.h"

#include <gtest/gtest.h>

namespace fleetlet::streams {
namespace {

std::shared_ptr<const Event> event(std::string semantics, std::int64_t offset,
                                   std::size_t payload_bytes = 2) {
  auto e = std::make_shared<Event>();
  e->semantics = std::move(semantics);
  e->source = "a";
  e->offset = offset;
  e->payload = std::string(payload_bytes, '1');
  return e;
}

TEST(Hub, DeliversMatchingEventsAndWakes) {
  Hub hub;
  int wakes = 0;
  auto sub = hub.subscribe({Filter{.semantics = "x"}}, {.events = 10}, [&] { ++wakes; });
  hub.deliver({event("x", 0), event("y", 1), event("x", 2)});
  hub.deliver({event("y", 3)});
  EXPECT_EQ(wakes, 1);
  auto got = sub->take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1]->offset, 2);
  EXPECT_TRUE(sub->take().empty());
}

TEST(Hub, OverflowMarksTheSubscriberAndDropsItsQueue) {
  Hub hub;
  auto slow = hub.subscribe({Filter{}}, {.events = 2}, [] {});
  auto fast = hub.subscribe({Filter{}}, {.events = 100}, [] {});
  hub.deliver({event("x", 0), event("x", 1), event("x", 2)});
  EXPECT_TRUE(slow->overflowed());
  EXPECT_TRUE(slow->take().empty());
  EXPECT_FALSE(fast->overflowed());
  EXPECT_EQ(fast->take().size(), 3u);
}

TEST(Hub, QueuesAreBoundedByBytesButAlwaysTakeOneEvent) {
  Hub hub;
  constexpr std::size_t kMiB = 1024 * 1024;
  int wakes = 0;
  auto sub = hub.subscribe({Filter{}}, {.events = 65536, .bytes = 3 * kMiB}, [&] { ++wakes; });
  // A single event larger than the whole budget still gets through, alone.
  hub.deliver({event("x", 0, 5 * kMiB)});
  EXPECT_FALSE(sub->overflowed());
  auto got = sub->take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->payload.size(), 5 * kMiB);
  // Taking empties the budget: two 1 MiB events fit, the third (past 3 MiB) overflows, with
  // far fewer events queued than the event limit.
  hub.deliver({event("x", 1, kMiB), event("x", 2, kMiB)});
  EXPECT_FALSE(sub->overflowed());
  hub.deliver({event("x", 3, kMiB)});
  EXPECT_TRUE(sub->overflowed());
  EXPECT_TRUE(sub->take().empty());  // the queue was dropped
  EXPECT_EQ(wakes, 3);
}

TEST(Hub, DestroyedSubscriptionsUnregister) {
  Hub hub;
  {
    auto sub = hub.subscribe({Filter{}}, {.events = 1}, [] {});
    EXPECT_EQ(hub.subscriberCount(), 1u);
  }
  EXPECT_EQ(hub.subscriberCount(), 0u);
  hub.deliver({event("x", 0)});
}

}  // namespace
}  // namespace fleetlet::streams
