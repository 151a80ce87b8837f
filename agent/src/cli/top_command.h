#pragma once
// `fleetletctl top`: the apps' CPU, memory against their limit, pids, restarts and network,
// from two readings of fleetletd's GET /v1/top (docs/observability.md). On a terminal it
// redraws every --interval until interrupted; otherwise (a pipe, a file) it prints one table
// and exits, so that scripts and tests get plain text.

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "cli/app_commands.h"
#include "cli/image_commands.h"
#include "json/json.h"

namespace fleetlet::cli {

// Adds `top` to `app`.
void addTopCommand(CLI::App& app, const std::shared_ptr<ApiFlags>& flags, Action& action);

// The table for two readings of /v1/top (`before` the older): a node line, then one line per
// app of `after`. CPU is the share of one core over the time between the readings (an app
// missing from `before`, or without usage, shows "-"). Exposed for tests.
std::string formatTop(const Json& before, const Json& after);
// 1536 → "1.5KiB"; below 1 KiB "512B".
std::string humanBytes(double bytes);

}  // namespace fleetlet::cli
