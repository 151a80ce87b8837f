#include "os/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fleetlet {
namespace {

TEST(RunCommand, CapturesBothStreamsAndExitCode) {
  auto r = runCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->status.exit_code, 3);
  EXPECT_FALSE(r->status.success());
}

TEST(RunCommand, PassesExtraEnvironment) {
  auto r = runCommand({"sh", "-c", "printf %s \"$FLEETLET_X\""}, {{"FLEETLET_X", "42"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "42");
}

TEST(RunCommand, MissingBinaryIsNotFound) {
  auto r = runCommand({"/nonexistent/fleetlet-binary"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(RunCommand, FeedsStdinLargerThanAPipe) {
  std::string input(1 << 20, 'x');  // 1 MiB: more than a pipe buffer, written while reading
  auto r = runCommand(RunOptions{.argv = {"wc", "-c"}, .input = input});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->out, "1048576\n");
  EXPECT_TRUE(r->status.success());
  EXPECT_FALSE(r->timed_out);
}

TEST(RunCommand, AProgramThatIgnoresStdinDoesNotKillUs) {
  // `true` exits without reading: writing the rest of stdin gets EPIPE, not a SIGPIPE.
  auto r = runCommand(RunOptions{.argv = {"true"}, .input = std::string(1 << 20, 'x')});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->status.success());
}

TEST(RunCommand, TimeoutKillsTheWholeGroupAndReportsIt) {
  auto r = runCommand(RunOptions{.argv = {"sh", "-c", "echo started; sleep 30 & wait"},
                                 .timeout = std::chrono::milliseconds(200)});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->status.term_signal, SIGKILL);
  EXPECT_EQ(r->out, "started\n");
}

TEST(ChildProcess, StopEscalatesToKillAfterGrace) {
  auto ready =
      std::filesystem::temp_directory_path() / ("fleetlet-ready-" + std::to_string(getpid()));
  std::filesystem::remove(ready);
  auto child = ChildProcess::spawn(
      {.argv = {"sh", "-c", "trap '' TERM; echo > " + ready.string() + "; sleep 30"}});
  ASSERT_TRUE(child);
  for (int i = 0; i < 500 && !std::filesystem::exists(ready); ++i) usleep(10000);
  auto status = child->stop(SIGTERM, std::chrono::milliseconds(200));
  EXPECT_EQ(status.term_signal, SIGKILL);
  std::filesystem::remove(ready);
}

TEST(ChildProcess, DestructorKillsTheWholeGroup) {
  auto dir = std::filesystem::temp_directory_path() / ("fleetlet-cp-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto pidfile = dir / "grandchild";
  pid_t grandchild = 0;
  {
    auto child = ChildProcess::spawn(
        {.argv = {"sh", "-c", "sleep 30 & echo $! > " + pidfile.string() + "; wait"}});
    ASSERT_TRUE(child);
    for (int i = 0; i < 200 && !std::filesystem::exists(pidfile); ++i) usleep(10000);
    usleep(20000);
    std::ifstream(pidfile) >> grandchild;
    ASSERT_GT(grandchild, 0);
  }
  // The grandchild was in the child's process group, so it died with it (it is reaped by
  // init, so poll until it is gone).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = ::kill(grandchild, 0) != 0;
    if (!gone) usleep(10000);
  }
  EXPECT_TRUE(gone);
  std::filesystem::remove_all(dir);
}

// A program that ends on the signal at once but leaves a process of its group behind (as a
// browser's UI process leaves its helpers): stop() returns only when that one is gone too.
TEST(ChildProcess, StopEndsWhatTheChildLeftInItsGroup) {
  auto dir = std::filesystem::temp_directory_path() / ("fleetlet-cp-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto pidfile = dir / "left-behind";
  auto child = ChildProcess::spawn(
      {.argv = {"sh", "-c", "sleep 30 & echo $! > " + pidfile.string() + "; exec sleep 30"}});
  ASSERT_TRUE(child);
  pid_t left = 0;
  for (int i = 0; i < 200 && left <= 0; ++i) {
    usleep(10000);
    std::ifstream(pidfile) >> left;
  }
  ASSERT_GT(left, 0);
  auto status = child->stop(SIGTERM, std::chrono::milliseconds(300));
  EXPECT_EQ(status.term_signal, SIGTERM) << "the child itself ended on the signal";
  // Killed before stop() returned: at most a zombie until init reaps it, never running.
  std::string state;
  std::ifstream stat("/proc/" + std::to_string(left) + "/stat");
  std::string line;
  std::getline(stat, line);
  if (auto close = line.rfind(')'); close != std::string::npos && close + 2 < line.size()) {
    state = line.substr(close + 2, 1);
  }
  EXPECT_TRUE(state.empty() || state == "Z") << "process " << left << " is in state " << state;
  std::filesystem::remove_all(dir);
}

TEST(ChildProcess, RedirectsStdoutToFile) {
  auto path = std::filesystem::temp_directory_path() / ("fleetlet-out-" + std::to_string(getpid()));
  std::filesystem::remove(path);
  auto child = ChildProcess::spawn({.argv = {"echo", "hello"}, .stdout_path = path});
  ASSERT_TRUE(child);
  EXPECT_TRUE(child->wait().success());
  std::stringstream ss;
  ss << std::ifstream(path).rdbuf();
  EXPECT_EQ(ss.str(), "hello\n");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace fleetlet
