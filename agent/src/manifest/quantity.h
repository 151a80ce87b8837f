#pragma once
// Helpers around the quantity and duration grammar of parse.h that other modules and tests
// use. Pure; thread-safe.

#include <chrono>
#include <string>

namespace fleetlet::manifest {

// The shortest manifest spelling of a duration, as parseDuration() reads it back:
// 90000 ms -> "1m30s", 1500 ms -> "1s500ms", 0 -> "0s". Negative durations print as "0s".
std::string formatDuration(std::chrono::milliseconds duration);

}  // namespace fleetlet::manifest
