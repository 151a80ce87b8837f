#pragma once
// LogTailer: reads an app's log directory (as fleetlet-logger writes it, logs/rotating_writer.h)
// for shipping, with a position for everything it returns, so that a shipper can persist where
// it is and, after a crash, resume without losing or re-deriving differently any line.
//
// Files are named by a FileId that survives renames: "<inode>-<hash of the file's first line>"
// (the first 256 bytes when the first line is longer). The inode alone is reused once the
// logger drops a file; the first line (its time has nanoseconds) tells the two apart.
//
// Messages: an entry (one line of one stream, its P records up to the F record, joined) becomes
// one message, or several when it is longer than `max_message` bytes: it is then cut into parts
// of at most max_message bytes, not inside a UTF-8 character (unless the text is not UTF-8), in
// order. A message's key is "<file id>:<offset of its first record>" plus "+<n>" when it starts
// n bytes into that record's text. Keys depend only on the log's bytes, so the same message read
// twice has the same key: that is what makes re-sending harmless (the console service keeps one
// entry per key).
//
// cursor(): a position from which a new tailer returns every message this one has not returned
// yet, each with the same key (and possibly some it did return, with their keys too). It is the
// start of the oldest line still unfinished (its F record not read yet), else the end of the
// last line read. Lines of an unfinished entry are re-read from their first record after a
// resume, so parts are cut the same way.
//
// Rotation: the tailer keeps the file it reads open; at its end it moves to the next newer file
// (found by inode), so lines written while nobody read are read once the tailer catches up, as
// long as the files are still on disk. An entry still unfinished when the tailer moves on to the
// second file after the one it started in (its F record will not come: the logger was killed
// mid-line) is returned as it is. A file that shrinks (truncated) is read again from its start,
// under a new id. Lines that are not CRI records are skipped and counted, as are lines longer
// than kMaxLineBytes.
//
// Memory: one read buffer (64 KiB, more for a longer line up to kMaxLineBytes), the returned
// messages (poll()'s limits) and one unfinished message per stream (< max_message).
//
// A LogTailer is used from one thread at a time.

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "logs/cri.h"
#include "logs/reader.h"
#include "os/unique_fd.h"

namespace fleetlet::logship {

// A place in a log: a file by its id and a byte offset in it. An empty file id is the start of
// the oldest file.
struct Position {
  std::string file;
  std::uint64_t offset = 0;
  bool operator==(const Position&) const = default;
};

struct Message {
  std::string key;
  logs::TimePoint time;  // of the entry's first record
  logs::Stream stream = logs::Stream::kStdout;
  std::string text;  // the bytes as the app wrote them (not necessarily UTF-8)
  // Part n of an entry cut into parts (1-based), 0 for a whole entry; `last` on its last part.
  int part = 0;
  bool last = true;
  bool operator==(const Message&) const = default;
};

struct TailerLimits {
  std::size_t max_messages = 1000;  // returned by one poll()
  std::size_t max_bytes =
      std::size_t{512} * 1024;  // of text returned by one poll(), at least one message
  std::size_t max_message = std::size_t{64} * 1024;  // longer entries are cut into parts; >= 16
};

// Lines longer than this are skipped (the logger writes records of at most its --max-line).
inline constexpr std::size_t kMaxLineBytes = std::size_t{8} * 1024 * 1024;

class LogTailer {
 public:
  // A tailer of `dir` positioned at `from`. When from's file is no longer there (dropped by
  // rotation while nobody read), it starts at the oldest file and lostFile() says so. kNotFound
  // when `dir` does not exist; a directory without a log yet is fine.
  static Result<LogTailer> open(const std::filesystem::path& dir, const Position& from,
                                TailerLimits limits = {});

  LogTailer(LogTailer&&) = default;
  LogTailer& operator=(LogTailer&&) = default;

  // Non-blocking: the messages completed since the last call, oldest first, within the limits
  // (a call returning the limit leaves the rest for the next). Fails on read errors.
  Result<std::vector<Message>> poll();
  Position cursor() const;

  std::size_t malformed() const { return malformed_; }
  std::size_t truncations() const { return truncations_; }
  bool lostFile() const { return lost_file_; }

 private:
  struct File : logs::OpenLog {
    std::string id;  // empty until the file holds its first line
  };
  // A line position with the number of the file it is in (counted from open()).
  struct Place {
    Position position;
    std::uint64_t file_seq = 0;
  };
  struct Pending {
    bool active = false;
    Place line;                   // the entry's first record
    Position part;                // where the current part starts
    std::uint64_t part_skip = 0;  // bytes into that record's text
    logs::TimePoint time;
    std::string text;
    int part_number = 0;  // parts returned so far
  };

  explicit LogTailer(std::filesystem::path dir, TailerLimits limits)
      : dir_(std::move(dir)), limits_(limits) {}
  static Result<std::vector<File>> openChain(const std::filesystem::path& dir);
  static Result<std::string> fileId(File& file);
  // Handles one complete line at `at`; its text without '\n'.
  void addLine(const Place& at, std::string_view line, std::vector<Message>& out);
  void emit(Pending& p, logs::Stream stream, bool last, std::vector<Message>& out);
  // Ends unfinished entries that started before file `file_seq` - 1.
  void endStale(std::vector<Message>& out);
  // Reads cur_ from offset_ until its end or the limits; true when its end was reached.
  Result<bool> readCurrent(std::vector<Message>& out);
  bool full(const std::vector<Message>& out) const;

  std::filesystem::path dir_;
  TailerLimits limits_;
  File cur_;  // invalid before the log exists
  std::uint64_t file_seq_ = 0;
  std::uint64_t offset_ = 0;  // in cur_: the end of the last complete line handled
  bool skipping_ = false;     // inside a line longer than kMaxLineBytes
  Position previous_end_;     // the end of the file read before cur_ (cursor while cur_ has no id)
  std::array<Pending, 2> pending_;  // by Stream
  std::size_t out_bytes_ = 0;
  std::size_t malformed_ = 0;
  std::size_t truncations_ = 0;
  bool lost_file_ = false;
};

}  // namespace fleetlet::logship
