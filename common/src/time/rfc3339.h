#pragma once
// RFC 3339 timestamps ("2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123456789+01:00").
//
// Concurrency: pure functions.

#include <chrono>
#include <string_view>

#include "error/error.h"

namespace fleetlet {

// Accepts RFC 3339 with an optional fraction of up to 9 digits and a "Z" or "±hh:mm" offset.
// kInvalidArgument naming the problem otherwise.
Result<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text);

}  // namespace fleetlet
