// Cgroup against a plain directory laid out like /sys/fs/cgroup (v1 and v2): what it writes
// for limits and how it reads usage. The kernel side is covered by shim_integration_test (v1
// on this machine).
#include "shim/cgroup.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "support/temp_dir.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;

std::string readFile(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

class ShimCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("shim-cgroup");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
  }
  fs::path root() const { return dir_->path(); }
  std::unique_ptr<testing::TempDir> dir_;
};

TEST_F(ShimCgroupTest, V2LimitsGoToTheUnifiedFiles) {
  Cgroup cgroup("/ns/app", root(), true);
  // The kernel gives every cgroup directory its control files.
  writeFile(root() / "cgroup.subtree_control", "");
  writeFile(root() / "ns/cgroup.subtree_control", "");
  ASSERT_TRUE(cgroup.create());
  for (const char* f : {"memory.max", "cpu.max", "cpu.weight", "pids.max"}) {
    writeFile(root() / "ns/app" / f, "");
  }
  Resources r{.memory_limit = 16 << 20,
              .cpu_shares = 1024,
              .cpu_quota = 50000,
              .cpu_period = 100000,
              .pids_limit = 0};
  ASSERT_TRUE(cgroup.apply(r));
  EXPECT_EQ(readFile(root() / "ns/app/memory.max"), "16777216");
  EXPECT_EQ(readFile(root() / "ns/app/cpu.max"), "50000 100000");
  EXPECT_EQ(readFile(root() / "ns/app/cpu.weight"), "39");  // runc's shares → weight
  EXPECT_EQ(readFile(root() / "ns/app/pids.max"), "max");   // 0 = unlimited
  // Controllers were enabled on the way down.
  EXPECT_EQ(readFile(root() / "cgroup.subtree_control"), "+memory +cpu +pids");
  EXPECT_EQ(readFile(root() / "ns/cgroup.subtree_control"), "+memory +cpu +pids");
}

TEST_F(ShimCgroupTest, V2UsageComesFromCurrentStatAndEvents) {
  Cgroup cgroup("ns/app", root(), true);
  writeFile(root() / "ns/app/memory.current", "1234\n");
  writeFile(root() / "ns/app/memory.peak", "4321\n");
  writeFile(root() / "ns/app/memory.max", "max\n");
  writeFile(root() / "ns/app/cpu.stat", "usage_usec 250\nuser_usec 200\nsystem_usec 50\n");
  writeFile(root() / "ns/app/pids.current", "3\n");
  writeFile(root() / "ns/app/pids.max", "64\n");
  writeFile(root() / "ns/app/memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n");
  writeFile(root() / "ns/app/cgroup.procs", "10\n11\n");
  CgroupStats s = cgroup.stats();
  EXPECT_EQ(s.memory_usage, 1234u);
  EXPECT_EQ(s.memory_max_usage, 4321u);
  EXPECT_EQ(s.memory_limit, 0u);  // "max": no limit
  EXPECT_EQ(s.cpu_usage_ns, 250000u);
  EXPECT_EQ(s.pids_current, 3u);
  EXPECT_EQ(s.pids_limit, 64u);
  EXPECT_EQ(s.oom_kills, 2u);
  auto pids = cgroup.pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, (std::vector<pid_t>{10, 11}));
}

TEST_F(ShimCgroupTest, V1LimitsGoToEachControllersFiles) {
  for (const char* c : {"memory", "cpu", "cpuacct", "pids"}) fs::create_directories(root() / c);
  Cgroup cgroup("/ns/app", root(), false);
  ASSERT_TRUE(cgroup.create());
  for (const char* f :
       {"memory/ns/app/memory.limit_in_bytes", "cpu/ns/app/cpu.shares",
        "cpu/ns/app/cpu.cfs_quota_us", "cpu/ns/app/cpu.cfs_period_us", "pids/ns/app/pids.max"}) {
    writeFile(root() / f, "");
  }
  ASSERT_TRUE(cgroup.apply({.memory_limit = 1 << 20,
                            .cpu_shares = 512,
                            .cpu_quota = 20000,
                            .cpu_period = 100000,
                            .pids_limit = 8}));
  EXPECT_EQ(readFile(root() / "memory/ns/app/memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(readFile(root() / "cpu/ns/app/cpu.shares"), "512");
  EXPECT_EQ(readFile(root() / "cpu/ns/app/cpu.cfs_quota_us"), "20000");
  EXPECT_EQ(readFile(root() / "cpu/ns/app/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(readFile(root() / "pids/ns/app/pids.max"), "8");
  writeFile(root() / "memory/ns/app/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n");
  EXPECT_EQ(cgroup.oomKills(), 5u);
  // Usage comes from each controller's files (fleetletd's metrics read the peak too).
  writeFile(root() / "memory/ns/app/memory.usage_in_bytes", "2048\n");
  writeFile(root() / "memory/ns/app/memory.max_usage_in_bytes", "8192\n");
  writeFile(root() / "cpuacct/ns/app/cpuacct.usage", "777\n");
  writeFile(root() / "pids/ns/app/pids.current", "2\n");
  CgroupStats s = cgroup.stats();
  EXPECT_EQ(s.memory_usage, 2048u);
  EXPECT_EQ(s.memory_max_usage, 8192u);
  EXPECT_EQ(s.memory_limit, 1048576u);
  EXPECT_EQ(s.cpu_usage_ns, 777u);
  EXPECT_EQ(s.pids_current, 2u);
  EXPECT_EQ(s.pids_limit, 8u);
  EXPECT_EQ(s.oom_kills, 5u);
}

TEST_F(ShimCgroupTest, AMissingCgroupIsNotFound) {
  Cgroup cgroup("ns/none", root(), true);
  auto pids = cgroup.pids();
  ASSERT_FALSE(pids);
  EXPECT_EQ(pids.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(cgroup.signalAll(0).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(cgroup.remove()) << "removing what is not there succeeds";
}

}  // namespace
}  // namespace fleetlet::shim
