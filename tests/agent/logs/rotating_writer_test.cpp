// RotatingWriter: the size cap holds for every file, the file count is capped, the oldest
// records are the ones dropped, and records are never split across files.
#include "logs/rotating_writer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <set>

#include "support/temp_dir.h"
#include "test_util.h"

namespace fleetlet::logs {
namespace {

using test::readFile;

std::string numbered(int i) { return fmt::format("record {:05}\n", i); }  // 13 bytes

std::vector<std::string> filesIn(const std::filesystem::path& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.insert(e.path().filename().string());
  }
  return {names.begin(), names.end()};
}

class RotatingWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-logs-test");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    root_ = dir_->path();
  }
  const std::filesystem::path& dir() { return root_; }
  std::optional<testing::TempDir> dir_;
  std::filesystem::path root_;  // dir_'s path
};

TEST_F(RotatingWriterTest, KeepsEveryFileWithinTheCapAndDropsTheOldest) {
  RotationPolicy policy{.max_size = 100, .max_files = 2};
  auto writer = RotatingWriter::open(dir(), policy);
  ASSERT_TRUE(writer) << writer.error().message();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(writer->append(numbered(i)));
  ASSERT_TRUE(writer->flush());

  EXPECT_EQ(filesIn(dir()),
            (std::vector<std::string>{"current.log", "current.log.1", "current.log.2"}));
  // 7 records (91 bytes) fit in 100; the 8th rotates.
  std::string all;
  for (int k = 2; k >= 0; --k) {
    std::string content = readFile(logFilePath(dir(), k));
    EXPECT_LE(content.size(), policy.max_size) << logFilePath(dir(), k);
    EXPECT_EQ(content.size() % 13, 0u) << "a record was split across files";
    all += content;
  }
  // The newest records survive in order; everything older was dropped.
  std::string expected;
  size_t kept = all.size() / 13;
  for (int i = 100 - int(kept); i < 100; ++i) expected += numbered(i);
  EXPECT_EQ(all, expected);
  EXPECT_EQ(readFile(logFilePath(dir(), 0)), numbered(98) + numbered(99));
  EXPECT_EQ(writer->rotations(), 14);
  EXPECT_EQ(writer->droppedRecords(), 0u);
}

TEST_F(RotatingWriterTest, ARecordThatExactlyFillsAFileStaysInIt) {
  auto writer = RotatingWriter::open(dir(), {.max_size = 26, .max_files = 1});
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->append(numbered(1)));
  ASSERT_TRUE(writer->append(numbered(2)));
  ASSERT_TRUE(writer->flush());
  EXPECT_EQ(writer->rotations(), 0);
  ASSERT_TRUE(writer->append(numbered(3)));
  ASSERT_TRUE(writer->flush());
  EXPECT_EQ(readFile(logFilePath(dir(), 1)), numbered(1) + numbered(2));
  EXPECT_EQ(readFile(logFilePath(dir(), 0)), numbered(3));
}

TEST_F(RotatingWriterTest, RejectsARecordLargerThanAFileAndKeepsGoing) {
  auto writer = RotatingWriter::open(dir(), {.max_size = 20, .max_files = 1});
  ASSERT_TRUE(writer);
  auto big = writer->append(std::string(21, 'x') + "\n");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(writer->droppedRecords(), 1u);
  ASSERT_TRUE(writer->append(numbered(1)));
  ASSERT_TRUE(writer->flush());
  EXPECT_EQ(readFile(logFilePath(dir(), 0)), numbered(1));
}

TEST_F(RotatingWriterTest, AReopenedLogCountsItsExistingSize) {
  {
    auto writer = RotatingWriter::open(dir(), {.max_size = 30, .max_files = 1});
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->append(numbered(1)));
    ASSERT_TRUE(writer->append(numbered(2)));
  }  // the destructor flushes
  auto writer = RotatingWriter::open(dir(), {.max_size = 30, .max_files = 1});
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->currentSize(), 26u);
  ASSERT_TRUE(writer->append(numbered(3)));
  ASSERT_TRUE(writer->flush());
  EXPECT_EQ(readFile(logFilePath(dir(), 1)), numbered(1) + numbered(2));
  EXPECT_EQ(readFile(logFilePath(dir(), 0)), numbered(3));
}

// The node's data directory removed while an app runs (the demo does it): the writer notices
// that its current.log is gone and makes the directory and the file again, so the app's later
// lines can be read instead of going into a deleted file.
TEST_F(RotatingWriterTest, ALogRemovedUnderTheWriterIsMadeAgainWithItsDirectory) {
  const auto log_dir = dir() / "data" / "logs" / "camera";
  std::filesystem::create_directories(log_dir);
  auto writer = RotatingWriter::open(log_dir, {.max_size = 1000, .max_files = 2});
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->append(numbered(1)));
  ASSERT_TRUE(writer->flush());
  std::filesystem::remove_all(dir() / "data");

  ASSERT_TRUE(writer->append(numbered(2)));
  ASSERT_TRUE(writer->flush());
  EXPECT_EQ(readFile(logFilePath(log_dir, 0)), numbered(2));
  EXPECT_EQ(writer->recreations(), 1);
  EXPECT_EQ(std::filesystem::status(log_dir).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                std::filesystem::perms::group_exec);

  // Only the file removed (by hand): made again in the same directory.
  std::filesystem::remove(logFilePath(log_dir, 0));
  ASSERT_TRUE(writer->append(numbered(3)));
  ASSERT_TRUE(writer->flush());
  EXPECT_EQ(readFile(logFilePath(log_dir, 0)), numbered(3));
  EXPECT_EQ(writer->recreations(), 2);
}

TEST_F(RotatingWriterTest, RejectsBadPoliciesAndMissingDirectories) {
  EXPECT_EQ(RotatingWriter::open(dir(), {.max_size = 0, .max_files = 1}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(RotatingWriter::open(dir(), {.max_size = 10, .max_files = 0}).error().code(),
            ErrorCode::kInvalidArgument);
  auto missing = RotatingWriter::open(dir() / "nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("nope/current.log"), std::string::npos);
}

// A full disk, simulated by a file size limit: the failed batch is dropped and counted, and
// the record it cut short is ended before the next one is written. Runs in a child process
// (the limit is process-wide); returns the exit code, 0 when all held.
int fullDiskScenario(const std::filesystem::path& dir) {
  if (::signal(SIGXFSZ, SIG_IGN) == SIG_ERR) return 1;
  rlimit limit{.rlim_cur = 100, .rlim_max = RLIM_INFINITY};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
  auto writer = RotatingWriter::open(dir, {.max_size = 1000, .max_files = 1});
  if (!writer) return 3;
  for (int i = 0; i < 10; ++i) (void)writer->append(numbered(i));
  auto failed = writer->flush();
  if (failed || failed.error().sysErrno() != EFBIG) return 4;
  if (writer->droppedRecords() != 3) return 5;  // 7 made it whole
  limit.rlim_cur = RLIM_INFINITY;
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 6;
  if (!writer->append(numbered(10)) || !writer->flush()) return 7;
  std::string expected;
  for (int i = 0; i < 7; ++i) expected += numbered(i);
  expected += numbered(7).substr(0, 9) + "\n" + numbered(10);
  return readFile(logFilePath(dir, 0)) == expected ? 0 : 8;
}

TEST_F(RotatingWriterTest, AFailedWriteDropsTheBatchAndEndsTheCutRecord) {
  EXPECT_EXIT(std::exit(fullDiskScenario(dir())), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace fleetlet::logs
