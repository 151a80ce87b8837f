#pragma once
// LogStore: console log entries in SQLite (logs.db, separate from the event store so a full
// log never blocks publishing), with loop-buffer retention: each app keeps at most
// `app_cap_bytes` of entries and all apps together at most `total_cap_bytes`; the oldest are
// dropped first.
//
// Concurrency: every method may be called from any thread; calls are serialized on one
// connection behind mutex_ and block on SQLite. Watchers registered with watch() are called
// (on the appending thread, after the append) and must only schedule work.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "console/log_entry.h"
#include "error/error.h"
#include "sqlite/database.h"

namespace fleetlet::streams {

struct LogStoreOptions {
  std::filesystem::path dir;
  // Loop-buffer size per app (sum of the entries' stored sizes).
  std::uint64_t app_cap_bytes = std::uint64_t{16} * 1024 * 1024;
  // Loop-buffer size of the whole store, so many apps together cannot fill the disk.
  std::uint64_t total_cap_bytes = std::uint64_t{256} * 1024 * 1024;
  // Free space the store leaves on its filesystem: below it, appends first drop the oldest
  // entries (a full disk cannot even run the deletes that would make room). 0 picks
  // min(64 MiB, 10% of the filesystem).
  std::uint64_t min_free_bytes = 0;
  std::function<std::int64_t()> clock;  // microseconds since the epoch; system clock if unset
};

struct LogFilter {
  std::optional<std::string> app;
  std::optional<std::string> log_name;
  std::optional<std::string> severity;  // minimum severity
  std::int64_t after_seq = 0;           // entries with seq > after_seq
  std::optional<std::size_t> limit;     // the newest `limit` matching entries
};

class LogStore {
 public:
  static Result<std::unique_ptr<LogStore>> open(LogStoreOptions options);

  // Stores `entry` (its seq and time are assigned) for `app`, then drops the app's oldest
  // entries past the caps. Below min_free_bytes of free disk it first drops the oldest
  // quarter of all entries; should SQLite still report a full disk it does so once more and
  // retries, then fails with kResourceExhausted. Returns the stored entry.
  Result<LogEntry> append(std::string app, LogEntry entry);
  struct IngestResult {
    std::size_t stored = 0;
    std::size_t duplicates = 0;  // (app, key) already stored: skipped
  };
  // Stores `entries` in order in one transaction, each under its own app, skipping every
  // entry whose (app, key) is already stored (also within the batch), so a batch sent again
  // stores nothing twice. Then applies retention to the apps involved. A key is remembered as
  // long as its entry is kept: after retention dropped it, the same key is stored again. Full
  // disk handling as append().
  Result<IngestResult> ingest(std::vector<IngestEntry> entries);
  // Matching entries in seq order (oldest first).
  Result<std::vector<LogEntry>> read(const LogFilter& filter);
  // Bytes currently kept for `app`.
  std::uint64_t appBytes(const std::string& app) const;

  // Registers fn to be called after every append; returns an id for unwatch().
  std::uint64_t watch(std::function<void()> fn);
  void unwatch(std::uint64_t id);

 private:
  explicit LogStore(LogStoreOptions options, sqlite::Database db)
      : options_(std::move(options)), db_(std::move(db)) {}
  Status insert(LogEntry& entry, std::uint64_t size);
  // Inserts unless (app, key) is stored; false for a duplicate.
  Result<bool> insertKeyed(LogEntry& entry, const std::string& key);
  Result<IngestResult> insertBatch(std::vector<IngestEntry>& entries);
  void notifyWatchers();
  Status enforceCap(const std::string& app);
  Status enforceTotalCap();
  Status dropOldest(double fraction);
  // Deletes the oldest entries, a few at a time, until room() >= min_free_bytes.
  Status makeRoom();
  // Free disk plus pages SQLite can reuse; max() when the disk cannot be asked.
  Result<std::uint64_t> room();
  Status recountBytes();
  // Free bytes on the store's filesystem (statvfs), or nullopt when it cannot be asked.
  std::optional<std::uint64_t> freeBytes() const;

  LogStoreOptions options_;
  mutable std::mutex mutex_;
  sqlite::Database db_;                         // guarded by mutex_
  std::map<std::string, std::uint64_t> bytes_;  // guarded by mutex_
  std::mutex watch_mutex_;
  std::uint64_t next_watch_ = 1;                             // guarded by watch_mutex_
  std::map<std::uint64_t, std::function<void()>> watchers_;  // guarded by watch_mutex_
};

}  // namespace fleetlet::streams
