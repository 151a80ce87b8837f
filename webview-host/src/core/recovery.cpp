#include "core/recovery.h"

#include <algorithm>

namespace fleetlet::webview {

std::string_view toString(LoadState state) {
  switch (state) {
    case LoadState::kIdle:
      return "idle";
    case LoadState::kLoading:
      return "loading";
    case LoadState::kLoaded:
      return "loaded";
    case LoadState::kFailed:
      return "failed";
    case LoadState::kCrashed:
      return "crashed";
    case LoadState::kHung:
      return "hung";
    case LoadState::kRecycled:
      return "recycled";
  }
  return "unknown";
}

void Recovery::loadStarted(SteadyTime now) {
  state_ = LoadState::kLoading;
  load_started_ = now;
  loaded_at_.reset();
  last_heartbeat_.reset();
  unresponsive_since_.reset();
}

void Recovery::loadFinished(SteadyTime now) {
  if (state_ != LoadState::kLoading) return;
  state_ = LoadState::kLoaded;
  loaded_at_ = now;
}

void Recovery::heartbeat(SteadyTime now) {
  last_heartbeat_ = now;
  maybeStable(now);
}

void Recovery::responsive(bool is_responsive, SteadyTime now) {
  if (is_responsive) {
    unresponsive_since_.reset();
  } else if (!unresponsive_since_) {
    unresponsive_since_ = now;
  }
}

void Recovery::watchFrom(SteadyTime now) {
  watch_since_ = now;
  unresponsive_since_.reset();
}

void Recovery::maybeStable(SteadyTime now) {
  if (state_ == LoadState::kLoaded && loaded_at_ && now - *loaded_at_ >= options_.stable_after) {
    consecutive_ = 0;
  }
}

Millis Recovery::failed(LoadState state, std::string reason, SteadyTime now) {
  maybeStable(now);
  state_ = state;
  ++failures_total_;
  ++consecutive_;
  last_failure_state_ = state;
  last_failure_reason_ = std::move(reason);
  last_failure_at_ = now;
  load_started_.reset();
  loaded_at_.reset();
  last_heartbeat_.reset();
  unresponsive_since_.reset();
  if (consecutive_ <= 1) return Millis(0);
  Millis delay = options_.initial_backoff;
  for (uint32_t i = 2; i < consecutive_ && delay < options_.max_backoff; ++i) delay *= 2;
  return std::min(delay, options_.max_backoff);
}

bool Recovery::hung(SteadyTime now) const {
  if (state_ != LoadState::kLoading && state_ != LoadState::kLoaded) return false;
  if (unresponsive_since_ && now - *unresponsive_since_ >= options_.unresponsive_grace) {
    return true;
  }
  std::optional<SteadyTime> since = last_heartbeat_ ? last_heartbeat_ : load_started_;
  if (watch_since_ && (!since || *watch_since_ > *since)) since = watch_since_;
  return since && now - *since >= options_.hang_timeout;
}

std::optional<Millis> Recovery::heartbeatAge(SteadyTime now) const {
  if (!last_heartbeat_) return std::nullopt;
  return std::chrono::duration_cast<Millis>(now - *last_heartbeat_);
}

}  // namespace fleetlet::webview
