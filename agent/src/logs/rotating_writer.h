#pragma once
// RotatingWriter appends log records to <dir>/current.log and keeps the directory within a
// size cap by rotation:
//
//   current.log      the file being written
//   current.log.1    the previous one ... current.log.<max_files> the oldest; older dropped
//
// No file ever exceeds `max_size` bytes: before a record would push current.log past it, the
// writer fsyncs current.log, shifts .k to .k+1 (the oldest is replaced, i.e. dropped), renames
// current.log to .1, fsyncs the directory and creates a new current.log. Readers that hold
// the old file open keep reading it (see reader.h). So the directory holds at most
// (max_files + 1) * max_size bytes.
//
// One writer per directory (the logger of one task); not thread-safe. Calls block on disk I/O.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::logs {

inline constexpr char kCurrentLogName[] = "current.log";

struct RotationPolicy {
  uint64_t max_size = 4 << 20;  // bytes per file, > 0
  int max_files = 3;            // rotated files kept besides current.log, >= 1
};

// <dir>/current.log for k == 0, else <dir>/current.log.<k>.
std::filesystem::path logFilePath(const std::filesystem::path& dir, int k);
// The k of every current.log.<k> in `dir`, ascending (newest first). Fails with the errno of
// listing `dir`.
Result<std::vector<int>> rotatedLogIndexes(const std::filesystem::path& dir);

// Creates `dir` and its missing parents; `dir` gets mode 0750 (a log directory, as loggerIo
// makes it for the shim's logger). Errno errors name the directory.
Status makeLogDir(const std::filesystem::path& dir);

class RotatingWriter {
 public:
  // Opens <dir>/current.log for appending, creating it (0640) if missing; an existing file's
  // size counts toward the cap, so a restarted logger continues where the last one stopped.
  // The directory must exist. Errno errors name the file.
  static Result<RotatingWriter> open(const std::filesystem::path& dir, RotationPolicy policy);

  RotatingWriter(RotatingWriter&&) = default;
  RotatingWriter& operator=(RotatingWriter&&) = default;
  ~RotatingWriter();  // Flushes, ignoring errors (call flush() to see them).

  // Buffers one record (a whole line with its '\n'), writing and rotating first when it would
  // not fit in current.log. kInvalidArgument for a record longer than max_size (it could not
  // fit in any file); on a write or rotation error the buffered records (this one included)
  // are dropped and the error returned, so the next call starts afresh.
  Status append(std::string_view record);
  // Writes the buffered records to current.log (no fsync); a current.log removed since it was
  // opened (its directory too) is made again first (recreations()). On error the records not
  // written whole are dropped (counted in droppedRecords()); a record cut short by the failed write
  // is ended with '\n' by the next successful flush, so it cannot swallow the next record.
  Status flush();

  // Bytes in current.log including the buffered ones.
  uint64_t currentSize() const { return size_ + buffer_.size() + (cut_record_ ? 1 : 0); }
  int rotations() const { return rotations_; }
  // How often current.log was found removed under the writer (unlinked, or its directory
  // removed) and made again by flush().
  int recreations() const { return recreations_; }
  uint64_t droppedRecords() const { return dropped_; }

 private:
  RotatingWriter(std::filesystem::path dir, RotationPolicy policy, UniqueFd fd, uint64_t size)
      : dir_(std::move(dir)), policy_(policy), fd_(std::move(fd)), size_(size) {}
  Status rotate();
  Status openCurrent();
  bool currentWasRemoved() const;

  std::filesystem::path dir_;
  RotationPolicy policy_;
  UniqueFd fd_;
  uint64_t size_ = 0;  // Bytes written to current.log.
  std::string buffer_;
  uint64_t buffered_records_ = 0;
  uint64_t dropped_ = 0;
  int rotations_ = 0;
  int recreations_ = 0;
  bool cut_record_ = false;  // current.log ends in the middle of a record
};

}  // namespace fleetlet::logs
