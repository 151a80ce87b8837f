#include "subscribe/hub.h"

#include <gtest/gtest.h>

namespace fleetlet::streams {
namespace {

std::shared_ptr<const Event> event(std::string semantics, std::int64_t offset) {
  auto e = std::make_shared<Event>();
  e->semantics = std::move(semantics);
  e->source = "a";
  e->offset = offset;
  return e;
}

TEST(Hub, DeliversMatchingEventsAndWakes) {
  Hub hub;
  int wakes = 0;
  auto sub = hub.subscribe({Filter{.semantics = "x"}}, 10, [&] { ++wakes; });
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
  auto slow = hub.subscribe({Filter{}}, 2, [] {});
  auto fast = hub.subscribe({Filter{}}, 100, [] {});
  hub.deliver({event("x", 0), event("x", 1), event("x", 2)});
  EXPECT_TRUE(slow->overflowed());
  EXPECT_TRUE(slow->take().empty());
  EXPECT_FALSE(fast->overflowed());
  EXPECT_EQ(fast->take().size(), 3u);
}

TEST(Hub, DestroyedSubscriptionsUnregister) {
  Hub hub;
  {
    auto sub = hub.subscribe({Filter{}}, 1, [] {});
    EXPECT_EQ(hub.subscriberCount(), 1u);
  }
  EXPECT_EQ(hub.subscriberCount(), 0u);
  hub.deliver({event("x", 0)});
}

}  // namespace
}  // namespace fleetlet::streams
