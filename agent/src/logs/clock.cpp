#include "logs/clock.h"

#include <thread>

namespace fleetlet::logs {

void ThreadSleeper::sleepFor(std::chrono::milliseconds duration) {
  std::this_thread::sleep_for(duration);
}

}  // namespace fleetlet::logs
