#include "sqlite/database.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <memory>
#include <string_view>

#include "support/temp_dir.h"

namespace fleetlet::sqlite {
namespace {

namespace fs = std::filesystem;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("fleetlet-sqlite");
    ASSERT_TRUE(dir) << dir.error().message();
    tmp_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
    dir_ = tmp_->path();
  }
  fs::path dbPath() const { return dir_ / "test.db"; }

  std::unique_ptr<fleetlet::testing::TempDir> tmp_;  // removed with everything in it
  fs::path dir_;
};

constexpr std::array<std::string_view, 2> kSchema = {
    "CREATE TABLE apps (name TEXT PRIMARY KEY, revision INTEGER NOT NULL);",
    "CREATE TABLE restarts (app TEXT NOT NULL REFERENCES apps(name), at REAL NOT NULL);"
    "ALTER TABLE apps ADD COLUMN spec BLOB;",
};

Result<int64_t> countRows(Database& db, std::string_view table) {
  FLEETLET_ASSIGN_OR_RETURN(Statement stmt,
                            db.prepare(fmt::format("SELECT COUNT(*) FROM {}", table)));
  FLEETLET_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return fail(ErrorCode::kInternal, "no row");
  return stmt.columnInt64(0);
}

TEST_F(SqliteTest, OpensWithWalAndForeignKeys) {
  auto db = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db) << db.error().message();
  auto journal = db->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(journal);
  ASSERT_TRUE(journal->step().value());
  EXPECT_EQ(journal->columnText(0), "wal");
  auto fk = db->prepare("PRAGMA foreign_keys");
  ASSERT_TRUE(fk->step().value());
  EXPECT_EQ(fk->columnInt64(0), 1);
  auto sync = db->prepare("PRAGMA synchronous");
  ASSERT_TRUE(sync->step().value());
  EXPECT_EQ(sync->columnInt64(0), 2);  // FULL
}

TEST_F(SqliteTest, SynchronousIsAnOption) {
  auto db = Database::open(dbPath(), {}, OpenOptions{.synchronous = Synchronous::kNormal});
  ASSERT_TRUE(db) << db.error().message();
  auto sync = db->prepare("PRAGMA synchronous");
  ASSERT_TRUE(sync->step().value());
  EXPECT_EQ(sync->columnInt64(0), 1);  // NORMAL
}

TEST_F(SqliteTest, MigrationsApplyOnceAndResume) {
  {
    auto db = Database::open(dbPath(), std::span(kSchema).first(1));
    ASSERT_TRUE(db) << db.error().message();
    EXPECT_EQ(db->version().value(), 1);
    ASSERT_TRUE(db->exec("INSERT INTO apps VALUES ('camera', 1)"));
  }
  {
    // Reopening with one more migration applies only the new one; the data stays.
    auto db = Database::open(dbPath(), kSchema);
    ASSERT_TRUE(db) << db.error().message();
    EXPECT_EQ(db->version().value(), 2);
    EXPECT_EQ(countRows(*db, "apps").value(), 1);
    EXPECT_TRUE(db->exec("UPDATE apps SET spec = x'00' WHERE name = 'camera'"));
  }
  {
    // Reopening with the same list runs nothing (a second ALTER TABLE would fail).
    auto db = Database::open(dbPath(), kSchema);
    ASSERT_TRUE(db) << db.error().message();
    EXPECT_EQ(db->version().value(), 2);
  }
}

TEST_F(SqliteTest, FailingMigrationRollsBackAndIsNamed) {
  constexpr std::array<std::string_view, 3> kBroken = {
      kSchema[0],
      "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);",
      "CREATE TABLE never (x INTEGER);",
  };
  auto db = Database::open(dbPath(), kBroken);
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message().find("migration 2 of 3"), std::string::npos)
      << db.error().message();
  EXPECT_NE(db.error().message().find("no such table: no_such_table"), std::string::npos)
      << db.error().message();

  auto reopened = Database::open(dbPath(), std::span(kBroken).first(1));
  ASSERT_TRUE(reopened) << reopened.error().message();
  EXPECT_EQ(reopened->version().value(), 1);
  // The first half of the failed script left nothing behind.
  auto probe = reopened->prepare("SELECT * FROM half_done");
  ASSERT_FALSE(probe);
  EXPECT_NE(probe.error().message().find("no such table: half_done"), std::string::npos);
}

TEST_F(SqliteTest, NewerDatabaseThanProgramIsRefused) {
  ASSERT_TRUE(Database::open(dbPath(), kSchema));
  auto db = Database::open(dbPath(), std::span(kSchema).first(1));
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(db.error().message().find("schema version 2 is newer"), std::string::npos)
      << db.error().message();
}

TEST_F(SqliteTest, BindsAndReadsEveryType) {
  auto db = Database::open(dbPath());
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)"));
  auto insert = db->prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)");
  ASSERT_TRUE(insert) << insert.error().message();
  const std::vector<uint8_t> blob = {0x00, 0xff, 0x10, 0x00};
  const std::string text("with\0nul", 8);
  ASSERT_TRUE(insert->bind(1, int64_t{1} << 40));
  ASSERT_TRUE(insert->bind(2, 2.5));
  ASSERT_TRUE(insert->bind(3, std::string_view(text)));
  ASSERT_TRUE(insert->bind(4, std::span<const uint8_t>(blob)));
  ASSERT_TRUE(insert->bind(5, nullptr));
  ASSERT_TRUE(insert->run());
  EXPECT_EQ(db->changes(), 1);
  EXPECT_EQ(db->lastInsertRowid(), 1);

  // Reuse after reset with bindAll, including an empty blob and a plain int.
  ASSERT_TRUE(insert->reset());
  ASSERT_TRUE(insert->bindAll(-7, -0.125, "plain", std::vector<uint8_t>{}, nullptr));
  ASSERT_TRUE(insert->run());

  auto select = db->prepare("SELECT i, d, s, b, n FROM t ORDER BY rowid");
  ASSERT_TRUE(select);
  ASSERT_EQ(select->columnCount(), 5);
  ASSERT_TRUE(select->step().value());
  EXPECT_EQ(select->columnInt64(0), int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(select->columnDouble(1), 2.5);
  EXPECT_EQ(select->columnText(2), text);
  EXPECT_EQ(select->columnBlob(3), blob);
  EXPECT_TRUE(select->columnIsNull(4));
  EXPECT_EQ(select->columnText(4), "");
  ASSERT_TRUE(select->step().value());
  EXPECT_EQ(select->columnInt64(0), -7);
  EXPECT_DOUBLE_EQ(select->columnDouble(1), -0.125);
  EXPECT_EQ(select->columnText(2), "plain");
  EXPECT_FALSE(select->columnIsNull(3));
  EXPECT_TRUE(select->columnBlob(3).empty());
  EXPECT_FALSE(select->step().value());
}

TEST_F(SqliteTest, BindOutOfRangeIsAnError) {
  auto db = Database::open(dbPath());
  ASSERT_TRUE(db);
  auto stmt = db->prepare("SELECT ?");
  ASSERT_TRUE(stmt);
  auto bound = stmt->bind(2, 1);
  ASSERT_FALSE(bound);
  EXPECT_EQ(bound.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bound.error().message().find("bind #2"), std::string::npos);
}

TEST_F(SqliteTest, TransactionRollsBackOnScopeExit) {
  auto db = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db);
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx) << tx.error().message();
    ASSERT_TRUE(db->exec("INSERT INTO apps (name, revision) VALUES ('a', 1)"));
    EXPECT_EQ(countRows(*db, "apps").value(), 1);
  }
  EXPECT_EQ(countRows(*db, "apps").value(), 0);
  {
    auto tx = db->begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO apps (name, revision) VALUES ('b', 1)"));
    ASSERT_TRUE(tx->commit());
    EXPECT_FALSE(tx->commit());  // Only once.
  }
  EXPECT_EQ(countRows(*db, "apps").value(), 1);
}

TEST_F(SqliteTest, SecondWriterWaitsThenFailsAsUnavailable) {
  auto first = Database::open(dbPath(), kSchema);
  auto second =
      Database::open(dbPath(), kSchema, OpenOptions{.busy_timeout = std::chrono::milliseconds(50)});
  ASSERT_TRUE(first && second);
  auto tx = first->begin();
  ASSERT_TRUE(tx);
  auto blocked = second->begin();
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), ErrorCode::kUnavailable) << blocked.error().message();
  // Readers are not blocked by the writer (WAL).
  EXPECT_EQ(countRows(*second, "apps").value(), 0);
}

TEST_F(SqliteTest, BeginIsRefusedWhileAStatementIsStillRunning) {
  auto db = Database::open(dbPath(), kSchema);
  auto other = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db && other);
  ASSERT_TRUE(db->exec("INSERT INTO apps (name, revision) VALUES ('a', 1), ('b', 2)"));
  auto select = db->prepare("SELECT name FROM apps");
  ASSERT_TRUE(select);
  ASSERT_TRUE(select->step().value());  // a row: the statement holds a read snapshot
  // Another connection writes: upgrading the snapshot would fail with SQLITE_BUSY at once.
  ASSERT_TRUE(other->exec("INSERT INTO apps (name, revision) VALUES ('c', 3)"));
  auto refused = db->begin();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInternal);
  EXPECT_EQ(refused.error().message(),
            "sqlite: BEGIN IMMEDIATE while \"SELECT name FROM apps\" is still running (reset it "
            "first)");
  // Reset (or run to the end), the same statement no longer stands in the way.
  ASSERT_TRUE(select->reset());
  auto tx = db->begin();
  ASSERT_TRUE(tx) << tx.error().message();
  ASSERT_TRUE(db->exec("INSERT INTO apps (name, revision) VALUES ('d', 4)"));
  ASSERT_TRUE(tx->commit());
  EXPECT_EQ(countRows(*other, "apps").value(), 4);
}

TEST_F(SqliteTest, ConstraintViolationsAreValuesWithClearMessages) {
  auto db = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("INSERT INTO apps (name, revision) VALUES ('camera', 1)"));

  auto dup = db->exec("INSERT INTO apps (name, revision) VALUES ('camera', 2)");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().message().find("UNIQUE constraint failed: apps.name"), std::string::npos)
      << dup.error().message();
  EXPECT_NE(dup.error().message().find("INSERT INTO apps"), std::string::npos);

  auto stmt = db->prepare("INSERT INTO apps (name, revision) VALUES (?, NULL)");
  ASSERT_TRUE(stmt);
  ASSERT_TRUE(stmt->bind(1, "gateway"));
  auto not_null = stmt->step();
  ASSERT_FALSE(not_null);
  EXPECT_EQ(not_null.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(not_null.error().message().find("NOT NULL constraint failed: apps.revision"),
            std::string::npos)
      << not_null.error().message();

  auto fk = db->exec("INSERT INTO restarts (app, at) VALUES ('ghost', 1.0)");
  ASSERT_FALSE(fk);
  EXPECT_EQ(fk.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(fk.error().message().find("FOREIGN KEY constraint failed"), std::string::npos);

  EXPECT_EQ(countRows(*db, "apps").value(), 1);
}

TEST_F(SqliteTest, SyntaxErrorsNameTheSql) {
  auto db = Database::open(dbPath());
  ASSERT_TRUE(db);
  auto stmt = db->prepare("SELEKT 1");
  ASSERT_FALSE(stmt);
  EXPECT_NE(stmt.error().message().find("syntax error"), std::string::npos);
  EXPECT_NE(stmt.error().message().find("\"SELEKT 1\""), std::string::npos);
}

TEST_F(SqliteTest, ReopeningSeesCommittedData) {
  {
    auto db = Database::open(dbPath(), kSchema);
    ASSERT_TRUE(db);
    auto tx = db->begin();
    ASSERT_TRUE(tx);
    auto insert = db->prepare("INSERT INTO apps (name, revision, spec) VALUES (?, ?, ?)");
    ASSERT_TRUE(insert);
    const std::vector<uint8_t> spec = {1, 2, 3};
    ASSERT_TRUE(insert->bindAll("camera", 7, spec));
    ASSERT_TRUE(insert->run());
    ASSERT_TRUE(tx->commit());
  }
  auto db = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db);
  auto select = db->prepare("SELECT revision, spec FROM apps WHERE name = ?");
  ASSERT_TRUE(select);
  ASSERT_TRUE(select->bind(1, "camera"));
  ASSERT_TRUE(select->step().value());
  EXPECT_EQ(select->columnInt64(0), 7);
  EXPECT_EQ(select->columnBlob(1), (std::vector<uint8_t>{1, 2, 3}));
}

TEST_F(SqliteTest, OpenFailureNamesThePath) {
  auto db = Database::open(dir_ / "missing-dir" / "x.db");
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message().find("missing-dir/x.db"), std::string::npos)
      << db.error().message();
}

}  // namespace
}  // namespace fleetlet::sqlite
