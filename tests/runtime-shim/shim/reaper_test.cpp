#include "shim/reaper.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <future>

namespace fleetlet::shim {
namespace {

TEST(ShimReaperTest, ExitsReachTheirWatcherEvenWhenTheyComeFirst) {
  Reaper::blockSigchld();
  auto reaper = Reaper::start();
  ASSERT_TRUE(reaper) << reaper.error().message();

  // Dies before anyone watches it.
  pid_t early = ::fork();
  if (early == 0) ::_exit(3);
  // Watched from the fork on.
  std::promise<int> killed;
  pid_t watched = (*reaper)->spawnWatched(
      [] {
        pid_t pid = ::fork();
        if (pid == 0) {
          ::pause();
          ::_exit(0);
        }
        return pid;
      },
      [&](pid_t, ProcessExit exit) { killed.set_value(exit.status); });
  ASSERT_GT(watched, 0);
  ::kill(watched, SIGKILL);
  EXPECT_EQ(killed.get_future().get(), 128 + SIGKILL);

  std::promise<int> early_exit;
  // The early child may not have been reaped yet: watch() then waits for it like any other.
  (*reaper)->watch(early, [&](pid_t, ProcessExit exit) { early_exit.set_value(exit.status); });
  EXPECT_EQ(early_exit.get_future().get(), 3);
}

TEST(ShimReaperTest, ExitCodesFollowContainerdsConvention) {
  EXPECT_EQ(exitCodeOf(7 << 8), 7);     // exited 7
  EXPECT_EQ(exitCodeOf(SIGTERM), 143);  // killed by SIGTERM
}

}  // namespace
}  // namespace fleetlet::shim
