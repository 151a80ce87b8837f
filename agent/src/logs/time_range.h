#pragma once
// Time ranges of log reads (`fleetletctl logs --since/--until`, GET .../logs?since=&until=,
// log requests from the cloud): a bound is an RFC 3339 time or a duration before now.
//
// Pure functions; thread-safe.

#include <string_view>

#include "error/error.h"
#include "logs/clock.h"
#include "logs/cri.h"

namespace fleetlet::logs {

// "2026-12-07T06:00:00Z" (RFC 3339, any offset, fraction optional) as it says; "10m", "90s",
// "2h", "1d", "1h30m" (one or more <digits><s|m|h|d>) as that long before `now`.
// kInvalidArgument naming `what` and the text otherwise: `since: "10x" is neither an RFC 3339
// time (2026-12-07T06:00:00Z) nor a duration before now (10m, 2h, 1d)`.
Result<TimePoint> parseTimeBound(std::string_view what, std::string_view text, TimePoint now);

// [since, until): an entry is in it when since <= its time < until.
struct TimeRange {
  TimePoint since = TimePoint::min();
  TimePoint until = TimePoint::max();
  bool contains(TimePoint t) const { return since <= t && t < until; }
};

// kInvalidArgument "since (...) is not before until (...)" when the range is empty.
Status checkRange(const TimeRange& range);

// One entry as a line of an upload: "<RFC3339Nano> <stdout|stderr> <text>\n".
std::string formatEntryLine(TimePoint time, Stream stream, std::string_view text);

}  // namespace fleetlet::logs
