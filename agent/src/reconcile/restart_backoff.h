#pragma once
// How long a crashed process waits before it is started again: the rule of app restarts
// (planner.h), also used for the kiosk fleetletd runs as its child (webview/).

#include <algorithm>
#include <chrono>

namespace fleetlet::reconcile {

inline constexpr std::chrono::milliseconds kFirstRestartBackoff{1000};
inline constexpr std::chrono::milliseconds kMaxRestartBackoff{5 * 60 * 1000};
inline constexpr std::chrono::milliseconds kStableRun{10 * 60 * 1000};

// The delay before the next restart: 1 s, doubling up to 5 min; back to 1 s when the process
// had run for at least 10 min. `previous` 0: the first restart.
constexpr std::chrono::milliseconds nextBackoff(std::chrono::milliseconds previous,
                                                std::chrono::milliseconds ran_for) {
  if (previous.count() == 0 || ran_for >= kStableRun) return kFirstRestartBackoff;
  return std::min(previous * 2, kMaxRestartBackoff);
}

}  // namespace fleetlet::reconcile
