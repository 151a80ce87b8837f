// The log shipper against a fake console service that stores by key like the real one: every
// line once and in order across outages, shipper restarts (a new shipper on the same cursors,
// as after kill -9) and refused messages; the cursor store.
#include "logship/shipper.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "json/json.h"
#include "logs/rotating_writer.h"
#include "support/temp_dir.h"

namespace fleetlet::logship {
namespace {

using logs::Stream;

// Stores messages by (app, key) as the console service does; can be down or refuse a text.
class FakeConsole : public LogSink {
 public:
  Result<SendResult> send(const std::string& app, const std::vector<Message>& messages) override {
    ++calls;
    if (down) return fail(ErrorCode::kUnavailable, "down");
    // Stores, then "loses the answer": the shipper must send again, harmlessly.
    const bool lose = lose_next_answer;
    lose_next_answer = false;
    for (const auto& m : messages) {
      if (m.text == refuse) return fail(ErrorCode::kInvalidArgument, "refused");
    }
    SendResult r;
    for (const auto& m : messages) {
      if (keys.insert(app + "|" + m.key).second) {
        stored[app].push_back(m.text);
        ++r.stored;
      } else {
        ++r.duplicates;
      }
    }
    if (lose) return fail(ErrorCode::kUnavailable, "timed out");
    return r;
  }
  bool down = false;
  bool lose_next_answer = false;
  std::string refuse = "\x01never";
  int calls = 0;
  std::set<std::string> keys;
  std::map<std::string, std::vector<std::string>> stored;
};

std::vector<std::string> range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(fmt::format("line {}", i));
  return out;
}

class ShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = testing::TempDir::create("fleetlet-shipper-test");
    ASSERT_TRUE(temp) << temp.error().message();
    dir_.emplace(std::move(*temp));
    auto cursors = CursorStore::open(dir_->path() / "cursors.db");
    ASSERT_TRUE(cursors) << cursors.error().message();
    cursors_ = std::move(*cursors);
  }
  std::filesystem::path logs() { return dir_->path() / "logs"; }
  void write(const std::string& app, int from, int to) {
    std::filesystem::create_directories(logs() / app);
    auto w = logs::RotatingWriter::open(logs() / app, {.max_size = 600, .max_files = 3});
    ASSERT_TRUE(w) << w.error().message();
    for (int i = from; i < to; ++i) {
      std::string r;
      logs::appendCriRecord(r, std::chrono::system_clock::now(),
                            i % 3 == 0 ? Stream::kStderr : Stream::kStdout, false,
                            fmt::format("line {}", i));
      ASSERT_TRUE(w->append(r));
    }
    ASSERT_TRUE(w->flush());
  }
  std::unique_ptr<LogShipper> shipper(LogSink& sink) {
    return std::make_unique<LogShipper>(ShipperOptions{.logs_root = logs()}, *cursors_, sink);
  }
  // Runs passes until one ships nothing.
  void drain(LogShipper& s) {
    for (int i = 0; i < 100; ++i) {
      auto n = s.runOnce();
      if (n && *n == 0) return;
    }
  }

  std::optional<testing::TempDir> dir_;
  std::unique_ptr<CursorStore> cursors_;
};

TEST_F(ShipperTest, ShipsEveryAppsLinesOnceAndInOrder) {
  write("camera", 0, 30);
  write("inspector", 0, 5);
  FakeConsole console;
  auto s = shipper(console);
  drain(*s);
  EXPECT_EQ(console.stored["camera"], range(0, 30));
  EXPECT_EQ(console.stored["inspector"], range(0, 5));
  write("camera", 30, 40);
  drain(*s);
  EXPECT_EQ(console.stored["camera"], range(0, 40));
  EXPECT_EQ(s->stats().duplicates, 0u);
}

TEST_F(ShipperTest, AnOutageHoldsTheLinesAndTheyFollowInOrderAfter) {
  write("camera", 0, 5);
  FakeConsole console;
  auto s = shipper(console);
  drain(*s);
  console.down = true;
  write("camera", 5, 25);  // rotates while the service is down
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(s->runOnce());
  console.down = false;
  drain(*s);
  EXPECT_EQ(console.stored["camera"], range(0, 25));
  EXPECT_GE(s->stats().failures, 3u);
}

TEST_F(ShipperTest, ALostAnswerIsSentAgainWithoutStoringTwice) {
  write("camera", 0, 10);
  FakeConsole console;
  console.lose_next_answer = true;
  auto s = shipper(console);
  EXPECT_FALSE(s->runOnce());
  drain(*s);
  EXPECT_EQ(console.stored["camera"], range(0, 10));
  EXPECT_EQ(s->stats().duplicates, 10u);
}

TEST_F(ShipperTest, ANewShipperResumesFromTheSavedCursorsLikeAfterACrash) {
  write("camera", 0, 12);
  FakeConsole console;
  {
    auto s = shipper(console);
    drain(*s);
    ASSERT_EQ(console.stored["camera"], range(0, 12));
  }
  write("camera", 12, 30);
  auto again = shipper(console);
  drain(*again);
  EXPECT_EQ(console.stored["camera"], range(0, 30));
  EXPECT_EQ(again->stats().sent, 18u);  // only what is new (nothing was unfinished)
}

TEST_F(ShipperTest, AShipperWhoseCursorsWereLostSendsEverythingAgainHarmlessly) {
  write("camera", 0, 12);
  FakeConsole console;
  drain(*shipper(console));
  ASSERT_TRUE(cursors_->erase("camera"));
  auto again = shipper(console);
  drain(*again);
  EXPECT_EQ(console.stored["camera"], range(0, 12));
  EXPECT_EQ(again->stats().duplicates, 12u);
}

TEST_F(ShipperTest, ARefusedMessageIsDroppedAndTheRestShipped) {
  std::filesystem::create_directories(logs() / "camera");
  auto w = logs::RotatingWriter::open(logs() / "camera", {});
  ASSERT_TRUE(w);
  for (const auto& text : {"a", "\x01never", "b"}) {
    std::string r;
    logs::appendCriRecord(r, std::chrono::system_clock::now(), Stream::kStdout, false, text);
    ASSERT_TRUE(w->append(r));
  }
  ASSERT_TRUE(w->flush());
  FakeConsole console;
  auto s = shipper(console);
  drain(*s);
  EXPECT_EQ(console.stored["camera"], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s->stats().refused, 1u);
}

TEST_F(ShipperTest, AnAppWhoseLogsAreDeletedIsForgotten) {
  write("camera", 0, 3);
  FakeConsole console;
  auto s = shipper(console);
  drain(*s);
  ASSERT_TRUE(cursors_->load()->contains("camera"));
  std::filesystem::remove_all(logs() / "camera");
  drain(*s);
  EXPECT_FALSE(cursors_->load()->contains("camera"));
}

TEST(IngestBody, CarriesAppKeyStreamAndPartsAndReplacesInvalidUtf8) {
  Message m{.key = "1-ab:0",
            .time = std::chrono::sys_days(std::chrono::year(2026) / 12 / 7),
            .stream = Stream::kStderr,
            .text = "bad \xff byte",
            .part = 2,
            .last = false};
  auto body = Json::parse(ingestBody("camera", {m}));
  const auto& e = body["entries"][0];
  EXPECT_EQ(e["app"], "camera");
  EXPECT_EQ(e["key"], "1-ab:0");
  EXPECT_EQ(e["logName"], "stderr");
  EXPECT_EQ(e["message"], "bad \xef\xbf\xbd byte");
  EXPECT_EQ(e["logTimestamp"], "2026-12-07T00:00:00Z");
  EXPECT_EQ(e["labels"]["part"], "2");
  EXPECT_EQ(e["labels"]["lastPart"], "false");
}

}  // namespace
}  // namespace fleetlet::logship
