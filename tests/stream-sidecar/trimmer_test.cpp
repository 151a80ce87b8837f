#include "memory/trimmer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "test_client.h"

namespace fleetlet::streams {
namespace {

using testing::kPatience;

// Waits until `ready` holds; false after the patience ran out.
template <typename F>
bool eventually(F ready) {
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(MemoryTrimmer, TrimsOnceEnoughWasReleasedAndNoMoreOftenThanItsInterval) {
  std::atomic<int> trims{0};
  std::promise<void> interval_over;
  std::shared_future<void> over = interval_over.get_future().share();
  std::atomic<int> pauses{0};
  MemoryTrimmer trimmer({.threshold = 1000,
                         .interval = std::chrono::milliseconds(1000),
                         .trim = [&] { ++trims; },
                         .pause =
                             [&](std::chrono::milliseconds) {
                               ++pauses;
                               if (pauses == 1) over.wait();
                             }});
  trimmer.released(999);
  trimmer.released(0);
  EXPECT_EQ(trimmer.trims(), 0u);
  trimmer.released(1);  // 1000: worth a trim
  ASSERT_TRUE(eventually([&] { return trimmer.trims() == 1 && pauses == 1; }));
  // Within the interval more is released: no second trim until the interval is over.
  trimmer.released(5000);
  EXPECT_EQ(trims, 1);
  interval_over.set_value();
  ASSERT_TRUE(eventually([&] { return trimmer.trims() == 2; }));
  EXPECT_EQ(trims, 2);
}

}  // namespace
}  // namespace fleetlet::streams
