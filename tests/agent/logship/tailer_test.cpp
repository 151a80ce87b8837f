// The log shipper's tailer: positions and keys that survive a resume, rotation (also while
// nobody reads), truncation, parts of overlong lines, malformed and overlong lines.
#include "logship/tailer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "logs/rotating_writer.h"
#include "support/temp_dir.h"

namespace fleetlet::logship {
namespace {

using logs::Stream;

std::string record(Stream stream, bool partial, std::string_view text, int ms = 0) {
  std::string out;
  logs::appendCriRecord(
      out,
      std::chrono::sys_days(std::chrono::year(2026) / std::chrono::November / 21) +
          std::chrono::milliseconds(ms),
      stream, partial, text);
  return out;
}

std::vector<std::string> texts(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.text);
  return out;
}

std::vector<std::string> range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(fmt::format("line {}", i));
  return out;
}

class TailerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = testing::TempDir::create("fleetlet-logship-test");
    ASSERT_TRUE(temp) << temp.error().message();
    dir_.emplace(std::move(*temp));
    openWriter();
  }
  void openWriter() {
    auto writer = logs::RotatingWriter::open(dir(), policy_);
    ASSERT_TRUE(writer) << writer.error().message();
    writer_.emplace(std::move(*writer));
  }
  const std::filesystem::path& dir() { return dir_->path(); }
  void writeLines(int from, int to, Stream stream = Stream::kStdout) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(writer_->append(record(stream, false, fmt::format("line {}", i), i)));
    }
    ASSERT_TRUE(writer_->flush());
  }
  void writeRecord(Stream stream, bool partial, std::string_view text) {
    ASSERT_TRUE(writer_->append(record(stream, partial, text)));
    ASSERT_TRUE(writer_->flush());
  }
  LogTailer open(const Position& from = {}, TailerLimits limits = {}) {
    auto t = LogTailer::open(dir(), from, limits);
    EXPECT_TRUE(t) << t.error().message();
    return std::move(*t);
  }
  // Polls until nothing more comes.
  std::vector<Message> drain(LogTailer& t) {
    std::vector<Message> all;
    for (int i = 0; i < 1000; ++i) {
      auto got = t.poll();
      EXPECT_TRUE(got) << got.error().message();
      if (!got || got->empty()) break;
      all.insert(all.end(), got->begin(), got->end());
    }
    return all;
  }

  logs::RotationPolicy policy_{.max_size = 400, .max_files = 3};
  std::optional<testing::TempDir> dir_;
  std::optional<logs::RotatingWriter> writer_;
};

TEST_F(TailerTest, ReadsEveryFileOnDiskInOrderWithDistinctKeys) {
  writeLines(0, 20);  // ~45 bytes each: several rotations, nothing dropped yet
  auto t = open();
  auto all = drain(t);
  EXPECT_EQ(texts(all), range(0, 20));
  std::set<std::string> keys;
  for (const auto& m : all) keys.insert(m.key);
  EXPECT_EQ(keys.size(), all.size());
  EXPECT_EQ(all[0].part, 0);
}

TEST_F(TailerTest, ResumingAtTheCursorContinuesWithoutLossOrDuplicate) {
  writeLines(0, 7);
  auto t = open();
  auto first = drain(t);
  ASSERT_EQ(texts(first), range(0, 7));
  const Position cursor = t.cursor();
  writeLines(7, 25);  // rotates past the file of the cursor, which stays on disk
  auto resumed = open(cursor);
  EXPECT_FALSE(resumed.lostFile());
  EXPECT_EQ(texts(drain(resumed)), range(7, 25));
}

TEST_F(TailerTest, KeysAreTheSameWhenTheSameLinesAreReadAgain) {
  writeLines(0, 12);
  auto a = open();
  auto first = drain(a);
  auto b = open();
  auto second = drain(b);
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].key, second[i].key);
}

TEST_F(TailerTest, FollowsRotationsWhileReadingWithoutLossOrDuplicates) {
  auto t = open();
  std::vector<Message> all;
  for (int round = 0; round < 10; ++round) {
    writeLines(round * 5, round * 5 + 5);  // rotates about every 8 lines
    auto got = t.poll();
    ASSERT_TRUE(got) << got.error().message();
    all.insert(all.end(), got->begin(), got->end());
  }
  EXPECT_EQ(texts(all), range(0, 50));
}

TEST_F(TailerTest, LinesWrittenWhileNobodyReadAreReadFromTheRotatedFiles) {
  writeLines(0, 3);
  auto t = open();
  ASSERT_EQ(texts(drain(t)), range(0, 3));
  const Position cursor = t.cursor();
  // An outage: two rotations, the file of the cursor is now current.log.2.
  writeLines(3, 20);
  auto resumed = open(cursor);
  EXPECT_EQ(texts(drain(resumed)), range(3, 20));
}

TEST_F(TailerTest, ACursorWhoseFileWasDroppedStartsAtTheOldestFileAndSaysSo) {
  writeLines(0, 3);
  auto t = open();
  drain(t);
  const Position cursor = t.cursor();
  writeLines(3, 60);  // far more than max_files rotations: the cursor's file is gone
  auto resumed = open(cursor);
  EXPECT_TRUE(resumed.lostFile());
  auto got = texts(drain(resumed));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), "line 59");
  EXPECT_NE(got.front(), "line 3");
}

TEST_F(TailerTest, ATruncatedFileIsReadAgainFromItsStartUnderANewId) {
  writeLines(0, 3);
  auto t = open();
  auto before = drain(t);
  ASSERT_EQ(before.size(), 3u);
  std::filesystem::resize_file(logs::logFilePath(dir(), 0), 0);
  std::ofstream(logs::logFilePath(dir(), 0), std::ios::app)
      << record(Stream::kStdout, false, "after truncation", 99);
  auto after = drain(t);
  ASSERT_EQ(texts(after), std::vector<std::string>{"after truncation"});
  EXPECT_EQ(t.truncations(), 1u);
  EXPECT_NE(after[0].key, before[0].key);  // same offset, other content: not a duplicate
}

TEST_F(TailerTest, AnUnfinishedLineHoldsTheCursorAtItsStart) {
  writeLines(0, 1);
  writeRecord(Stream::kStderr, true, "half ");
  writeLines(1, 2);
  auto t = open();
  EXPECT_EQ(texts(drain(t)), (std::vector<std::string>{"line 0", "line 1"}));
  const Position cursor = t.cursor();
  writeRecord(Stream::kStderr, false, "done");
  EXPECT_EQ(texts(drain(t)), std::vector<std::string>{"half done"});
  // Resuming from the cursor taken while the line was unfinished yields it whole, and line 1
  // again with its key (the service knows it already).
  auto resumed = open(cursor);
  auto again = drain(resumed);
  ASSERT_EQ(texts(again), (std::vector<std::string>{"line 1", "half done"}));
}

TEST_F(TailerTest, LongLinesAreCutIntoPartsAtUtf8BoundariesWithStableKeys) {
  // 40 "é" (2 bytes each) in P records of 30 bytes, then an F: 80 bytes of text.
  std::string text;
  for (int i = 0; i < 40; ++i) text += "\xc3\xa9";
  policy_.max_size = 4096;
  openWriter();
  writeRecord(Stream::kStdout, true, text.substr(0, 30));
  writeRecord(Stream::kStdout, true, text.substr(30, 30));
  writeRecord(Stream::kStdout, false, text.substr(60));
  TailerLimits limits{.max_message = 25};
  auto t = open({}, limits);
  auto parts = drain(t);
  ASSERT_GE(parts.size(), 4u);
  std::string joined;
  std::set<std::string> keys;
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_LE(parts[i].text.size(), 25u);
    EXPECT_EQ(parts[i].text.size() % 2, 0u) << "cut inside a character";
    EXPECT_EQ(parts[i].part, int(i) + 1);
    EXPECT_EQ(parts[i].last, i + 1 == parts.size());
    joined += parts[i].text;
    keys.insert(parts[i].key);
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(keys.size(), parts.size());
  auto again = open({}, limits);
  auto second = drain(again);
  ASSERT_EQ(second.size(), parts.size());
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_EQ(second[i].key, parts[i].key);
}

TEST_F(TailerTest, MalformedAndOverlongLinesAreSkippedAndCounted) {
  const auto path = logs::logFilePath(dir(), 0);
  std::ofstream(path, std::ios::app) << record(Stream::kStdout, false, "before") << "garbage\n"
                                     << std::string(kMaxLineBytes + 10, 'x') << "\n"
                                     << record(Stream::kStdout, false, "after");
  auto t = open();
  EXPECT_EQ(texts(drain(t)), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(t.malformed(), 2u);
}

TEST_F(TailerTest, PollRespectsItsLimits) {
  policy_.max_size = 1 << 20;
  openWriter();
  writeLines(0, 100);
  auto t = open({}, {.max_messages = 30, .max_bytes = 1 << 20, .max_message = 1024});
  auto first = t.poll();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 30u);
  EXPECT_EQ(texts(drain(t)), range(30, 100));
}

TEST_F(TailerTest, AnEntryWhoseEndNeverCameIsShippedOnceTheReaderIsTwoFilesOn) {
  writeRecord(Stream::kStderr, true, "never finished");
  writeLines(0, 25);  // about three rotations; the first file is still kept
  auto t = open();
  auto got = texts(drain(t));
  ASSERT_FALSE(got.empty());
  EXPECT_NE(std::find(got.begin(), got.end(), "never finished"), got.end());
  EXPECT_EQ(got.back(), "line 24");
}

TEST_F(TailerTest, OpeningAMissingDirectoryIsNotFound) {
  auto t = LogTailer::open(dir() / "nope", {});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fleetlet::logship
