// Reading logs: tail across rotated files, joining partial records, skipping malformed lines,
// and following appends across rotation and truncation.
#include "logs/reader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "logs/rotating_writer.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace fleetlet::logs {
namespace {

using test::appendFile;
using test::record;

std::vector<std::string> texts(const std::vector<LogEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.text);
  return out;
}

std::vector<std::string> range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(fmt::format("line {}", i));
  return out;
}

// Runs a callback in place of sleeping, counting the sleeps.
class ScriptedSleeper : public Sleeper {
 public:
  explicit ScriptedSleeper(std::function<void(int)> on_sleep) : on_sleep_(std::move(on_sleep)) {}
  void sleepFor(std::chrono::milliseconds duration) override {
    slept += duration;
    on_sleep_(sleeps++);
  }
  int sleeps = 0;
  std::chrono::milliseconds slept{0};

 private:
  std::function<void(int)> on_sleep_;
};

class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = testing::TempDir::create("fleetlet-logs-test");
    ASSERT_TRUE(temp) << temp.error().message();
    dir_.emplace(std::move(*temp));
    auto writer = RotatingWriter::open(dir(), policy_);
    ASSERT_TRUE(writer) << writer.error().message();
    writer_.emplace(std::move(*writer));
  }
  const std::filesystem::path& dir() { return dir_->path(); }
  // Writes "line i" for i in [from, to) on `stream` through the rotating writer.
  void writeLines(int from, int to, Stream stream = Stream::kStdout) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(writer_->append(record(stream, false, fmt::format("line {}", i), i)));
    }
    ASSERT_TRUE(writer_->flush());
  }

  RotationPolicy policy_{.max_size = 400, .max_files = 3};
  std::optional<testing::TempDir> dir_;
  std::optional<RotatingWriter> writer_;
};

TEST_F(ReaderTest, TailReturnsTheLastEntriesAcrossRotatedFilesOldestFirst) {
  writeLines(0, 40);                   // ~42 bytes a record, 9 per file: [0,9) [9,18) ... [36,40)
  ASSERT_EQ(writer_->rotations(), 4);  // so [0,9) was dropped
  auto tail = readTail(dir(), 20);
  ASSERT_TRUE(tail) << tail.error().message();
  EXPECT_EQ(texts(tail->entries), range(20, 40));
  EXPECT_EQ(tail->malformed, 0u);
  EXPECT_EQ(tail->entries.front().time, test::FakeClock::start_ + std::chrono::milliseconds(20));

  auto all = readTail(dir(), SIZE_MAX);
  ASSERT_TRUE(all);
  EXPECT_EQ(texts(all->entries), range(9, 40));
  EXPECT_EQ(texts(readTail(dir(), 0).value().entries), std::vector<std::string>{});
}

TEST_F(ReaderTest, TailJoinsPartialRecordsEvenAcrossARotation) {
  appendFile(logFilePath(dir(), 1), record(Stream::kStdout, false, "first") +
                                        record(Stream::kStderr, true, "err-a") +
                                        record(Stream::kStdout, true, "out-a"));
  appendFile(logFilePath(dir(), 0), record(Stream::kStdout, true, "out-b") +
                                        record(Stream::kStderr, false, "err-b") +
                                        record(Stream::kStdout, false, "out-c") +
                                        record(Stream::kStdout, true, "still writing"));
  auto tail = readTail(dir(), 2);
  ASSERT_TRUE(tail) << tail.error().message();
  ASSERT_EQ(tail->entries.size(), 2u);
  EXPECT_EQ(tail->entries[0].text, "err-aerr-b");
  EXPECT_EQ(tail->entries[0].stream, Stream::kStderr);
  EXPECT_EQ(tail->entries[1].text, "out-aout-bout-c");
  EXPECT_EQ(tail->entries[1].stream, Stream::kStdout);
}

TEST_F(ReaderTest, MalformedLinesAreSkippedAndCounted) {
  appendFile(logFilePath(dir(), 0), record(Stream::kStdout, false, "good 1") + "not a record\n\n" +
                                        "2026-11-21T06:00:00Z stdin F wrong stream\n" +
                                        record(Stream::kStdout, false, "good 2"));
  auto tail = readTail(dir(), 10);
  ASSERT_TRUE(tail);
  EXPECT_EQ(texts(tail->entries), (std::vector<std::string>{"good 1", "good 2"}));
  EXPECT_EQ(tail->malformed, 3u);
}

TEST_F(ReaderTest, TailOfAMissingDirectoryIsNotFoundAndOfAnEmptyOneIsEmpty) {
  auto missing = readTail(dir() / "nope", 10);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto empty = testing::TempDir::create("fleetlet-logs-empty");
  ASSERT_TRUE(empty);
  auto tail = readTail(empty->path(), 10);
  ASSERT_TRUE(tail) << tail.error().message();
  EXPECT_TRUE(tail->entries.empty());
}

TEST_F(ReaderTest, FollowerYieldsTheTailThenOnlyNewEntries) {
  writeLines(0, 5);
  auto follower = LogFollower::open(dir(), 2);
  ASSERT_TRUE(follower) << follower.error().message();
  EXPECT_EQ(texts(follower->poll().value()), range(3, 5));
  EXPECT_TRUE(follower->poll().value().empty());
  writeLines(5, 8);
  EXPECT_EQ(texts(follower->poll().value()), range(5, 8));
  EXPECT_TRUE(follower->poll().value().empty());
}

TEST_F(ReaderTest, FollowerWaitsForARecordWrittenInPieces) {
  auto follower = LogFollower::open(dir(), 0);
  ASSERT_TRUE(follower);
  std::string rec = record(Stream::kStderr, false, "slow");
  appendFile(logFilePath(dir(), 0), rec.substr(0, 10));
  EXPECT_TRUE(follower->poll().value().empty());
  appendFile(logFilePath(dir(), 0), rec.substr(10) + record(Stream::kStdout, true, "half"));
  EXPECT_EQ(texts(follower->poll().value()), std::vector<std::string>{"slow"});
  appendFile(logFilePath(dir(), 0), record(Stream::kStdout, false, "done"));
  EXPECT_EQ(texts(follower->poll().value()), std::vector<std::string>{"halfdone"});
}

TEST_F(ReaderTest, FollowerCrossesRotationsWithoutLossOrDuplicates) {
  writeLines(0, 3);
  auto follower = LogFollower::open(dir(), SIZE_MAX);
  ASSERT_TRUE(follower);
  std::vector<std::string> seen = texts(follower->poll().value());
  // One rotation between polls, then three (max_files): nothing is lost.
  writeLines(3, 15);
  ASSERT_EQ(writer_->rotations(), 1);
  for (auto& t : texts(follower->poll().value())) seen.push_back(t);
  writeLines(15, 40);
  ASSERT_EQ(writer_->rotations(), 4);
  for (auto& t : texts(follower->poll().value())) seen.push_back(t);
  EXPECT_EQ(seen, range(0, 40));
}

TEST_F(ReaderTest, FollowerStartedBeforeTheLogExistsReadsItFromTheStart) {
  writer_.reset();
  std::filesystem::remove(logFilePath(dir(), 0));
  auto follower = LogFollower::open(dir(), 10);
  ASSERT_TRUE(follower) << follower.error().message();
  EXPECT_TRUE(follower->poll().value().empty());
  auto writer = RotatingWriter::open(dir(), policy_);
  ASSERT_TRUE(writer);
  writer_.emplace(std::move(*writer));
  writeLines(0, 20);  // rotates twice before the first poll
  EXPECT_EQ(texts(follower->poll().value()), range(0, 20));
}

TEST_F(ReaderTest, FollowerRereadsATruncatedFile) {
  writeLines(0, 3);
  auto follower = LogFollower::open(dir(), SIZE_MAX);
  ASSERT_TRUE(follower);
  EXPECT_EQ(texts(follower->poll().value()), range(0, 3));
  std::filesystem::resize_file(logFilePath(dir(), 0), 0);
  appendFile(logFilePath(dir(), 0), record(Stream::kStdout, false, "after truncation"));
  EXPECT_EQ(texts(follower->poll().value()), std::vector<std::string>{"after truncation"});
  EXPECT_EQ(follower->truncations(), 1u);
}

TEST_F(ReaderTest, WaitSleepsBetweenPollsUntilEntriesArriveOrTimeOut) {
  auto follower = LogFollower::open(dir(), 0);
  ASSERT_TRUE(follower);
  ScriptedSleeper sleeper([&](int n) {
    if (n == 2) writeLines(0, 1);
  });
  auto got = follower->wait(sleeper, std::chrono::milliseconds(100), std::chrono::seconds(10));
  ASSERT_TRUE(got);
  EXPECT_EQ(texts(*got), range(0, 1));
  EXPECT_EQ(sleeper.sleeps, 3);

  ScriptedSleeper idle([](int) {});
  got = follower->wait(idle, std::chrono::milliseconds(100), std::chrono::milliseconds(500));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(idle.slept, std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace fleetlet::logs
