#include "logship/cursor_store.h"

namespace fleetlet::logship {
namespace {

constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE cursors(
  app TEXT PRIMARY KEY,
  file TEXT NOT NULL,
  byte_offset INTEGER NOT NULL);
)sql",
};

}  // namespace

Result<std::unique_ptr<CursorStore>> CursorStore::open(const std::filesystem::path& path) {
  auto db =
      sqlite::Database::open(path, kMigrations, {.synchronous = sqlite::Synchronous::kNormal});
  if (!db) return std::unexpected(db.error().wrap("open log shipping cursors"));
  return std::unique_ptr<CursorStore>(new CursorStore(std::move(*db)));
}

Result<std::map<std::string, Position>> CursorStore::load() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT app, file, byte_offset FROM cursors"));
  std::map<std::string, Position> out;
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out[stmt.columnText(0)] = {.file = stmt.columnText(1),
                               .offset = static_cast<std::uint64_t>(stmt.columnInt64(2))};
  }
  return out;
}

Status CursorStore::save(const std::string& app, const Position& cursor) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto stmt,
                            db_.prepare("INSERT INTO cursors(app, file, byte_offset) VALUES(?,?,?) "
                                        "ON CONFLICT(app) DO UPDATE SET file = excluded.file, "
                                        "byte_offset = excluded.byte_offset"));
  FLEETLET_RETURN_IF_ERROR(stmt.bindAll(app, cursor.file, static_cast<int64_t>(cursor.offset)));
  return stmt.run();
}

Status CursorStore::erase(const std::string& app) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto stmt, db_.prepare("DELETE FROM cursors WHERE app = ?"));
  FLEETLET_RETURN_IF_ERROR(stmt.bindAll(app));
  return stmt.run();
}

}  // namespace fleetlet::logship
