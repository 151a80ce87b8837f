#pragma once
// A minimal reader of an app's CRI-format logs, until agent/src/logs provides the real one.
// A log directory holds current.log (newest) and rotated current.log.1, current.log.2, ...
// (higher is older); each line is "<RFC3339Nano> <stdout|stderr> <F|P> <text>", where P marks
// a partial line continued by the next line of the same stream.
//
// Reads block on the disk: run them on a blocking thread. Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::api {

struct LogLine {
  std::string time;    // as written by the runtime (RFC 3339, nanoseconds)
  std::string stream;  // "stdout" | "stderr"
  std::string text;    // without the newline; partial pieces joined
};

// {"time","stream","log"}
Json toJson(const LogLine& line);
Result<LogLine> logLineFromJson(const Json& j, std::string_view path);

class LogReader {
 public:
  explicit LogReader(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // The last `tail` complete lines (all when nullopt), oldest first, over the rotated files
  // and current.log, and remembers where current.log ended. A missing directory or log file
  // reads as empty; other I/O errors are returned.
  Result<std::vector<LogLine>> readTail(std::optional<std::size_t> tail);
  // The complete lines appended since the last call. Follows a rotation: when current.log was
  // replaced, the rest of the old file (now current.log.1) is read first.
  Result<std::vector<LogLine>> readNew();

 private:
  struct Position {
    std::uint64_t inode = 0;
    std::uint64_t offset = 0;
  };
  // Parses `data` into lines appended to `out`; keeps unterminated and partial pieces.
  void parse(std::string_view data, std::vector<LogLine>& out);
  Result<std::string> readFrom(const std::filesystem::path& file, std::uint64_t offset,
                               Position* end);

  std::filesystem::path dir_;
  Position position_;
  std::string unterminated_;    // bytes after the last '\n' read
  std::string pending_stdout_;  // P pieces waiting for their F line
  std::string pending_stderr_;
};

}  // namespace fleetlet::api
