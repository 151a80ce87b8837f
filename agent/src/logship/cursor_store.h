#pragma once
// CursorStore: where the log shipper is in each app's log (tailer.h Position), in SQLite
// (<data-dir>/logship.db, WAL, synchronous=NORMAL). A cursor is saved only after the console
// service acknowledged everything before it, so a cursor lost to a crash (of the process or the
// machine) is older than the truth: the shipper then sends some messages again, which the
// service recognizes by their keys. That is why NORMAL (no fsync per save) is enough.
//
// Thread-safety: one mutex; calls block on SQLite.

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "error/error.h"
#include "logship/tailer.h"
#include "sqlite/database.h"

namespace fleetlet::logship {

class CursorStore {
 public:
  // Opens (creating) `path`; ":memory:" for tests.
  static Result<std::unique_ptr<CursorStore>> open(const std::filesystem::path& path);

  // Every saved cursor, by app.
  Result<std::map<std::string, Position>> load();
  Status save(const std::string& app, const Position& cursor);
  Status erase(const std::string& app);

 private:
  explicit CursorStore(sqlite::Database db) : db_(std::move(db)) {}
  std::mutex mu_;
  sqlite::Database db_;  // guarded by mu_
};

}  // namespace fleetlet::logship
