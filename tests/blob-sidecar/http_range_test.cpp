#include "api/http_range.h"

#include <gtest/gtest.h>

namespace fleetlet::api {
namespace {

std::optional<ByteRange> ok(std::optional<std::string_view> header, uint64_t size) {
  auto r = parseRange(header, size);
  EXPECT_TRUE(r) << (header ? *header : "none");
  return r ? *r : std::nullopt;
}

TEST(RangeTest, ResolvesTheForms) {
  EXPECT_FALSE(ok(std::nullopt, 100));
  auto a = ok("bytes=0-9", 100);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, 0u);
  EXPECT_EQ(a->last, 9u);
  auto open = ok("bytes=90-", 100);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->length(), 10u);
  auto clamped = ok("bytes=90-1000", 100);
  ASSERT_TRUE(clamped);
  EXPECT_EQ(clamped->last, 99u);
  auto suffix = ok("bytes=-30", 100);
  ASSERT_TRUE(suffix);
  EXPECT_EQ(suffix->first, 70u);
  auto big_suffix = ok("bytes=-300", 100);
  ASSERT_TRUE(big_suffix);
  EXPECT_EQ(big_suffix->first, 0u);
}

TEST(RangeTest, IgnoresWhatItDoesNotServe) {
  EXPECT_FALSE(ok("items=0-1", 100));
  EXPECT_FALSE(ok("bytes=0-1,5-6", 100));
  EXPECT_FALSE(ok("bytes=x-1", 100));
  EXPECT_FALSE(ok("bytes=5-1", 100));
}

TEST(RangeTest, UnsatisfiableRanges) {
  EXPECT_FALSE(parseRange("bytes=100-", 100));
  EXPECT_FALSE(parseRange("bytes=-0", 100));
  EXPECT_FALSE(parseRange("bytes=0-", 0));
}

TEST(HttpDateTest, RoundTrips) {
  EXPECT_EQ(httpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_FALSE(parseHttpDate("yesterday"));
}

TEST(EtagTest, Matches) {
  EXPECT_TRUE(etagMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatches("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatches("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatches("*", "\"abc\""));
  EXPECT_FALSE(etagMatches("\"abcd\"", "\"abc\""));
}

}  // namespace
}  // namespace fleetlet::api
