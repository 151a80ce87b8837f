// The logger's copy loop on real pipes, its arguments, and the URI that carries them through
// containerd.
#include "logs/logger.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <map>
#include <random>

#include "logs/reader.h"
#include "logs/rotating_writer.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace fleetlet::logs {
namespace {

using test::FakeClock;

struct Pipe {
  UniqueFd read, write;
  static Pipe make() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
  }
};

void writeAll(const UniqueFd& fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    ASSERT_GT(n, 0);
    data.remove_prefix(size_t(n));
  }
}

std::vector<std::string> textsOf(const std::vector<LogEntry>& entries, Stream stream) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    if (e.stream == stream) out.push_back(e.text);
  }
  return out;
}

class LoggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-logs-test");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
  }
  LoggerConfig config(LoggerOptions options = {}) { return {dir_->path(), options}; }
  std::optional<testing::TempDir> dir_;
  FakeClock clock_;
};

TEST_F(LoggerTest, CopiesBothStreamsUntilBothCloseAndSignalsReadiness) {
  Pipe out = Pipe::make(), err = Pipe::make(), ready = Pipe::make();
  auto run = std::async(std::launch::async, [&, o = std::move(out.read), e = std::move(err.read),
                                             r = std::move(ready.write)]() mutable {
    return runLogger(config(), std::move(o), std::move(e), std::move(r), -1, clock_);
  });
  // Readiness: the write end of the ready pipe closes, so this read sees EOF.
  char byte;
  EXPECT_EQ(::read(ready.read.get(), &byte, 1), 0);
  EXPECT_TRUE(std::filesystem::exists(dir_->path() / "current.log"));

  writeAll(out.write, "out 1\nout ");
  writeAll(err.write, "err 1\n");
  writeAll(out.write, "2\nno newline at the end");
  out.write.reset();
  writeAll(err.write, "err 2\n");
  err.write.reset();
  auto stats = run.get();
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats->records, 5u);
  EXPECT_EQ(stats->dropped, 0u);

  auto tail = readTail(dir_->path(), 100);
  ASSERT_TRUE(tail) << tail.error().message();
  EXPECT_EQ(tail->malformed, 0u);
  EXPECT_EQ(textsOf(tail->entries, Stream::kStdout),
            (std::vector<std::string>{"out 1", "out 2", "no newline at the end"}));
  EXPECT_EQ(textsOf(tail->entries, Stream::kStderr), (std::vector<std::string>{"err 1", "err 2"}));
  // Every record is a CRI line stamped by the injected clock.
  std::string content = test::readFile(dir_->path() / "current.log");
  EXPECT_TRUE(content.starts_with("2026-11-21T06:00:00Z std")) << content;
}

TEST_F(LoggerTest, SplitsLongLinesAndRotatesWithinTheCap) {
  Pipe out = Pipe::make(), ready = Pipe::make();
  LoggerOptions options{.max_size = 2048, .max_files = 2, .max_line = 100};
  auto run = std::async(
      std::launch::async, [&, o = std::move(out.read), r = std::move(ready.write)]() mutable {
        return runLogger(config(options), std::move(o), UniqueFd(), std::move(r), -1, clock_);
      });
  std::string long_line(250, 'x');
  std::string input;
  for (int i = 0; i < 20; ++i) input += fmt::format("{}{:03}\n", long_line, i);
  writeAll(out.write, input);
  out.write.reset();
  auto stats = run.get();
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats->records, 60u);  // 253 bytes: 100 P + 100 P + 53 F
  EXPECT_GT(stats->rotations, 0);

  for (int k = 0; k <= 2; ++k) {
    auto size = std::filesystem::file_size(logFilePath(dir_->path(), k));
    EXPECT_LE(size, options.max_size) << k;
  }
  EXPECT_FALSE(std::filesystem::exists(logFilePath(dir_->path(), 3)));
  auto tail = readTail(dir_->path(), 3);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->entries.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tail->entries[i].text, fmt::format("{}{:03}", long_line, 17 + i));
  }
}

TEST_F(LoggerTest, OnStopDrainsWhatThePipesHoldAndExitsWhileWritersStayOpen) {
  Pipe out = Pipe::make(), err = Pipe::make(), ready = Pipe::make();
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(stop);
  writeAll(out.write, "before stop\nunfinished");
  writeAll(err.write, "e\n");
  uint64_t one = 1;
  ASSERT_EQ(::write(stop.get(), &one, sizeof one), ssize_t(sizeof one));
  // The writers stay open, as when a container's child outlives the task: stop must still
  // end the loop once the pipes are empty.
  auto stats = runLogger(config(), std::move(out.read), std::move(err.read), std::move(ready.write),
                         stop.get(), clock_);
  ASSERT_TRUE(stats) << stats.error().message();
  auto tail = readTail(dir_->path(), 100);
  ASSERT_TRUE(tail);
  EXPECT_EQ(textsOf(tail->entries, Stream::kStdout),
            (std::vector<std::string>{"before stop", "unfinished"}));
  EXPECT_EQ(textsOf(tail->entries, Stream::kStderr), (std::vector<std::string>{"e"}));
}

TEST_F(LoggerTest, FailsWhenTheLogCannotBeOpened) {
  auto stats =
      runLogger({dir_->path() / "missing", {}}, UniqueFd(), UniqueFd(), UniqueFd(), -1, clock_);
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), ErrorCode::kNotFound);
}

// A full disk (a file size limit) loses records but never stops the logger from draining the
// task's pipes. Runs in a child process (the limit is process-wide); returns the exit code.
int fullDiskScenario(const LoggerConfig& config, Clock& clock) {
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit limit{.rlim_cur = 1000, .rlim_max = RLIM_INFINITY};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
  Pipe out = Pipe::make(), ready = Pipe::make();
  std::string input;
  for (int i = 0; i < 2000; ++i) input += fmt::format("line {}\n", i);  // ~20 KB
  auto feeder = std::async(std::launch::async, [&] {
    writeAll(out.write, input);
    out.write.reset();
  });
  auto stats =
      runLogger(config, std::move(out.read), UniqueFd(), std::move(ready.write), -1, clock);
  feeder.get();
  if (!stats) return 3;
  bool ok = stats->dropped > 0 && stats->records > 0 && stats->records + stats->dropped == 2000 &&
            !stats->last_error.empty();
  return ok ? 0 : 4;
}

TEST_F(LoggerTest, WriteErrorsDropRecordsButThePipesKeepDraining) {
  EXPECT_EXIT(std::exit(fullDiskScenario(config(), clock_)), ::testing::ExitedWithCode(0), "");
}

TEST(LoggerArgs, ParsesPairsInAnyOrderAndKeyEqualsValue) {
  auto a = parseLoggerArgs({"--max-size", "8192", "--dir", "/var/log/x", "--max-files", "5"});
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->dir, "/var/log/x");
  EXPECT_EQ(a->options.max_size, 8192u);
  EXPECT_EQ(a->options.max_files, 5);
  EXPECT_EQ(a->options.max_line, LoggerOptions{}.max_line);
  auto b = parseLoggerArgs({"--max-line=64", "--dir=/d"});
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->dir, "/d");
  EXPECT_EQ(b->options.max_line, 64u);
  EXPECT_EQ(b->options.max_size, uint64_t(4 << 20));
}

TEST(LoggerArgs, RejectsBadArgumentsNamingThem) {
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  for (const auto& c : std::vector<Case>{{{}, "--dir"},
                                         {{"--dir", "relative/dir"}, "relative/dir"},
                                         {{"--dir", "/d", "--max-size", "12"}, "max-size"},
                                         {{"--dir", "/d", "--max-size", "lots"}, "lots"},
                                         {{"--dir", "/d", "--max-files", "0"}, "max-files"},
                                         {{"--dir", "/d", "--colour", "red"}, "colour"}}) {
    auto parsed = parseLoggerArgs(c.args);
    ASSERT_FALSE(parsed) << c.mentions;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message().find(c.mentions), std::string::npos)
        << parsed.error().message();
  }
}

TEST(LoggerOptions, LowersMaxLineSoEveryRecordFitsAFile) {
  EXPECT_EQ((LoggerOptions{.max_size = 4096, .max_line = 16384}).effectiveMaxLine(),
            4096 - kMaxCriOverhead);
  EXPECT_EQ((LoggerOptions{.max_size = 4096, .max_line = 100}).effectiveMaxLine(), 100u);
}

// What containerd's shim does with a binary:// URI (pkg/process NewBinaryCmd): url.Parse,
// then every query key followed by its first value, keys in Go's random map order.
std::pair<std::string, std::vector<std::string>> goBinaryArgv(const std::string& uri,
                                                              std::mt19937& rng) {
  auto unescape = [](std::string_view s, bool query) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else if (query && s[i] == '+') {
        out += ' ';
      } else {
        out += s[i];
      }
    }
    return out;
  };
  EXPECT_TRUE(uri.starts_with("binary://"));
  std::string rest = uri.substr(9);
  size_t q = rest.find('?');
  std::string path = unescape(rest.substr(0, q), false);
  std::vector<std::pair<std::string, std::string>> params;
  std::string query = q == std::string::npos ? "" : rest.substr(q + 1);
  for (size_t start = 0; start <= query.size();) {
    size_t amp = query.find('&', start);
    std::string kv = query.substr(start, amp - start);
    size_t eq = kv.find('=');
    params.emplace_back(unescape(kv.substr(0, eq), true),
                        eq == std::string::npos ? "" : unescape(kv.substr(eq + 1), true));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  std::shuffle(params.begin(), params.end(), rng);
  std::vector<std::string> argv;
  for (auto& [k, v] : params) {
    argv.push_back(k);
    argv.push_back(v);
  }
  return {path, argv};
}

TEST(LoggerUri, SurvivesContainerdsQueryToArgvConversion) {
  LoggerConfig config{.dir = "/var/lib/fleetlet/logs/a b+c%d&e=f?g",
                      .options = {.max_size = 65536, .max_files = 4, .max_line = 1000}};
  auto uri = loggerUri("/usr/lib/fleetlet/fleetlet logger", config);
  ASSERT_TRUE(uri) << uri.error().message();
  EXPECT_TRUE(uri->starts_with("binary:///usr/lib/fleetlet/fleetlet%20logger?--dir="));
  std::mt19937 rng(7);
  for (int i = 0; i < 5; ++i) {
    auto [path, argv] = goBinaryArgv(*uri, rng);
    EXPECT_EQ(path, "/usr/lib/fleetlet/fleetlet logger");
    auto parsed = parseLoggerArgs(argv);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(*parsed, config);
  }
}

TEST(LoggerUri, RejectsRelativePathsAndBadOptions) {
  EXPECT_EQ(loggerUri("fleetlet-logger", {.dir = "/d"}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(loggerUri("/bin/l", {.dir = "d"}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(loggerUri("/bin/l", {.dir = "/d", .options = {.max_files = 0}}).error().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleetlet::logs
