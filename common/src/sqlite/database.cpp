#include "sqlite/database.h"

#include <sqlite3.h>

#include <utility>

#include "sqlite/wal_batch_vfs.h"

namespace fleetlet::sqlite {
namespace {

ErrorCode codeFor(int extended_rc) {
  switch (extended_rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return ErrorCode::kAlreadyExists;
    default:
      break;
  }
  switch (extended_rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return ErrorCode::kFailedPrecondition;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
      return ErrorCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ErrorCode::kResourceExhausted;
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kInternal;
  }
}

// SQL as it appears in messages: whitespace collapsed, long scripts cut.
std::string quoteSql(std::string_view sql) {
  constexpr size_t kMax = 160;
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() >= kMax) {
      out += "...";
      break;
    }
  }
  return out;
}

// "sqlite: <message> (<code name>) in \"<sql>\"" with the connection's current message.
Error sqliteError(sqlite3* db, int rc, std::string_view sql) {
  int extended = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  if ((extended & 0xff) != (rc & 0xff)) extended = rc;
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error(codeFor(extended), fmt::format("sqlite: {} ({}) in \"{}\"", message,
                                              sqlite3_errstr(extended), quoteSql(sql)));
}

Status execRaw(sqlite3* db, std::string_view sql) {
  std::string text(sql);
  char* errmsg = nullptr;
  int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &errmsg);
  if (rc == SQLITE_OK) return {};
  std::string message = errmsg != nullptr ? errmsg : sqlite3_errstr(rc);
  sqlite3_free(errmsg);
  int extended = sqlite3_extended_errcode(db);
  if ((extended & 0xff) != (rc & 0xff)) extended = rc;
  return std::unexpected(Error(
      codeFor(extended),
      fmt::format("sqlite: {} ({}) in \"{}\"", message, sqlite3_errstr(extended), quoteSql(sql))));
}

// Compiles `sql` into `slot` unless it already holds it (a statement kept for reuse).
template <typename Slot>
Status compileOnce(sqlite3* db, Slot& slot, std::string_view sql) {
  if (slot) return {};
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(sqliteError(db, rc, sql));
  slot.reset(stmt);
  return {};
}

// Runs the compiled statement `stmt` (whose text is `sql`) to its end and resets it.
Status stepOnce(sqlite3* db, sqlite3_stmt* stmt, std::string_view sql) {
  int rc = sqlite3_step(stmt);
  Status status;
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) status = std::unexpected(sqliteError(db, rc, sql));
  sqlite3_reset(stmt);
  return status;
}

std::string_view synchronousName(Synchronous s) {
  switch (s) {
    case Synchronous::kOff:
      return "OFF";
    case Synchronous::kNormal:
      return "NORMAL";
    case Synchronous::kFull:
      return "FULL";
  }
  return "FULL";
}

}  // namespace

// ---- Database ----

void Database::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void Database::StatementFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

Database::~Database() = default;

Result<Database> Database::open(const std::filesystem::path& path, Migrations migrations,
                                const OpenOptions& options) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           options.batch_wal_writes ? walBatchVfs() : nullptr);
  std::unique_ptr<sqlite3, Closer> db(raw);
  if (rc != SQLITE_OK) {
    Error err = sqliteError(raw, rc, "open");
    return std::unexpected(err.wrap("open database {}", path.string()));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));
  if (options.cache_kib > 0) {
    std::string pragma = fmt::format("PRAGMA cache_size=-{}", options.cache_kib);
    rc = sqlite3_exec(raw, pragma.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      return std::unexpected(sqliteError(raw, rc, pragma).wrap("open database {}", path.string()));
    }
  }

  Database database(std::move(db), path);
  auto wrap = [&](const Error& e) {
    return std::unexpected(e.wrap("open database {}", path.string()));
  };
  if (path != ":memory:") {
    FLEETLET_ASSIGN_OR_RETURN(Statement journal, database.prepare("PRAGMA journal_mode=WAL"));
    auto row = journal.step();
    if (!row) return wrap(row.error());
    if (!*row || journal.columnText(0) != "wal") {
      return fail(ErrorCode::kInternal, "open database {}: cannot enable WAL journal mode",
                  path.string());
    }
  }
  auto pragmas = database.exec(fmt::format("PRAGMA synchronous={}; PRAGMA foreign_keys=ON;",
                                           synchronousName(options.synchronous)));
  if (!pragmas) return wrap(pragmas.error());
  if (auto migrated = database.migrate(migrations); !migrated) return wrap(migrated.error());
  return database;
}

Status Database::migrate(Migrations migrations) {
  FLEETLET_ASSIGN_OR_RETURN(int64_t current, version());
  const auto total = static_cast<int64_t>(migrations.size());
  if (current > total) {
    return fail(ErrorCode::kFailedPrecondition,
                "schema version {} is newer than this program knows ({} migrations)", current,
                total);
  }
  for (int64_t i = current; i < total; ++i) {
    auto apply = [&]() -> Status {
      FLEETLET_ASSIGN_OR_RETURN(Transaction tx, begin());
      FLEETLET_RETURN_IF_ERROR(exec(migrations[static_cast<size_t>(i)]));
      FLEETLET_RETURN_IF_ERROR(exec(fmt::format("PRAGMA user_version={}", i + 1)));
      return tx.commit();
    };
    if (auto applied = apply(); !applied) {
      return std::unexpected(applied.error().wrap("migration {} of {}", i + 1, total));
    }
  }
  return {};
}

Status Database::exec(std::string_view sql) { return execRaw(db_.get(), sql); }

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(sqliteError(db_.get(), rc, sql));
  if (stmt == nullptr) {
    return fail(ErrorCode::kInvalidArgument, "sqlite: no statement in \"{}\"", quoteSql(sql));
  }
  return Statement(stmt, std::string(sql));
}

Result<Transaction> Database::begin() {
  // A statement stepped but not finished holds a read snapshot; upgrading that snapshot to
  // a write fails with SQLITE_BUSY at once (no busy timeout) whenever another connection
  // wrote meanwhile — a failure that shows only under load. Refuse it every time instead.
  for (sqlite3_stmt* stmt = sqlite3_next_stmt(db_.get(), nullptr); stmt != nullptr;
       stmt = sqlite3_next_stmt(db_.get(), stmt)) {
    if (sqlite3_stmt_busy(stmt) != 0) {
      return fail(ErrorCode::kInternal,
                  "sqlite: BEGIN IMMEDIATE while \"{}\" is still running (reset it first)",
                  quoteSql(sqlite3_sql(stmt)));
    }
  }
  FLEETLET_RETURN_IF_ERROR(compileOnce(db_.get(), begin_, "BEGIN IMMEDIATE"));
  FLEETLET_RETURN_IF_ERROR(compileOnce(db_.get(), commit_, "COMMIT"));
  FLEETLET_RETURN_IF_ERROR(stepOnce(db_.get(), begin_.get(), "BEGIN IMMEDIATE"));
  return Transaction(db_.get(), commit_.get());
}

Result<int64_t> Database::version() {
  FLEETLET_ASSIGN_OR_RETURN(Statement stmt, prepare("PRAGMA user_version"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return fail(ErrorCode::kInternal, "sqlite: PRAGMA user_version returned no row");
  return stmt.columnInt64(0);
}

int64_t Database::lastInsertRowid() const { return sqlite3_last_insert_rowid(db_.get()); }

int64_t Database::changes() const { return sqlite3_changes64(db_.get()); }

// ---- Statement ----

void Statement::Finalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

Statement::~Statement() = default;

Status Statement::check(int rc, std::string_view what) const {
  if (rc == SQLITE_OK) return {};
  return std::unexpected(sqliteError(sqlite3_db_handle(stmt_.get()), rc, sql_).wrap("{}", what));
}

Status Statement::checkBind(int rc, int index) const {
  // The error context is formatted only on failure: binds run per row on write paths.
  if (rc == SQLITE_OK) return {};
  return check(rc, fmt::format("bind #{}", index));
}

Status Statement::bind(int index, int64_t value) {
  return checkBind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

Status Statement::bind(int index, double value) {
  return checkBind(sqlite3_bind_double(stmt_.get(), index, value), index);
}

Status Statement::bind(int index, std::string_view value) {
  return checkBind(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(),
                                       SQLITE_TRANSIENT, SQLITE_UTF8),
                   index);
}

Status Statement::bind(int index, std::span<const uint8_t> blob) {
  // A zero-length blob with a null pointer would bind NULL; bind an empty blob instead.
  int rc = blob.empty() ? sqlite3_bind_zeroblob(stmt_.get(), index, 0)
                        : sqlite3_bind_blob64(stmt_.get(), index, blob.data(), blob.size(),
                                              SQLITE_TRANSIENT);
  return checkBind(rc, index);
}

Status Statement::bind(int index, std::nullptr_t) {
  return checkBind(sqlite3_bind_null(stmt_.get(), index), index);
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(sqliteError(sqlite3_db_handle(stmt_.get()), rc, sql_));
}

Status Statement::run() {
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, step());
    if (!row) return {};
  }
}

Status Statement::reset() {
  // sqlite3_reset repeats the last step's error; the statement is reset either way.
  sqlite3_reset(stmt_.get());
  return {};
}

Status Statement::clearBindings() {
  return check(sqlite3_clear_bindings(stmt_.get()), "clear bindings");
}

int Statement::columnCount() const { return sqlite3_column_count(stmt_.get()); }

bool Statement::columnIsNull(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

int64_t Statement::columnInt64(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

double Statement::columnDouble(int column) const {
  return sqlite3_column_double(stmt_.get(), column);
}

std::string Statement::columnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
  if (text == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_.get(), column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

std::vector<uint8_t> Statement::columnBlob(int column) const {
  const void* data = sqlite3_column_blob(stmt_.get(), column);
  if (data == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_.get(), column);
  const auto* bytes = static_cast<const uint8_t*>(data);
  return std::vector<uint8_t>(bytes, bytes + size);
}

// ---- Transaction ----

Transaction::Transaction(Transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), commit_(other.commit_) {}

Transaction::~Transaction() { (void)rollback(); }

Status Transaction::commit() {
  if (db_ == nullptr) {
    return fail(ErrorCode::kFailedPrecondition, "sqlite: transaction already finished");
  }
  if (auto committed = stepOnce(db_, commit_, "COMMIT"); !committed) {
    (void)rollback();
    return committed;
  }
  db_ = nullptr;
  return {};
}

Status Transaction::rollback() {
  sqlite3* db = std::exchange(db_, nullptr);
  if (db == nullptr) return {};
  // After some errors (e.g. SQLITE_FULL) SQLite has already rolled back by itself.
  if (sqlite3_get_autocommit(db) != 0) return {};
  return execRaw(db, "ROLLBACK");
}

Result<int64_t> readKeyInt(Database& db, std::string_view table, std::string_view key) {
  FLEETLET_ASSIGN_OR_RETURN(auto st,
                            db.prepare(fmt::format("SELECT value FROM {} WHERE key = ?", table)));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, key));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  return row ? st.columnInt64(0) : 0;
}

Status writeKeyInt(Database& db, std::string_view table, std::string_view key, int64_t value) {
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db.prepare(fmt::format("INSERT INTO {}(key, value) VALUES(?, ?) ON CONFLICT(key) "
                                      "DO UPDATE SET value = excluded.value",
                                      table)));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, key));
  FLEETLET_RETURN_IF_ERROR(st.bind(2, value));
  return st.run();
}

}  // namespace fleetlet::sqlite
