#include "metrics/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "metrics/instruments.h"

namespace fleetlet::metrics {
namespace {

TEST(Exposition, FamilyWritesHelpTypeAndSamples) {
  TextWriter w;
  ASSERT_TRUE(w.family("fleetlet_app_memory_bytes", Type::kGauge, "Memory in use."));
  w.sample({{"app", "camera"}}, 16777216);
  w.sample({{"app", "plc"}}, 0.5);
  EXPECT_EQ(w.text(),
            "# HELP fleetlet_app_memory_bytes Memory in use.\n"
            "# TYPE fleetlet_app_memory_bytes gauge\n"
            "fleetlet_app_memory_bytes{app=\"camera\"} 16777216\n"
            "fleetlet_app_memory_bytes{app=\"plc\"} 0.5\n");
  EXPECT_EQ(w.dropped(), 0U);
}

TEST(Exposition, LabelValuesAndHelpAreEscaped) {
  TextWriter w;
  ASSERT_TRUE(w.family("x_total", Type::kCounter, "a \\ b\nc \"q\""));
  w.sample({{"reason", "say \"hi\"\\\n"}}, 1);
  EXPECT_EQ(w.text(),
            "# HELP x_total a \\\\ b\\nc \"q\"\n"
            "# TYPE x_total counter\n"
            "x_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
}

TEST(Exposition, InvalidNamesAndRepeatedFamiliesAreDropped) {
  TextWriter w;
  EXPECT_FALSE(w.family("9starts_with_digit", Type::kGauge, "x"));
  w.sample({}, 1);  // no open family: dropped
  EXPECT_FALSE(w.family("has-dash", Type::kGauge, "x"));
  ASSERT_TRUE(w.family("ok", Type::kGauge, "x"));
  w.sample({{"bad-label", "v"}}, 1);
  w.sample({{"__reserved", "v"}}, 1);
  w.sample({{"good", "v"}}, 2);
  EXPECT_FALSE(w.family("ok", Type::kGauge, "again"));
  w.sample({}, 3);
  EXPECT_EQ(w.text(), "# HELP ok x\n# TYPE ok gauge\nok{good=\"v\"} 2\n");
  EXPECT_EQ(w.dropped(), 7U);
}

TEST(Exposition, ValuesFollowTheFormat) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(-3), "-3");
  EXPECT_EQ(formatValue(1e15), "1000000000000000");
  EXPECT_EQ(formatValue(0.005), "0.005");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatValue(std::nan("")), "NaN");
  EXPECT_TRUE(validMetricName("a:b_c9"));
  EXPECT_FALSE(validMetricName(""));
  EXPECT_FALSE(validLabelName("a:b"));
}

TEST(Instruments, CounterVecCountsPerLabelSetAndIgnoresBadCalls) {
  CounterVec c("fleetlet_pulls_total", "Pulls.", {"result"});
  c.touch({"error"});
  c.inc({"ok"});
  c.inc({"ok"}, 2);
  c.inc({"ok"}, -5);       // negative: ignored
  c.inc({"ok", "extra"});  // wrong arity: ignored
  EXPECT_EQ(c.value({"ok"}), 3);
  TextWriter w;
  c.write(w);
  EXPECT_EQ(w.text(),
            "# HELP fleetlet_pulls_total Pulls.\n# TYPE fleetlet_pulls_total counter\n"
            "fleetlet_pulls_total{result=\"error\"} 0\nfleetlet_pulls_total{result=\"ok\"} 3\n");
}

TEST(Instruments, UnlabelledCounterShowsZeroBeforeItsFirstCount) {
  CounterVec c("x_total", "X.");
  TextWriter w;
  c.write(w);
  EXPECT_EQ(w.text(), "# HELP x_total X.\n# TYPE x_total counter\nx_total 0\n");
}

TEST(Instruments, HistogramBucketsAreCumulative) {
  Histogram h("d_seconds", "D.", {0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // a bound is inclusive (le)
  h.observe(0.5);
  h.observe(7);
  TextWriter w;
  h.write(w);
  EXPECT_EQ(w.text(),
            "# HELP d_seconds D.\n# TYPE d_seconds histogram\n"
            "d_seconds_bucket{le=\"0.1\"} 2\nd_seconds_bucket{le=\"1\"} 3\n"
            "d_seconds_bucket{le=\"+Inf\"} 4\nd_seconds_sum 7.65\nd_seconds_count 4\n");
}

TEST(Instruments, ConcurrentIncrementsAreAllCounted) {
  CounterVec c("x_total", "X.", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.inc({"a"});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value({"a"}), 40000);
}

}  // namespace
}  // namespace fleetlet::metrics
