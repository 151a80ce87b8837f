#pragma once
// Reading a log directory that fleetlet-logger writes (rotating_writer.h): the last N entries
// across the rotated files, and following new entries as they are appended.
//
// An entry is one line of the task's output: the CRI records of one stream from the first
// partial (P) record up to and including the full (F) one, joined. Lines that are not CRI
// records are skipped and counted. Entries come out oldest first, per stream in the order the
// task wrote them (between streams in the order the logger read them).
//
// Following polls: LogFollower::poll() reads what was appended since the last call, and
// wait() sleeps between polls through an injected Sleeper. Polling (not inotify) because one
// path then covers appends, renames, drops and truncation, a follower costs one stat() and
// one pread() per interval, and tests are deterministic.
//
// Rotation: the follower keeps the file it reads open. When current.log turns out to be
// another file, it reads its old file to the end (the writer renames only after writing
// whole records), then every newer rotated file, then the new current.log: nothing is lost
// or repeated as long as fewer than max_files rotations happen between two polls (more drop
// files before anyone could read them). A file that shrinks under the follower was
// truncated: it is read again from the start.
//
// A LogFollower is used from one thread at a time.

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "logs/clock.h"
#include "logs/cri.h"
#include "logs/time_range.h"
#include "os/unique_fd.h"

namespace fleetlet::logs {

struct LogEntry {
  TimePoint time;  // of the entry's first record
  Stream stream = Stream::kStdout;
  std::string text;
  bool operator==(const LogEntry&) const = default;
};

// Joined entries are cut at about this size: a partial record that would make an entry
// longer ends it early and starts the next one, so an entry holds at most kMaxEntryBytes plus
// one record's text.
inline constexpr size_t kMaxEntryBytes = 1 << 20;

// Joins CRI records into entries, per stream.
class EntryAssembler {
 public:
  // Adds one line (without '\n'): the entry it completes, if any. A line that is not a CRI
  // record is skipped and counted.
  std::optional<LogEntry> add(std::string_view line);
  size_t malformed() const { return malformed_; }

 private:
  struct Pending {
    bool active = false;
    TimePoint time;
    std::string text;
  };
  std::array<Pending, 2> pending_;  // by Stream
  size_t malformed_ = 0;
};

// One log file held open, with its identity (which survives renames).
struct OpenLog {
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
  bool same(const OpenLog& other) const { return dev == other.dev && ino == other.ino; }
};

// Opens every log file in `dir`, oldest first: the rotated files, then current.log. A file that
// is renamed meanwhile appears once (current.log is opened first, so a rotation in between
// shows a file twice, dropped, rather than hiding one). Empty when there is no log yet; fails
// on errors other than a missing file.
Result<std::vector<OpenLog>> openLogChain(const std::filesystem::path& dir);

struct TailResult {
  std::vector<LogEntry> entries;  // oldest first
  size_t malformed = 0;           // lines skipped in the files read
};

// The last `n` complete entries of the log in `dir` across current.log and its rotated
// files. Reads files newest first until it has n entries, plus one older file so that a line
// split across a rotation is joined; a line still waiting for its F record is left out.
// kNotFound when `dir` does not exist; an empty result when it holds no log yet. Blocks only
// on file reads.
Result<TailResult> readTail(const std::filesystem::path& dir, size_t n);

// The complete entries of the log in `dir` whose time (of their first record) is in `range`,
// oldest first, across current.log and every rotated file. kNotFound when `dir` does not
// exist. Reads the whole directory (at most (max_files + 1) * max_size bytes).
Result<TailResult> readRange(const std::filesystem::path& dir, const TimeRange& range);

// Keeps the entries whose text contains `only` (every one when it is empty), then the last
// `count` of them: an app's lines in another's log (a webview app's in the kiosk's).
void keepOnly(std::vector<LogEntry>& entries, std::string_view only, size_t count = SIZE_MAX);

class LogFollower {
 public:
  // Positions a follower after the last `tail` complete entries of the log in `dir` (all with
  // SIZE_MAX); the first poll() returns those. kNotFound when `dir` does not exist; a
  // directory without current.log yet is followed from its first record.
  static Result<LogFollower> open(const std::filesystem::path& dir, size_t tail);

  LogFollower(LogFollower&&) = default;
  LogFollower& operator=(LogFollower&&) = default;

  // Non-blocking: the entries completed since the last call, oldest first (possibly none).
  // Fails on read errors; current.log missing for a moment (mid-rotation) is not an error.
  Result<std::vector<LogEntry>> poll();
  // Polls every `interval`, sleeping through `sleeper` in between, until entries arrive or
  // `max_wait` has been slept; then returns them (none on timeout). Blocks.
  Result<std::vector<LogEntry>> wait(Sleeper& sleeper, std::chrono::milliseconds interval,
                                     std::chrono::milliseconds max_wait);

  size_t malformed() const { return assembler_.malformed(); }
  // How often the followed file shrank under the follower and was read again.
  size_t truncations() const { return truncations_; }

 private:
  friend Result<TailResult> readTail(const std::filesystem::path& dir, size_t n);
  friend Result<TailResult> readRange(const std::filesystem::path& dir, const TimeRange& range);
  explicit LogFollower(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // Reads `file` from `offset` to its end; complete lines go through the assembler into
  // `out`, a trailing incomplete line stays in `partial`.
  Status readFrom(const OpenLog& file, off_t& offset, std::string& partial,
                  std::vector<LogEntry>& out);
  void addLines(std::string& partial, std::vector<LogEntry>& out);
  void endOfFile(std::string& partial, std::vector<LogEntry>& out);

  std::filesystem::path dir_;
  OpenLog current_;  // the file being followed; invalid before the log exists
  off_t offset_ = 0;
  std::string partial_;  // bytes of current_ after its last '\n'
  EntryAssembler assembler_;
  std::vector<LogEntry> queued_;  // the tail, until the first poll()
  size_t truncations_ = 0;
};

}  // namespace fleetlet::logs
