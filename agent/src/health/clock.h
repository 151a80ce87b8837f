#pragma once
// Clock: the time source of the health monitor, injected so that tests drive time by hand.
//
// Thread-safety: implementations are safe to call from any thread.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace fleetlet::health {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;

  // Monotonic now.
  virtual TimePoint now() const = 0;

  // Blocks the caller, who holds `lock` (released while blocked, held again on return), until
  // now() >= deadline or `cv` is notified. May return spuriously: callers re-check their
  // state in a loop. TimePoint::max() waits for a notification only.
  virtual void waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         TimePoint deadline) = 0;
};

// std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  void waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimePoint deadline) override {
    if (deadline == TimePoint::max()) {
      cv.wait(lock);
    } else {
      cv.wait_until(lock, deadline);
    }
  }
};

}  // namespace fleetlet::health
