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

TEST(HttpDateTest, AcceptsTheObsoleteForms) {
  EXPECT_EQ(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT trailing"));
}

TEST(EtagTest, Matches) {
  EXPECT_TRUE(etagMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatches("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatches("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatches("*", "\"abc\""));
  EXPECT_FALSE(etagMatches("\"abcd\"", "\"abc\""));
}

TEST(EtagTest, StrongComparisonForIfMatch) {
  EXPECT_TRUE(etagMatchesStrong("\"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatchesStrong("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(etagMatchesStrong("*", "\"abc\""));
  EXPECT_FALSE(etagMatchesStrong("W/\"abc\"", "\"abc\""));
  EXPECT_FALSE(etagMatchesStrong("\"abcd\"", "\"abc\""));
}

// RFC 9110 §13.2.2 on a representation last modified at T.
TEST(PreconditionTest, EvaluatesInTheOrderOfRfc9110) {
  using Outcome = PreconditionResult::Outcome;
  const std::string etag = "\"abc\"";
  const int64_t t = 784111777;
  const std::string at = httpDate(t), before = httpDate(t - 1);
  auto eval = [&](const ConditionalHeaders& h, std::string_view method = "GET") {
    return evaluatePreconditions(method, h, etag, t);
  };
  EXPECT_EQ(eval({}).outcome, Outcome::kProceed);
  // If-Match: strong, "*", failing → 412.
  EXPECT_EQ(eval({.if_match = etag}).outcome, Outcome::kProceed);
  EXPECT_EQ(eval({.if_match = "*"}).outcome, Outcome::kProceed);
  auto weak = eval({.if_match = "W/" + etag});
  EXPECT_EQ(weak.outcome, Outcome::kFailed);
  EXPECT_EQ(weak.header, "If-Match");
  EXPECT_EQ(eval({.if_match = "\"other\""}).outcome, Outcome::kFailed);
  // If-Unmodified-Since: modified after the date → 412; ignored with If-Match or malformed.
  EXPECT_EQ(eval({.if_unmodified_since = at}).outcome, Outcome::kProceed);
  auto ius = eval({.if_unmodified_since = before});
  EXPECT_EQ(ius.outcome, Outcome::kFailed);
  EXPECT_EQ(ius.header, "If-Unmodified-Since");
  EXPECT_EQ(eval({.if_match = etag, .if_unmodified_since = before}).outcome, Outcome::kProceed);
  EXPECT_EQ(eval({.if_unmodified_since = "garbage"}).outcome, Outcome::kProceed);
  // A failed If-Match wins over a matching If-None-Match.
  EXPECT_EQ(eval({.if_match = "\"other\"", .if_none_match = etag}).outcome, Outcome::kFailed);
  // If-None-Match: weak comparison; 304 for GET/HEAD, 412 for other methods.
  EXPECT_EQ(eval({.if_none_match = "W/" + etag}).outcome, Outcome::kNotModified);
  EXPECT_EQ(eval({.if_none_match = etag}, "HEAD").outcome, Outcome::kNotModified);
  EXPECT_EQ(eval({.if_none_match = "*"}, "DELETE").outcome, Outcome::kFailed);
  EXPECT_EQ(eval({.if_none_match = "\"other\""}).outcome, Outcome::kProceed);
  // If-Modified-Since: only GET/HEAD, only without If-None-Match.
  EXPECT_EQ(eval({.if_modified_since = at}).outcome, Outcome::kNotModified);
  EXPECT_EQ(eval({.if_modified_since = before}).outcome, Outcome::kProceed);
  EXPECT_EQ(eval({.if_modified_since = at}, "DELETE").outcome, Outcome::kProceed);
  EXPECT_EQ(eval({.if_none_match = "\"other\"", .if_modified_since = at}).outcome,
            Outcome::kProceed);
  EXPECT_EQ(eval({.if_modified_since = "Sun, 32 Foo 1994"}).outcome, Outcome::kProceed);
}

TEST(ContentTypeTest, OnlyPassiveTypesAreServedInline) {
  for (const char* type : {"image/jpeg", "IMAGE/PNG", "image/webp; q=1", "video/mp4", "audio/ogg",
                           "font/woff2", "text/plain; charset=utf-8", "text/csv",
                           "application/json", "application/pdf", "application/octet-stream"}) {
    EXPECT_TRUE(passiveContentType(type)) << type;
  }
  for (const char* type : {"text/html",
                           "Text/HTML; charset=utf-8",
                           "application/xhtml+xml",
                           "image/svg+xml",
                           "IMAGE/SVG+XML; charset=utf-8",
                           "text/xml",
                           "application/xml",
                           "application/rss+xml",
                           "text/javascript",
                           "application/javascript",
                           "application/ecmascript",
                           "text/css",
                           "text/xsl",
                           "multipart/x-mixed-replace",
                           "application/x-shockwave-flash",
                           "",
                           "image/",
                           "image/x+xml",
                           "image",
                           "video/mp4/html"}) {
    EXPECT_FALSE(passiveContentType(type)) << type;
  }
}

}  // namespace
}  // namespace fleetlet::api
