#pragma once
// When to poll the cloud next. Pure logic with an injected random source, so tests need no
// waiting (docs/cloud.md, "Polling"):
//
//   answered (200, 304, or a body that was refused): the server's Cache-Control max-age
//     (1 s..24 h) or else the interval, ±20 % jitter, minus the time the request took (a
//     long-polling server already held it), never below 0;
//   failed (no answer, 5xx, 4xx other than the manifest's absence): 15 s·2ⁿ⁻¹ for the n-th
//     failure in a row, capped at the interval, ±20 % jitter;
//   Retry-After (seconds or an HTTP date, up to 24 h) is a floor on either.
//
// Not thread-safe; one per poller.

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

namespace fleetlet::cloud {

using Duration = std::chrono::milliseconds;

struct PollOutcome {
  bool answered = false;  // the server answered usefully (see above)
  Duration elapsed{0};    // how long the request took
  std::optional<Duration> retry_after;
  std::optional<Duration> max_age;
};

class PollSchedule {
 public:
  static constexpr Duration kFirstBackoff = std::chrono::seconds(15);
  static constexpr Duration kMaxServerDelay = std::chrono::hours(24);

  // `random01` returns uniform values in [0, 1).
  PollSchedule(Duration interval, std::function<double()> random01);

  // The delay before the next poll after `outcome`.
  Duration next(const PollOutcome& outcome);
  int failures() const { return failures_; }

 private:
  Duration jitter(Duration d);

  Duration interval_;
  std::function<double()> random01_;
  int failures_ = 0;
};

// "Retry-After: 120" or "Retry-After: Wed, 21 Oct 2026 07:28:00 GMT" (relative to `now`);
// nullopt when unparseable. Negative results are 0.
std::optional<Duration> parseRetryAfter(std::string_view value,
                                        std::chrono::system_clock::time_point now);
// max-age=N of a Cache-Control value; nullopt when absent or malformed.
std::optional<Duration> parseMaxAge(std::string_view cache_control);

}  // namespace fleetlet::cloud
