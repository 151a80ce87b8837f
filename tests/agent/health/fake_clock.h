#pragma once
// FakeClock: a Clock whose time moves only when a test calls advance(), and that lets the
// test wait until the code under test is parked in waitUntil() (has nothing left to do
// before some future time).
//
// Thread-safety: all methods may be called from any thread. advance() notifies waiters'
// condition variables under their own mutexes, so a waiter must not be destroyed while
// advance() runs (tests advance and destroy from the same thread).

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "health/clock.h"

namespace fleetlet::health {

class FakeClock final : public Clock {
 public:
  TimePoint now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }

  void waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimePoint deadline) override {
    {
      std::lock_guard guard(mu_);
      if (now_ >= deadline) return;
      waiters_.push_back({&cv, lock.mutex()});
      ++parks_;
    }
    parked_.notify_all();
    // The caller's mutex stays held from the check above until wait() releases it, and
    // advance() notifies under that mutex: no wake-up is lost.
    cv.wait(lock);
    std::lock_guard guard(mu_);
    auto it = std::find_if(waiters_.begin(), waiters_.end(),
                           [&](const Waiter& w) { return w.cv == &cv; });
    if (it != waiters_.end()) waiters_.erase(it);
  }

  // Moves time forward and wakes every waiter.
  void advance(std::chrono::milliseconds by) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(mu_);
      now_ += by;
      waiters = waiters_;
    }
    for (const auto& w : waiters) {
      std::lock_guard lock(*w.mutex);
      w.cv->notify_all();
    }
  }

  // How many times some thread has parked in waitUntil() so far.
  uint64_t parks() const {
    std::lock_guard lock(mu_);
    return parks_;
  }

  // Blocks until a thread parked in waitUntil() after parks() returned `since`. The 10 s
  // limit is a safety net against a hung test, not a timing assertion. Returns false when it
  // was hit.
  bool awaitParked(uint64_t since) {
    std::unique_lock lock(mu_);
    return parked_.wait_for(lock, std::chrono::seconds(10),
                            [&] { return parks_ > since && !waiters_.empty(); });
  }

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mutex;
  };

  mutable std::mutex mu_;
  std::condition_variable parked_;
  TimePoint now_{std::chrono::hours(1000)};
  std::vector<Waiter> waiters_;
  uint64_t parks_ = 0;
};

}  // namespace fleetlet::health
