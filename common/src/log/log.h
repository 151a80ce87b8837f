#pragma once
// Process-wide logging setup on spdlog. Call setupLogging once from main(); afterwards use
// spdlog::info/warn/error directly. Lines are "time level [component] message key=value".

#include <string_view>

#include "error/error.h"

namespace fleetlet {

// Configures the default spdlog logger to write to stderr at `level`
// (trace|debug|info|warn|error|off). Fails with kInvalidArgument on an unknown level.
Status setupLogging(std::string_view component, std::string_view level);

}  // namespace fleetlet
