#pragma once
// Recovery: the "never a dead screen" bookkeeping of one app view, apart from WebKit and
// from the clock (times are passed in), so the rules are unit-tested.
//
// Failures are web process crashes, hangs and load failures. The first failure after a
// healthy period reloads at once; further ones back off (initial, doubling, up to the
// maximum) until the page has been healthy (loaded and beating) for `stable_after`.
// A page hangs when it sends no heartbeat for `hang_timeout` since the later of its last
// heartbeat and the start of its load, or when WebKit has called its web process
// unresponsive for `unresponsive_grace`. Not thread-safe: the kiosk's main loop owns it.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace fleetlet::webview {

using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

struct RecoveryOptions {
  Millis initial_backoff{250};
  Millis max_backoff{30000};
  Millis stable_after{60000};
  Millis hang_timeout{5000};
  Millis unresponsive_grace{3000};
};

// kRecycled: the web process passed the app's memory limit and was ended (then reloaded).
enum class LoadState : uint8_t { kIdle, kLoading, kLoaded, kFailed, kCrashed, kHung, kRecycled };
std::string_view toString(LoadState state);

class Recovery {
 public:
  explicit Recovery(RecoveryOptions options = {}) : options_(options) {}

  void loadStarted(SteadyTime now);
  void loadFinished(SteadyTime now);
  void heartbeat(SteadyTime now);
  void responsive(bool is_responsive, SteadyTime now);
  // Starts the hang clock afresh at `now` (the view was just shown: a hidden page's timers
  // are throttled, so only the shown view is watched).
  void watchFrom(SteadyTime now);

  // Records a failure (`state` is kFailed, kCrashed, kHung or kRecycled) with its reason and
  // returns how long to wait before reloading.
  Millis failed(LoadState state, std::string reason, SteadyTime now);

  // Whether the page counts as hung at `now` (see the file comment). Only while loading or
  // loaded: a view waiting for its reload is not hung.
  bool hung(SteadyTime now) const;

  LoadState state() const { return state_; }
  // Time since the last heartbeat of the current page; nullopt before the first one.
  std::optional<Millis> heartbeatAge(SteadyTime now) const;
  uint64_t failures() const { return failures_total_; }
  // The last failure: its state and reason, and when (nullopt when none yet).
  LoadState lastFailure() const { return last_failure_state_; }
  const std::string& lastFailureReason() const { return last_failure_reason_; }
  std::optional<SteadyTime> lastFailureAt() const { return last_failure_at_; }
  // Failures since the page was last stable (the backoff's exponent).
  uint32_t consecutiveFailures() const { return consecutive_; }

 private:
  void maybeStable(SteadyTime now);

  RecoveryOptions options_;
  LoadState state_ = LoadState::kIdle;
  std::optional<SteadyTime> load_started_;
  std::optional<SteadyTime> loaded_at_;
  std::optional<SteadyTime> last_heartbeat_;
  std::optional<SteadyTime> unresponsive_since_;
  std::optional<SteadyTime> watch_since_;
  uint32_t consecutive_ = 0;
  uint64_t failures_total_ = 0;
  LoadState last_failure_state_ = LoadState::kIdle;
  std::string last_failure_reason_;
  std::optional<SteadyTime> last_failure_at_;
};

}  // namespace fleetlet::webview
