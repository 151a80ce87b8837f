#pragma once
// fleetlet's one RAII wrapper over SQLite's C API: Database, Statement, Transaction.
//
// Thread rules: a Database, its Statements and its Transactions are NOT safe for concurrent
// use. Either give each thread its own Database (several Databases may open the same file;
// with WAL, readers never block and a writer waits up to `busy_timeout` for another writer),
// or serialize every call on one Database and everything made from it behind one mutex.
// Statements and Transactions must not outlive the Database they came from.
//
// Every failure is a fleetlet::Error whose message names SQLite's message, its result code
// and the SQL involved. Codes: UNIQUE/PRIMARY KEY violations -> kAlreadyExists, other
// constraint violations -> kFailedPrecondition, BUSY/LOCKED -> kUnavailable, FULL/NOMEM ->
// kResourceExhausted, RANGE/MISMATCH -> kInvalidArgument, CANTOPEN -> kUnavailable,
// everything else -> kInternal.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fleetlet::sqlite {

enum class Synchronous : std::uint8_t { kOff, kNormal, kFull };

struct OpenOptions {
  // FULL: a committed transaction survives power loss. NORMAL (with WAL) may lose the last
  // transactions on power loss but never corrupts the database.
  Synchronous synchronous = Synchronous::kFull;
  // How long a statement waits for a lock held by another connection before failing with
  // kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
  // The connection's page cache (PRAGMA cache_size) in KiB; 0 keeps SQLite's default (2 MiB).
  // Every connection has its own, filled as pages are touched: the kernel's page cache holds
  // the file anyway, so small services keep this small.
  int cache_kib = 0;
  // Each transaction's WAL frames are written with one system call instead of two per page
  // (wal_batch_vfs.h). For a connection that commits often.
  bool batch_wal_writes = false;
};

// The schema as an ordered list of SQL scripts. Script i (0-based) brings the database from
// version i to version i+1, where the version is `PRAGMA user_version`. Scripts are never
// edited once shipped; new ones are appended.
using Migrations = std::span<const std::string_view>;

class Statement;
class Transaction;

class Database {
 public:
  // Opens (creating if needed) the database at `path`, or an in-memory one for ":memory:",
  // with WAL journaling, foreign keys on, the given synchronous mode and busy timeout, then
  // applies the migrations the database has not seen yet, each in its own transaction
  // together with the user_version bump. A failing migration leaves the database at the
  // previous version and the error names the migration ("migration 3 of 4: ...").
  // A database whose version is newer than `migrations` fails with kFailedPrecondition.
  static Result<Database> open(const std::filesystem::path& path, Migrations migrations = {},
                               const OpenOptions& options = {});

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  ~Database();

  // Runs one or more ';'-separated statements that return no rows worth reading.
  Status exec(std::string_view sql);
  // Compiles one statement. Fails on a syntax error or unknown table/column.
  Result<Statement> prepare(std::string_view sql);
  // Starts a write transaction (BEGIN IMMEDIATE, so the write lock is taken now, not at the
  // first write). Fails with kUnavailable when another connection holds it past the timeout,
  // and with kInternal while a statement of this Database is stepped but neither done nor
  // reset (its read snapshot would make the write fail without waiting, under load).
  Result<Transaction> begin();

  // The schema version (`PRAGMA user_version`).
  Result<int64_t> version();
  // The rowid of the last successful INSERT on this connection.
  int64_t lastInsertRowid() const;
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int64_t changes() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  struct StatementFinalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using CachedStatement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;
  Database(std::unique_ptr<sqlite3, Closer> db, std::filesystem::path path)
      : db_(std::move(db)), path_(std::move(path)) {}
  Status migrate(Migrations migrations);

  std::unique_ptr<sqlite3, Closer> db_;
  std::filesystem::path path_;
  // BEGIN IMMEDIATE and COMMIT, compiled once (a group commit runs them per transaction);
  // declared after db_, so they are finalized before it closes.
  CachedStatement begin_;
  CachedStatement commit_;
};

// A key-value table `table (key TEXT PRIMARY KEY, value INTEGER NOT NULL)` (the name is
// trusted, not bound): the value of `key`, 0 when it has none; and setting it.
Result<int64_t> readKeyInt(Database& db, std::string_view table, std::string_view key);
Status writeKeyInt(Database& db, std::string_view table, std::string_view key, int64_t value);

// A compiled statement. Parameter indexes are 1-based, column indexes 0-based (as in SQLite).
// Column getters read the current row (after step() returned true) and convert as SQLite
// does: NULL reads as 0, 0.0, "" or an empty blob.
class Statement {
 public:
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  ~Statement();

  Status bind(int index, int64_t value);
  Status bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Status bind(int index, double value);
  // The text is copied.
  Status bind(int index, std::string_view value);
  Status bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  // The bytes are copied.
  Status bind(int index, std::span<const uint8_t> blob);
  Status bind(int index, std::nullptr_t);
  // Binds each argument to parameters 1..N in order.
  template <typename... Args>
  Status bindAll(const Args&... args) {
    int index = 0;
    Status status;
    (void)((status = bind(++index, args), status.has_value()) && ...);
    return status;
  }

  // Runs to the next row: true when a row is available, false when the statement is done.
  Result<bool> step();
  // Steps until done; for statements that return no rows.
  Status run();
  // Makes the statement runnable again; bindings are kept.
  Status reset();
  Status clearBindings();

  int columnCount() const;
  bool columnIsNull(int column) const;
  int64_t columnInt64(int column) const;
  double columnDouble(int column) const;
  std::string columnText(int column) const;
  std::vector<uint8_t> columnBlob(int column) const;

  const std::string& sql() const { return sql_; }

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  Statement(sqlite3_stmt* stmt, std::string sql) : stmt_(stmt), sql_(std::move(sql)) {}
  Status check(int rc, std::string_view what) const;
  Status checkBind(int rc, int index) const;

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  std::string sql_;
};

// A write transaction: BEGIN IMMEDIATE on creation, ROLLBACK on destruction unless commit()
// succeeded. If commit() fails the transaction is rolled back and the error returned.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  Status commit();
  // Rolls back now. A no-op once committed or rolled back.
  Status rollback();

 private:
  friend class Database;
  Transaction(sqlite3* db, sqlite3_stmt* commit) : db_(db), commit_(commit) {}
  sqlite3* db_;
  sqlite3_stmt* commit_;  // the Database's compiled COMMIT
};

}  // namespace fleetlet::sqlite
