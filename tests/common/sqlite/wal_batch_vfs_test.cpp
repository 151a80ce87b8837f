// The WAL-batching VFS (sqlite/wal_batch_vfs.h) on real files: one write per commit, readers
// on the default VFS see every commit at once, a failed write fails the commit and leaves the
// database as it was, and a kill -9 loses no committed transaction and splits none.
#include "sqlite/wal_batch_vfs.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "sqlite/database.h"
#include "support/temp_dir.h"

namespace fleetlet::sqlite {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 1> kSchema = {
    "CREATE TABLE rows (txn INTEGER NOT NULL, k INTEGER NOT NULL, v TEXT NOT NULL,"
    " PRIMARY KEY (txn, k)) WITHOUT ROWID;"
    "CREATE INDEX rows_by_v ON rows(v, txn);"};
constexpr int kRowsPerTxn = 40;  // with ~300-byte values: several pages per transaction
// As the event store's writer: NORMAL, so COMMIT itself does not sync (a sync would write
// what is gathered too) and the commit frame alone ends the batch.
constexpr OpenOptions kBatched{.synchronous = Synchronous::kNormal, .batch_wal_writes = true};

// The process's write system calls so far (/proc/self/io "syscw"; pwrite counts).
std::int64_t writeCalls() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::int64_t value = 0;
  while (io >> key >> value) {
    if (key == "syscw:") return value;
  }
  return -1;
}

class WalBatchVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("fleetlet-walbatch");
    ASSERT_TRUE(dir) << dir.error().message();
    tmp_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
    dir_ = tmp_->path();
  }
  fs::path dbPath() const { return dir_ / "test.db"; }

  static Status writeTxn(Database& db, std::int64_t txn) {
    FLEETLET_ASSIGN_OR_RETURN(Transaction tx, db.begin());
    FLEETLET_ASSIGN_OR_RETURN(Statement insert, db.prepare("INSERT INTO rows VALUES (?, ?, ?)"));
    for (int k = 0; k < kRowsPerTxn; ++k) {
      std::string value = fmt::format("{:08}-{:04}-{}", txn, k, std::string(280, 'x'));
      FLEETLET_RETURN_IF_ERROR(insert.bindAll(txn, k, value));
      FLEETLET_RETURN_IF_ERROR(insert.run());
      FLEETLET_RETURN_IF_ERROR(insert.reset());
    }
    return tx.commit();
  }
  static Result<std::int64_t> scalar(Database& db, std::string_view sql) {
    FLEETLET_ASSIGN_OR_RETURN(Statement stmt, db.prepare(sql));
    FLEETLET_ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) return fail(ErrorCode::kInternal, "no row");
    return stmt.columnInt64(0);
  }

  std::unique_ptr<fleetlet::testing::TempDir> tmp_;  // removed with everything in it
  fs::path dir_;
};

TEST_F(WalBatchVfsTest, ATransactionsFramesGoOutInOneWriteAndReadersSeeEachCommit) {
  auto writer = Database::open(dbPath(), kSchema, kBatched);
  ASSERT_TRUE(writer) << writer.error().message();
  auto reader = Database::open(dbPath(), kSchema);  // the default VFS
  ASSERT_TRUE(reader) << reader.error().message();
  ASSERT_TRUE(writeTxn(*writer, 0));  // the WAL header and the schema's pages
  for (std::int64_t txn = 1; txn <= 50; ++txn) {
    std::int64_t before = writeCalls();
    auto written = writeTxn(*writer, txn);
    ASSERT_TRUE(written) << written.error().message();
    EXPECT_EQ(writeCalls() - before, 1) << "transaction " << txn;
    auto rows = scalar(*reader, "SELECT count(*) FROM rows");
    ASSERT_TRUE(rows);
    EXPECT_EQ(*rows, (txn + 1) * kRowsPerTxn) << "a reader sees the commit when it returns";
  }
  // Without the VFS SQLite writes each frame's header and page apart.
  auto plain = Database::open(dir_ / "plain.db", kSchema, {.synchronous = Synchronous::kNormal});
  ASSERT_TRUE(plain);
  ASSERT_TRUE(writeTxn(*plain, 0));
  std::int64_t before = writeCalls();
  ASSERT_TRUE(writeTxn(*plain, 1));
  EXPECT_GE(writeCalls() - before, 6) << "at least three frames, two writes each";
}

// Transactions larger than what is gathered at once (kMaxGathered) go out in several writes.
TEST_F(WalBatchVfsTest, ALargeTransactionIsWrittenWhole) {
  auto writer = Database::open(dbPath(), kSchema, kBatched);
  ASSERT_TRUE(writer);
  auto reader = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(reader);
  auto tx = writer->begin();
  ASSERT_TRUE(tx);
  auto insert = writer->prepare("INSERT INTO rows VALUES (?, ?, ?)");
  ASSERT_TRUE(insert);
  const std::string big(3 << 20, 'b');  // overflow pages: ~800 frames
  ASSERT_TRUE(insert->bindAll(1, 1, big));
  ASSERT_TRUE(insert->run());
  auto committed = tx->commit();
  ASSERT_TRUE(committed) << committed.error().message();
  auto read = reader->prepare("SELECT length(v), v = ? FROM rows WHERE txn = 1");
  ASSERT_TRUE(read);
  ASSERT_TRUE(read->bind(1, big));
  ASSERT_TRUE(read->step().value());
  EXPECT_EQ(read->columnInt64(0), static_cast<std::int64_t>(big.size()));
  EXPECT_EQ(read->columnInt64(1), 1);
}

TEST_F(WalBatchVfsTest, CheckpointsAndReopeningSeeEveryCommittedRow) {
  {
    auto writer = Database::open(dbPath(), kSchema, kBatched);
    ASSERT_TRUE(writer);
    for (std::int64_t txn = 0; txn < 200; ++txn) {
      ASSERT_TRUE(writeTxn(*writer, txn));
      // The writer's own checkpoints read the WAL and sync it through the VFS.
      if (txn % 50 == 49) {
        ASSERT_TRUE(writer->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
      }
    }
  }
  auto db = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM rows").value(), 200 * kRowsPerTxn);
  auto check = db->prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check);
  ASSERT_TRUE(check->step().value());
  EXPECT_EQ(check->columnText(0), "ok");
}

// A write that fails (the file size limit, EFBIG) fails the commit; the transaction is rolled
// back and the database keeps every earlier one.
TEST_F(WalBatchVfsTest, AFailedWriteFailsTheCommitAndLeavesTheDatabaseAsItWas) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto writer = Database::open(dbPath(), kSchema, kBatched);
    if (!writer || !writeTxn(*writer, 0) || !writeTxn(*writer, 1)) ::_exit(10);
    std::error_code ec;
    auto wal_size = fs::file_size(fs::path(dbPath().string() + "-wal"), ec);
    if (ec) ::_exit(11);
    (void)std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{.rlim_cur = wal_size + 4096, .rlim_max = RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(12);
    ::_exit(writeTxn(*writer, 2) ? 13 : 0);  // the commit must fail
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "10-12: setup, 13: the commit succeeded";
  auto db = Database::open(dbPath(), kSchema);
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM rows").value(), 2 * kRowsPerTxn);
  EXPECT_EQ(scalar(*db, "SELECT count(*) FROM rows WHERE txn = 2").value(), 0);
  ASSERT_TRUE(writeTxn(*db, 2)) << "the database takes writes again";
}

// A writer killed at a random moment: every transaction it reported committed is there, and
// every transaction is there whole or not at all.
TEST_F(WalBatchVfsTest, AKilledWriterLosesNoCommitAndSplitsNone) {
  for (int round = 0; round < 5; ++round) {
    fs::remove(dbPath());
    fs::remove(fs::path(dbPath().string() + "-wal"));
    fs::remove(fs::path(dbPath().string() + "-shm"));
    std::array<int, 2> pipe_fds{};
    ASSERT_EQ(::pipe(pipe_fds.data()), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(pipe_fds[0]);
      // kill -9 keeps what reached the kernel: no fsync needed to prove nothing is lost.
      auto writer = Database::open(dbPath(), kSchema, kBatched);
      if (!writer) ::_exit(10);
      for (std::int64_t txn = 0;; ++txn) {
        if (!writeTxn(*writer, txn)) ::_exit(11);
        if (::write(pipe_fds[1], &txn, sizeof(txn)) != sizeof(txn)) ::_exit(12);
      }
    }
    ::close(pipe_fds[1]);
    // Killed while it writes on: after a few more commits each round.
    const std::int64_t kill_after = 5 + round * 37;
    std::int64_t last = -1;
    std::int64_t txn = 0;
    while (last < kill_after && ::read(pipe_fds[0], &txn, sizeof(txn)) == sizeof(txn)) last = txn;
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << WEXITSTATUS(status);
    while (::read(pipe_fds[0], &txn, sizeof(txn)) == sizeof(txn)) last = txn;
    ::close(pipe_fds[0]);
    ASSERT_GE(last, kill_after);

    auto db = Database::open(dbPath(), kSchema);
    ASSERT_TRUE(db) << db.error().message();
    auto txns = scalar(*db, "SELECT count(DISTINCT txn) FROM rows");
    ASSERT_TRUE(txns);
    EXPECT_GE(*txns, last + 1) << "round " << round;
    EXPECT_EQ(scalar(*db, "SELECT count(*) FROM rows").value(), *txns * kRowsPerTxn)
        << "a transaction split";
    EXPECT_EQ(scalar(*db, "SELECT max(txn) FROM rows").value(), *txns - 1);
  }
}

}  // namespace
}  // namespace fleetlet::sqlite
