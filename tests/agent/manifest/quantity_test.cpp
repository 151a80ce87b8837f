#include "manifest/quantity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "manifest/parse.h"

namespace fleetlet::manifest {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(QuantityTest, ParsesBytesWithSuffixes) {
  EXPECT_EQ(parseQuantity("64Mi"), 64 * 1024 * 1024);
  EXPECT_EQ(parseQuantity("1Gi"), 1024LL * 1024 * 1024);
  EXPECT_EQ(parseQuantity("1G"), 1000LL * 1000 * 1000);
  EXPECT_EQ(parseQuantity("512"), 512);
  EXPECT_EQ(parseQuantity("1k"), 1000);
  EXPECT_EQ(parseQuantity("2Ki"), 2048);
  EXPECT_EQ(parseQuantity("1Ti"), 1LL << 40);
  EXPECT_EQ(parseQuantity("0"), 0);
  EXPECT_EQ(parseQuantity("7Ei"), 7LL << 60);
}

TEST(QuantityTest, FractionsMustBeWholeBytes) {
  EXPECT_EQ(parseQuantity("0.5Gi"), 512LL * 1024 * 1024);
  EXPECT_EQ(parseQuantity("1.5Ki"), 1536);
  EXPECT_EQ(parseQuantity("1.5k"), 1500);
  auto third = parseQuantity("0.3");
  ASSERT_FALSE(third);
  EXPECT_THAT(third.error().message(), HasSubstr("\"0.3\" is not a whole number of bytes"));
  EXPECT_FALSE(parseQuantity("0.0001k"));
}

TEST(QuantityTest, RejectsMalformed) {
  for (std::string_view bad : {"64Q", "", "Mi", "-1", "1.", ".5", "1e3", "64 Mi", "64mi", "1K",
                               "0x10", "64Mib", " 64Mi", "1,5Gi", "+1"}) {
    SCOPED_TRACE(bad);
    auto q = parseQuantity(bad);
    ASSERT_FALSE(q);
    EXPECT_EQ(q.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(q.error().message(), HasSubstr("is not a quantity"));
  }
}

TEST(QuantityTest, RejectsOverflow) {
  for (std::string_view big :
       {"8Ei", "9223372036854775808", "999999999999999999E", "9999999999999999999"}) {
    SCOPED_TRACE(big);
    EXPECT_FALSE(parseQuantity(big));
  }
  EXPECT_EQ(parseQuantity("9223372036854775807"), std::numeric_limits<int64_t>::max());
}

TEST(CpuTest, ParsesCoresAndMillicores) {
  EXPECT_EQ(parseCpu("0.5"), 0.5);
  EXPECT_EQ(parseCpu("500m"), 0.5);
  EXPECT_EQ(parseCpu("2"), 2.0);
  EXPECT_EQ(parseCpu("0.001"), 0.001);
  EXPECT_EQ(parseCpu("1.250"), 1.25);
  EXPECT_EQ(parseCpu("1.2500000"), 1.25);
  EXPECT_EQ(parseCpu("1500m"), 1.5);
}

TEST(CpuTest, RejectsMalformedAndTooFine) {
  for (std::string_view bad : {"", "abc", "-1", "m", "1.5m", "0.5 ", "1e2", ".5", "2cores"}) {
    SCOPED_TRACE(bad);
    auto c = parseCpu(bad);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  }
  auto fine = parseCpu("0.0005");
  ASSERT_FALSE(fine);
  EXPECT_THAT(fine.error().message(), HasSubstr("finer than 1m"));
}

TEST(DurationTest, ParsesUnits) {
  EXPECT_EQ(parseDuration("10s"), 10s);
  EXPECT_EQ(parseDuration("250ms"), 250ms);
  EXPECT_EQ(parseDuration("1m30s"), 90s);
  EXPECT_EQ(parseDuration("2h"), 2h);
  EXPECT_EQ(parseDuration("1h2m3s4ms"), 1h + 2min + 3s + 4ms);
  EXPECT_EQ(parseDuration("0"), 0ms);
  EXPECT_EQ(parseDuration("0s"), 0ms);
  EXPECT_EQ(parseDuration("90m"), 90min);
}

TEST(DurationTest, RejectsMalformed) {
  for (std::string_view bad : {"10", "", "s", "1d", "1.5s", "-1s", "10S", "1m 30s", "ms", "1sm",
                               "10 s", "1h-1m", "9999999999999999h", "00"}) {
    SCOPED_TRACE(bad);
    auto d = parseDuration(bad);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_THAT(parseDuration("10").error().message(), HasSubstr("\"10\" is not a duration"));
}

TEST(DurationTest, FormatsShortestAndRoundTrips) {
  EXPECT_EQ(formatDuration(90s), "1m30s");
  EXPECT_EQ(formatDuration(1500ms), "1s500ms");
  EXPECT_EQ(formatDuration(0ms), "0s");
  EXPECT_EQ(formatDuration(2h), "2h");
  EXPECT_EQ(formatDuration(250ms), "250ms");
  for (auto d : {1ms, 999ms, 1000ms, 61000ms, 3600001ms, 86400000ms}) {
    EXPECT_EQ(parseDuration(formatDuration(d)), d);
  }
}

}  // namespace
}  // namespace fleetlet::manifest
