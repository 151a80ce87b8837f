#pragma once
// `fleetletctl apply|get apps|describe app|logs|restart|status|events`: the commands that talk
// to fleetletd's local API over its unix socket (cli/api_client.h). Each prints its result on
// stdout; every failure prints "fleetletctl: <reason>" on stderr and exits 1.

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "api/api_server.h"
#include "cli/image_commands.h"
#include "core/node_service.h"
#include "json/json.h"

namespace fleetlet::cli {

struct ApiFlags {
  std::string socket = api::kDefaultSocketPath;
};

// Adds the commands to `app`. Parsing one stores its action in `action`; main() runs it.
void addAppCommands(CLI::App& app, const std::shared_ptr<ApiFlags>& flags, Action& action);

// The text the commands print, relative to `now` (exposed for tests).

// "5s", "3m", "2h", "4d" (whole units, rounded down); "0s" for negative durations.
std::string humanAge(core::Clock::duration d);
// NAME RUNTIME STATE RESTARTS IMAGE AGE, one app a line, columns aligned; `wide` adds PID,
// CONTAINER and MESSAGE (-o wide).
std::string formatAppsTable(const std::vector<core::AppStatus>& apps, core::Clock::time_point now,
                            bool wide = false);
std::string formatDescribe(const core::AppDetail& detail, core::Clock::time_point now);
std::string formatNodeStatus(const core::NodeStatus& status);
// "2026-11-21T06:00:56.123Z  #42  camera  started  message" (app "-" when node-wide).
std::string formatEvent(const core::NodeEvent& event);
// A JSON value as indented YAML (block style, strings quoted only when needed); -o yaml.
std::string yamlish(const Json& value, int indent);

}  // namespace fleetlet::cli
