#include "console/log_store.h"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <chrono>
#include <limits>
#include <set>

namespace fleetlet::streams {
namespace {

constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE logs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  app TEXT NOT NULL,
  log_name TEXT NOT NULL,
  severity INTEGER NOT NULL,
  message TEXT NOT NULL,
  labels TEXT NOT NULL,
  extra TEXT NOT NULL,
  size INTEGER NOT NULL);
CREATE INDEX logs_by_app ON logs(app, seq);
CREATE INDEX logs_by_name ON logs(log_name, seq);
)sql",
    // Entries shipped by fleetletd carry an idempotency key, unique per app.
    R"sql(
ALTER TABLE logs ADD COLUMN ingest_key TEXT;
CREATE UNIQUE INDEX logs_by_ingest_key ON logs(app, ingest_key) WHERE ingest_key IS NOT NULL;
)sql",
};

std::uint64_t storedSize(const LogEntry& entry, std::size_t key_size = 0) {
  return 64 + entry.app.size() + entry.log_name.size() + entry.message.size() +
         entry.labels.size() + entry.extra.size() + key_size;
}

constexpr std::string_view kSeverities[] = {"debug", "info", "warn", "error"};

int severityRank(std::string_view s) {
  for (int i = 0; i < 4; ++i) {
    if (kSeverities[i] == s) return i;
  }
  return 1;
}

std::int64_t systemMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<LogStore>> LogStore::open(LogStoreOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return failErrno(ec.value(), "create data dir {}", options.dir.string());
  if (!options.clock) options.clock = systemMicros;
  auto db = sqlite::Database::open(options.dir / "logs.db", kMigrations,
                                   {.synchronous = sqlite::Synchronous::kNormal, .cache_kib = 256});
  if (!db) return std::unexpected(db.error().wrap("open log store"));
  std::unique_ptr<LogStore> store(new LogStore(std::move(options), std::move(*db)));
  // A small WAL: on a full disk every byte of it is space a delete may need.
  FLEETLET_RETURN_IF_ERROR(
      store->db_.exec("PRAGMA wal_autocheckpoint=256; PRAGMA journal_size_limit=1048576"));
  if (store->options_.min_free_bytes == 0) {
    struct statvfs fs {};
    std::uint64_t size = 0;
    if (::statvfs(store->options_.dir.c_str(), &fs) == 0) size = fs.f_blocks * fs.f_frsize;
    store->options_.min_free_bytes =
        std::min<std::uint64_t>(std::uint64_t{64} * 1024 * 1024, size / 10);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto sums,
                            store->db_.prepare("SELECT app, sum(size) FROM logs GROUP BY app"));
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, sums.step());
    if (!row) break;
    store->bytes_[sums.columnText(0)] = static_cast<std::uint64_t>(sums.columnInt64(1));
  }
  return store;
}

Status LogStore::insert(LogEntry& entry, std::uint64_t size) {
  FLEETLET_ASSIGN_OR_RETURN(
      auto stmt, db_.prepare("INSERT INTO logs(time, app, log_name, severity, message, labels, "
                             "extra, size) VALUES(?,?,?,?,?,?,?,?)"));
  FLEETLET_RETURN_IF_ERROR(stmt.bindAll(entry.time, entry.app, entry.log_name,
                                        severityRank(entry.severity), entry.message, entry.labels,
                                        entry.extra, static_cast<std::int64_t>(size)));
  FLEETLET_RETURN_IF_ERROR(stmt.run());
  entry.seq = db_.lastInsertRowid();
  bytes_[entry.app] += size;
  return {};
}

Status LogStore::enforceCap(const std::string& app) {
  auto& bytes = bytes_[app];
  while (bytes > options_.app_cap_bytes) {
    // Drop the oldest entries of this app until it fits again, a batch at a time.
    FLEETLET_ASSIGN_OR_RETURN(
        auto oldest,
        db_.prepare("SELECT seq, size FROM logs WHERE app = ? ORDER BY seq LIMIT 256"));
    FLEETLET_RETURN_IF_ERROR(oldest.bindAll(app));
    std::int64_t last = -1;
    while (bytes > options_.app_cap_bytes) {
      FLEETLET_ASSIGN_OR_RETURN(bool row, oldest.step());
      if (!row) break;
      last = oldest.columnInt64(0);
      bytes -= std::min<std::uint64_t>(bytes, static_cast<std::uint64_t>(oldest.columnInt64(1)));
    }
    if (last < 0) {
      bytes = 0;
      break;
    }
    FLEETLET_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM logs WHERE app = ? AND seq <= ?"));
    FLEETLET_RETURN_IF_ERROR(del.bindAll(app, last));
    FLEETLET_RETURN_IF_ERROR(del.run());
  }
  return {};
}

Status LogStore::enforceTotalCap() {
  auto total = [&] {
    std::uint64_t sum = 0;
    for (const auto& [app, bytes] : bytes_) sum += bytes;
    return sum;
  };
  while (total() > options_.total_cap_bytes) {
    FLEETLET_ASSIGN_OR_RETURN(
        auto oldest, db_.prepare("SELECT seq, size, app FROM logs ORDER BY seq LIMIT 256"));
    std::int64_t last = -1;
    std::uint64_t sum = total();
    while (sum > options_.total_cap_bytes) {
      FLEETLET_ASSIGN_OR_RETURN(bool row, oldest.step());
      if (!row) break;
      last = oldest.columnInt64(0);
      auto size = static_cast<std::uint64_t>(oldest.columnInt64(1));
      auto& app_bytes = bytes_[oldest.columnText(2)];
      app_bytes -= std::min(app_bytes, size);
      sum -= std::min(sum, size);
    }
    if (last < 0) {
      bytes_.clear();
      break;
    }
    FLEETLET_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM logs WHERE seq <= ?"));
    FLEETLET_RETURN_IF_ERROR(del.bindAll(last));
    FLEETLET_RETURN_IF_ERROR(del.run());
  }
  return {};
}

Status LogStore::dropOldest(double fraction) {
  FLEETLET_ASSIGN_OR_RETURN(auto count, db_.prepare("SELECT count(*) FROM logs"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, count.step());
  std::int64_t n =
      row ? static_cast<std::int64_t>(static_cast<double>(count.columnInt64(0)) * fraction) + 1 : 1;
  FLEETLET_ASSIGN_OR_RETURN(
      auto del,
      db_.prepare("DELETE FROM logs WHERE seq IN (SELECT seq FROM logs ORDER BY seq LIMIT ?)"));
  FLEETLET_RETURN_IF_ERROR(del.bindAll(n));
  FLEETLET_RETURN_IF_ERROR(del.run());
  bytes_.clear();
  FLEETLET_ASSIGN_OR_RETURN(auto sums, db_.prepare("SELECT app, sum(size) FROM logs GROUP BY app"));
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool more, sums.step());
    if (!more) break;
    bytes_[sums.columnText(0)] = static_cast<std::uint64_t>(sums.columnInt64(1));
  }
  return {};
}

Result<LogEntry> LogStore::append(std::string app, LogEntry entry) {
  entry.app = std::move(app);
  entry.time = options_.clock();
  const std::uint64_t size = storedSize(entry);
  {
    std::lock_guard lock(mutex_);
    if (auto room = makeRoom(); !room) {
      spdlog::warn("[console] making room on a full disk: {}", room.error().describe());
    }
    auto status = insert(entry, size);
    if (!status && status.error().code() == ErrorCode::kResourceExhausted) {
      spdlog::warn("[console] log store full, dropping the oldest quarter: {}",
                   status.error().describe());
      // The WAL's space is what the delete needs: checkpoint and truncate it first, and again
      // after, so the insert reuses the freed pages instead of growing the files.
      (void)db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      FLEETLET_RETURN_IF_ERROR(dropOldest(0.25));
      (void)db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      FLEETLET_RETURN_IF_ERROR(makeRoom());
      status = insert(entry, size);
    }
    if (!status) return std::unexpected(status.error().wrap("store log entry"));
    if (auto cap = enforceCap(entry.app); !cap) {
      spdlog::warn("[console] retention for app '{}': {}", entry.app, cap.error().describe());
    }
    if (auto cap = enforceTotalCap(); !cap) {
      spdlog::warn("[console] total retention: {}", cap.error().describe());
    }
  }
  notifyWatchers();
  return entry;
}

void LogStore::notifyWatchers() {
  std::vector<std::function<void()>> watchers;
  {
    std::lock_guard lock(watch_mutex_);
    for (auto& [id, fn] : watchers_) watchers.push_back(fn);
  }
  for (auto& fn : watchers) fn();
}

Result<bool> LogStore::insertKeyed(LogEntry& entry, const std::string& key) {
  const std::uint64_t size = storedSize(entry, key.size());
  FLEETLET_ASSIGN_OR_RETURN(
      auto stmt,
      db_.prepare("INSERT OR IGNORE INTO logs(time, app, log_name, severity, message, labels, "
                  "extra, size, ingest_key) VALUES(?,?,?,?,?,?,?,?,?)"));
  FLEETLET_RETURN_IF_ERROR(stmt.bindAll(entry.time, entry.app, entry.log_name,
                                        severityRank(entry.severity), entry.message, entry.labels,
                                        entry.extra, static_cast<std::int64_t>(size), key));
  FLEETLET_RETURN_IF_ERROR(stmt.run());
  if (db_.changes() == 0) return false;
  entry.seq = db_.lastInsertRowid();
  return true;
}

Result<LogStore::IngestResult> LogStore::insertBatch(std::vector<IngestEntry>& entries) {
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  IngestResult result;
  std::map<std::string, std::uint64_t> added;
  for (auto& in : entries) {
    FLEETLET_ASSIGN_OR_RETURN(bool stored, insertKeyed(in.entry, in.key));
    if (stored) {
      ++result.stored;
      added[in.entry.app] += storedSize(in.entry, in.key.size());
    } else {
      ++result.duplicates;
    }
  }
  FLEETLET_RETURN_IF_ERROR(tx.commit());
  for (const auto& [app, bytes] : added) bytes_[app] += bytes;
  return result;
}

Result<LogStore::IngestResult> LogStore::ingest(std::vector<IngestEntry> entries) {
  const std::int64_t now = options_.clock();
  for (auto& in : entries) in.entry.time = now;
  IngestResult result;
  {
    std::lock_guard lock(mutex_);
    if (auto room = makeRoom(); !room) {
      spdlog::warn("[console] making room on a full disk: {}", room.error().describe());
    }
    auto batch = insertBatch(entries);
    if (!batch && batch.error().code() == ErrorCode::kResourceExhausted) {
      spdlog::warn("[console] log store full, dropping the oldest quarter: {}",
                   batch.error().describe());
      (void)db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      FLEETLET_RETURN_IF_ERROR(dropOldest(0.25));
      (void)db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      FLEETLET_RETURN_IF_ERROR(makeRoom());
      batch = insertBatch(entries);
    }
    if (!batch) return std::unexpected(batch.error().wrap("store shipped log entries"));
    result = *batch;
    std::set<std::string> apps;
    for (const auto& in : entries) apps.insert(in.entry.app);
    for (const auto& app : apps) {
      if (auto cap = enforceCap(app); !cap) {
        spdlog::warn("[console] retention for app '{}': {}", app, cap.error().describe());
      }
    }
    if (auto cap = enforceTotalCap(); !cap) {
      spdlog::warn("[console] total retention: {}", cap.error().describe());
    }
  }
  if (result.stored > 0) notifyWatchers();
  return result;
}

Result<std::vector<LogEntry>> LogStore::read(const LogFilter& filter) {
  std::string where = "seq > ?";
  if (filter.app) where += " AND app = ?";
  if (filter.log_name) where += " AND log_name = ?";
  if (filter.severity) where += " AND severity >= ?";
  std::string sql = fmt::format(
      "SELECT seq, time, app, log_name, severity, message, labels, extra FROM logs WHERE {}",
      where);
  sql += filter.limit ? fmt::format(" ORDER BY seq DESC LIMIT {}", *filter.limit)
                      : std::string(" ORDER BY seq LIMIT 10000");
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(auto stmt, db_.prepare(sql));
  int index = 0;
  FLEETLET_RETURN_IF_ERROR(stmt.bind(++index, filter.after_seq));
  if (filter.app) FLEETLET_RETURN_IF_ERROR(stmt.bind(++index, std::string_view(*filter.app)));
  if (filter.log_name) {
    FLEETLET_RETURN_IF_ERROR(stmt.bind(++index, std::string_view(*filter.log_name)));
  }
  if (filter.severity) FLEETLET_RETURN_IF_ERROR(stmt.bind(++index, severityRank(*filter.severity)));
  std::vector<LogEntry> out;
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    LogEntry e;
    e.seq = stmt.columnInt64(0);
    e.time = stmt.columnInt64(1);
    e.app = stmt.columnText(2);
    e.log_name = stmt.columnText(3);
    e.severity = std::string(kSeverities[std::clamp<std::int64_t>(stmt.columnInt64(4), 0, 3)]);
    e.message = stmt.columnText(5);
    e.labels = stmt.columnText(6);
    e.extra = stmt.columnText(7);
    out.push_back(std::move(e));
  }
  if (filter.limit) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::uint64_t> LogStore::room() {
  auto free = freeBytes();
  if (!free) return std::numeric_limits<std::uint64_t>::max();
  FLEETLET_ASSIGN_OR_RETURN(auto pages, db_.prepare("PRAGMA freelist_count"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, pages.step());
  FLEETLET_ASSIGN_OR_RETURN(auto size, db_.prepare("PRAGMA page_size"));
  FLEETLET_ASSIGN_OR_RETURN(bool srow, size.step());
  std::uint64_t reusable = row && srow ? static_cast<std::uint64_t>(pages.columnInt64(0)) *
                                             static_cast<std::uint64_t>(size.columnInt64(0))
                                       : 0;
  return *free + reusable;
}

Status LogStore::makeRoom() {
  // Small deletes, each followed by a truncating checkpoint: a big delete would need more
  // WAL space than a nearly full disk has. Freed pages stay in the file for reuse, so they
  // count as room.
  while (!bytes_.empty()) {
    FLEETLET_ASSIGN_OR_RETURN(std::uint64_t available, room());
    if (available >= options_.min_free_bytes) break;
    FLEETLET_ASSIGN_OR_RETURN(
        auto del,
        db_.prepare("DELETE FROM logs WHERE seq IN (SELECT seq FROM logs ORDER BY seq LIMIT 16)"));
    FLEETLET_RETURN_IF_ERROR(del.run());
    if (db_.changes() == 0) break;
    FLEETLET_RETURN_IF_ERROR(db_.exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    FLEETLET_RETURN_IF_ERROR(recountBytes());
  }
  return {};
}

Status LogStore::recountBytes() {
  bytes_.clear();
  FLEETLET_ASSIGN_OR_RETURN(auto sums, db_.prepare("SELECT app, sum(size) FROM logs GROUP BY app"));
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool more, sums.step());
    if (!more) break;
    bytes_[sums.columnText(0)] = static_cast<std::uint64_t>(sums.columnInt64(1));
  }
  return {};
}

std::optional<std::uint64_t> LogStore::freeBytes() const {
  struct statvfs fs {};
  if (::statvfs(options_.dir.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

std::uint64_t LogStore::appBytes(const std::string& app) const {
  std::lock_guard lock(mutex_);
  auto it = bytes_.find(app);
  return it == bytes_.end() ? 0 : it->second;
}

std::uint64_t LogStore::watch(std::function<void()> fn) {
  std::lock_guard lock(watch_mutex_);
  std::uint64_t id = next_watch_++;
  watchers_.emplace(id, std::move(fn));
  return id;
}

void LogStore::unwatch(std::uint64_t id) {
  std::lock_guard lock(watch_mutex_);
  watchers_.erase(id);
}

}  // namespace fleetlet::streams
