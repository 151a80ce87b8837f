#pragma once
// The log capture that fleetlet-logger runs: a containerd binary logging driver.
//
// containerd's shim starts the logger for a task whose stdout URI is
// "binary:///abs/path/fleetlet-logger?--dir=/abs/dir&--max-size=N&...": every query
// parameter becomes two arguments, key then value, in no fixed order. The logger gets the
// task's stdout on fd 3, stderr on fd 4, closes fd 5 when ready (the shim starts the task only
// then), and CONTAINER_ID / CONTAINER_NAMESPACE in its environment. It is the shim's child, so
// it outlives fleetletd. When the task is deleted the shim closes the pipes, sends SIGTERM
// and SIGKILLs after 12 s; the logger drains what the pipes still hold and exits.
//
// Records go to <dir>/current.log in the CRI format (cri.h) with size-capped rotation
// (rotating_writer.h).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "error/error.h"
#include "logs/clock.h"
#include "os/unique_fd.h"

namespace fleetlet::logs {

struct LoggerOptions {
  uint64_t max_size = 4 << 20;  // bytes per file (--max-size), >= kMinMaxSize
  int max_files = 3;            // rotated files kept besides current.log (--max-files), >= 1
  // Lines longer than this are split into partial records (--max-line), >= 1. The logger
  // lowers it to max_size - kMaxCriOverhead so that every record fits in a file.
  size_t max_line = size_t{16} * 1024;

  // kInvalidArgument naming the bad field.
  Status validate() const;
  // max_line as the logger applies it.
  size_t effectiveMaxLine() const;
  bool operator==(const LoggerOptions&) const = default;
};

inline constexpr uint64_t kMinMaxSize = 1024;

struct LoggerConfig {
  std::filesystem::path dir;  // absolute
  LoggerOptions options;
  bool operator==(const LoggerConfig&) const = default;
};

// Parses the logger's arguments (without argv[0]): "--dir D", "--max-size N", "--max-files N",
// "--max-line N", each also as "--key=value", in any order. kInvalidArgument for an unknown,
// missing or malformed argument.
Result<LoggerConfig> parseLoggerArgs(const std::vector<std::string>& args);

// "binary://<logger_binary>?--dir=...&--max-files=...&--max-line=...&--max-size=...", with
// paths percent-encoded so that Go's url.Parse and Query() give them back unchanged.
// kInvalidArgument when a path is relative or the options are invalid.
Result<std::string> loggerUri(const std::filesystem::path& logger_binary,
                              const LoggerConfig& config);

struct LoggerStats {
  uint64_t records = 0;  // records written
  uint64_t dropped = 0;  // records lost to write errors
  int rotations = 0;
  std::string last_error;  // the last write error, empty when none
};

// Copies the task's output into the log until both `stdout_fd` and `stderr_fd` reach EOF, or
// until `stop_fd` becomes readable and then everything the pipes already hold is drained;
// then writes a line still waiting for its '\n' as a full record. An invalid fd is a stream
// that is already closed. Closes `ready_fd` once current.log is open.
//
// Blocks for the task's lifetime. Fails only when the log cannot be opened; later write errors drop
// records (counted in the stats) while the pipes keep being drained, so a full disk never blocks
// the task. Times records with `clock`.
Result<LoggerStats> runLogger(const LoggerConfig& config, UniqueFd stdout_fd, UniqueFd stderr_fd,
                              UniqueFd ready_fd, int stop_fd, Clock& clock);

// Blocks SIGTERM and SIGINT for the calling thread (call before starting others) and returns
// a signalfd that turns readable when one arrives: the stop_fd for runLogger.
Result<UniqueFd> terminationSignalFd();

}  // namespace fleetlet::logs
