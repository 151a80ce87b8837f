#pragma once
// The stdio that sends a task's output through fleetlet-logger into a log directory.

#include <filesystem>

#include "containerd/tasks.h"
#include "error/error.h"
#include "logs/logger.h"

namespace fleetlet::logs {

// Creates `dir` (and its parents, mode 0750) and returns the TaskIo whose stdout and stderr
// URIs are both loggerUri(logger_binary, {dir, options}) (the shim reads only stdout's for
// a binary logger); no stdin. kInvalidArgument for relative paths or invalid options, an
// errno error when `dir` cannot be created. Does not check that the binary exists: the shim
// fails the task's creation when it cannot start it.
Result<containerd::TaskIo> loggerIo(const std::filesystem::path& logger_binary,
                                    const std::filesystem::path& dir,
                                    const LoggerOptions& options = {});

}  // namespace fleetlet::logs
