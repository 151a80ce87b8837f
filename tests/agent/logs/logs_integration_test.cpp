// fleetlet-logger under a real containerd: a task started with loggerIo() has both streams
// captured completely, in order, rotated within the size cap, and followable while it runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "containerd/tasks.h"
#include "logs/reader.h"
#include "logs/rotating_writer.h"
#include "logs/task_io.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/shared_images.h"
#include "support/test_containers.h"
#include "support/test_images.h"

namespace fleetlet::logs {
namespace {

using containerd::Connection;
using containerd::TaskService;
using testing::LocalRegistry;
using testing::PrivateContainerd;
using testing::TestImages;

constexpr char kNs[] = "fleetlet";
constexpr int kLines = 2000;
const char kPrintBoth[] = "for i in $(seq 1 2000); do echo out $i; echo err $i >&2; done";

std::vector<std::string> expected(std::string_view prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back(fmt::format("{} {}", prefix, i));
  return out;
}

std::vector<std::string> textsOf(const std::vector<LogEntry>& entries, Stream stream) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    if (e.stream == stream) out.push_back(e.text);
  }
  return out;
}

class LoggerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    auto shared = testing::SharedImages::get({.include_big = false});
    ASSERT_TRUE(shared) << shared.error().message();
    registry_ = &(*shared)->registry();
    images_ = &(*shared)->images();
    ASSERT_TRUE(std::filesystem::exists(FLEETLET_LOGGER_BINARY)) << FLEETLET_LOGGER_BINARY;
    auto ctrd = PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    auto containers = testing::TestContainers::prepare(*containerd_, kNs, images_->busybox());
    ASSERT_TRUE(containers) << containers.error().message();
    containers_.emplace(std::move(*containers));
    conn_ = containers_->connection();
  }

  std::string createContainer(const std::vector<std::string>& args) {
    auto id = containers_->create("logs", args, "logs-test");
    EXPECT_TRUE(id) << id.error().message();
    return id.value_or("");
  }

  // Runs the container's task with `io` to its exit and deletes the task, which closes the
  // logger's pipes and waits for the logger to exit. Returns the exit status.
  Result<uint32_t> runToExit(const std::string& id, const containerd::TaskIo& io) {
    TaskService tasks(conn_, {kNs, {}});
    FLEETLET_RETURN_IF_ERROR(discardValue(containers_->createTask(id, io)));
    auto waited = std::async(std::launch::async, [&] { return tasks.wait(id); });
    FLEETLET_RETURN_IF_ERROR(tasks.start(id));
    FLEETLET_ASSIGN_OR_RETURN(auto exit, waited.get());
    FLEETLET_RETURN_IF_ERROR(tasks.remove(id));
    return exit.exit_status;
  }

  void destroy(const std::string& id) {
    auto st = containers_->destroy(id);
    EXPECT_TRUE(st) << st.error().message();
  }

  std::filesystem::path logDir(const std::string& id) { return containerd_->dir() / "logs" / id; }

  const LocalRegistry* registry_ = nullptr;
  const TestImages* images_ = nullptr;
  std::optional<PrivateContainerd> containerd_;
  std::shared_ptr<Connection> conn_;
  std::optional<testing::TestContainers> containers_;
};

TEST_F(LoggerIntegrationTest, CapturesBothStreamsCompletelyWithRotationWhileFollowed) {
  std::string id = createContainer({"sh", "-c", kPrintBoth});
  LoggerOptions options{.max_size = 16 * 1024, .max_files = 20};
  auto io = loggerIo(FLEETLET_LOGGER_BINARY, logDir(id), options);
  ASSERT_TRUE(io) << io.error().message();
  EXPECT_TRUE(io->stdout_uri.starts_with("binary:///")) << io->stdout_uri;

  // A follower, opened before the log exists, reads along while the task runs.
  auto follower = LogFollower::open(logDir(id), SIZE_MAX);
  ASSERT_TRUE(follower) << follower.error().message();
  std::atomic<bool> done{false};
  std::vector<LogEntry> followed;
  std::thread reader([&] {
    ThreadSleeper sleeper;
    while (!done) {
      auto got =
          follower->wait(sleeper, std::chrono::milliseconds(5), std::chrono::milliseconds(50));
      ASSERT_TRUE(got) << got.error().message();
      followed.insert(followed.end(), got->begin(), got->end());
    }
  });
  auto status = runToExit(id, *io);
  done = true;
  reader.join();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 0u);
  // The logger may still be draining the pipes when the task's exit is reported: wait until
  // the files hold every line, then let the follower catch up with them.
  auto complete = [&] {
    auto t = readTail(logDir(id), SIZE_MAX);
    return t && t->entries.size() >= 2 * static_cast<size_t>(kLines);
  };
  for (int i = 0; i < 500 && !complete(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto tail = readTail(logDir(id), SIZE_MAX);
  ASSERT_TRUE(tail) << tail.error().message();
  for (int i = 0; i < 500 && followed.size() < tail->entries.size(); ++i) {
    auto rest = follower->poll();
    ASSERT_TRUE(rest) << rest.error().message();
    followed.insert(followed.end(), rest->begin(), rest->end());
    if (followed.size() < tail->entries.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(tail->malformed, 0u);
  EXPECT_EQ(textsOf(tail->entries, Stream::kStdout), expected("out", 1, kLines));
  EXPECT_EQ(textsOf(tail->entries, Stream::kStderr), expected("err", 1, kLines));
  EXPECT_EQ(followed, tail->entries) << "following saw " << followed.size() << " entries";
  EXPECT_EQ(follower->malformed(), 0u);

  // ~45 bytes a record, 4000 records: about 11 files of 16 KiB, none above the cap.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(logDir(id))) {
    ++files;
    EXPECT_LE(entry.file_size(), options.max_size) << entry.path();
  }
  EXPECT_GE(files, 8);
  EXPECT_TRUE(std::filesystem::exists(logFilePath(logDir(id), 1)));
  EXPECT_FALSE(std::filesystem::exists(logFilePath(logDir(id), options.max_files + 1)));

  // A short tail is the end of the full one (the order between the streams is the order
  // the logger read them in, chunk by chunk).
  auto last = readTail(logDir(id), 10);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->entries, std::vector<LogEntry>(tail->entries.end() - 10, tail->entries.end()));
  destroy(id);
}

TEST_F(LoggerIntegrationTest, KeepsOnlyMaxFilesDroppingTheOldest) {
  // One stream: the logger reads each pipe in chunks of up to 64 KiB, so with both streams
  // the surviving files could hold the end of one stream only.
  std::string id = createContainer({"sh", "-c", "for i in $(seq 1 2000); do echo out $i; done"});
  LoggerOptions options{.max_size = 8 * 1024, .max_files = 2};
  auto io = loggerIo(FLEETLET_LOGGER_BINARY, logDir(id), options);
  ASSERT_TRUE(io) << io.error().message();
  auto status = runToExit(id, *io);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 0u);

  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(logDir(id))) {
    names.push_back(entry.path().filename().string());
    EXPECT_LE(entry.file_size(), options.max_size) << entry.path();
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"current.log", "current.log.1", "current.log.2"}));

  // What is left is the newest stretch of output, without gaps, up to the last line.
  auto tail = readTail(logDir(id), SIZE_MAX);
  ASSERT_TRUE(tail) << tail.error().message();
  auto texts = textsOf(tail->entries, Stream::kStdout);
  ASSERT_FALSE(texts.empty());
  ASSERT_LT(texts.size(), size_t(kLines)) << "nothing was dropped";
  EXPECT_EQ(texts, expected("out", kLines - int(texts.size()) + 1, kLines));
  EXPECT_EQ(texts.size(), tail->entries.size());
  destroy(id);
}

}  // namespace
}  // namespace fleetlet::logs
