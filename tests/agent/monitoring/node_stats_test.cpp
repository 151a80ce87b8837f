#include "monitoring/node_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace fleetlet::monitoring {
namespace {

TEST(NodeStats, ProcStatGivesSecondsPerModeAndTheCpuCount) {
  auto cpu = parseProcStat(
      "cpu  1000 20 300 40000 50 6 7 8 0 0\n"
      "cpu0 500 10 150 20000 25 3 3 4 0 0\n"
      "cpu1 500 10 150 20000 25 3 4 4 0 0\n"
      "intr 12345\nctxt 99\n",
      100);
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_EQ(cpu->cpus, 2);
  EXPECT_DOUBLE_EQ(cpu->seconds.at("user"), 10);
  EXPECT_DOUBLE_EQ(cpu->seconds.at("idle"), 400);
  EXPECT_DOUBLE_EQ(cpu->seconds.at("steal"), 0.08);
  EXPECT_DOUBLE_EQ(cpu->total(), (1000 + 20 + 300 + 40000 + 50 + 6 + 7 + 8) / 100.0);
}

TEST(NodeStats, MalformedProcStatIsRefusedNamingTheProblem) {
  auto none = parseProcStat("intr 1\n", 100);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("no cpu line"), std::string::npos);
  auto bad = parseProcStat("cpu 1 x 3 4\n", 100);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("\"x\" is not a number"), std::string::npos);
  EXPECT_FALSE(parseProcStat("cpu 1 2\n", 100));
}

TEST(NodeStats, MeminfoGivesTotalAndAvailableBytes) {
  auto m = parseMeminfo("MemTotal:       2048 kB\nMemFree: 10 kB\nMemAvailable:   1024 kB\n");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->total_bytes, 2048U * 1024);
  EXPECT_EQ(m->available_bytes, 1024U * 1024);
  EXPECT_FALSE(parseMeminfo("MemTotal: 1 kB\n"));
}

TEST(NodeStats, ProcessStatReadsPastANameWithSpacesAndParentheses) {
  auto p = parseProcessStat(
      "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 10\n",
      "2500 300 100 10 0 200 0\n", 100, 4096);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_DOUBLE_EQ(p->cpu_seconds, 3.0);
  EXPECT_EQ(p->resident_bytes, 300U * 4096);
  EXPECT_FALSE(parseProcessStat("42 (x S 1", "1 2", 100, 4096));
  EXPECT_FALSE(parseProcessStat("42 (x) S 1 2 3", "1 2", 100, 4096));
}

TEST(NodeStats, LiveFilesOfThisMachineParse) {
  auto cpu = readCpuTimes();
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_EQ(cpu->cpus, ::sysconf(_SC_NPROCESSORS_CONF));
  EXPECT_GT(cpu->total(), 0);
  auto mem = readMemoryInfo();
  ASSERT_TRUE(mem) << mem.error().message();
  EXPECT_GT(mem->total_bytes, mem->available_bytes);
  auto disk = readDiskInfo("/");
  ASSERT_TRUE(disk) << disk.error().message();
  EXPECT_GE(disk->total_bytes, disk->free_bytes);
  auto self = readSelf();
  ASSERT_TRUE(self) << self.error().message();
  EXPECT_GT(self->resident_bytes, 0U);
  auto missing = readDiskInfo("/nonexistent/dir");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fleetlet::monitoring
