#pragma once
// Time as the logs module sees it: injected, so tests control timestamps and waiting.

#include <chrono>

namespace fleetlet::logs {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() = 0;
};

class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Blocks the calling thread for `duration`.
  virtual void sleepFor(std::chrono::milliseconds duration) = 0;
};

class SystemClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() override { return std::chrono::system_clock::now(); }
};

class ThreadSleeper : public Sleeper {
 public:
  void sleepFor(std::chrono::milliseconds duration) override;
};

}  // namespace fleetlet::logs
