#include "http/router.h"

#include <gtest/gtest.h>

namespace fleetlet::http {
namespace {

std::vector<std::string> segments(std::string_view path) { return splitPath(path).value(); }

TEST(PercentDecode, DecodesEscapesAndPlus) {
  EXPECT_EQ(percentDecode("a%20b+c", true).value(), "a b c");
  EXPECT_EQ(percentDecode("a%2Fb+c", false).value(), "a/b+c");
}

TEST(PercentDecode, RejectsBadEscapes) {
  EXPECT_EQ(percentDecode("abc%2", false).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(percentDecode("abc%zz", false).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(percentDecode("%", false).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ParseQuery, KeepsOrderBareKeysAndDecodes) {
  auto params = parseQuery("semantics=a%2Fb&limit=10&metadata-h1&&x=").value();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0], (std::pair<std::string, std::string>{"semantics", "a/b"}));
  EXPECT_EQ(params[1], (std::pair<std::string, std::string>{"limit", "10"}));
  EXPECT_EQ(params[2], (std::pair<std::string, std::string>{"metadata-h1", ""}));
  EXPECT_EQ(params[3], (std::pair<std::string, std::string>{"x", ""}));
}

TEST(SplitPath, DecodesSegmentsAfterSplitting) {
  EXPECT_EQ(segments("/a/b%2Fc"), (std::vector<std::string>{"a", "b/c"}));
  EXPECT_TRUE(segments("/").empty());
  EXPECT_FALSE(splitPath("relative").has_value());
}

TEST(Router, MatchesLiteralsParamsAndRest) {
  Router router;
  ASSERT_EQ(router.add("GET", "/api/v1/blobs/{handle}").value(), 0u);
  ASSERT_EQ(router.add("GET", "/api/v1/blobs/{handle}/metadata").value(), 1u);
  ASSERT_EQ(router.add("GET", "/api/v1/blobs/special").value(), 2u);
  ASSERT_EQ(router.add("GET", "/static/{rest...}").value(), 3u);
  ASSERT_EQ(router.add("POST", "/api/v1/blobs").value(), 4u);

  auto m = router.find("GET", segments("/api/v1/blobs/h1"));
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.route, 0u);
  EXPECT_EQ(m.params, (ParamList{{"handle", "h1"}}));

  m = router.find("GET", segments("/api/v1/blobs/h1/metadata"));
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.route, 1u);

  m = router.find("GET", segments("/api/v1/blobs/special"));
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.route, 2u);

  m = router.find("GET", segments("/static/js/app.js"));
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.params, (ParamList{{"rest", "js/app.js"}}));

  m = router.find("DELETE", segments("/api/v1/blobs"));
  EXPECT_FALSE(m.found);
  EXPECT_EQ(m.allowed_methods, (std::vector<std::string>{"POST"}));

  m = router.find("GET", segments("/nothing"));
  EXPECT_FALSE(m.found);
  EXPECT_TRUE(m.allowed_methods.empty());
}

TEST(Router, RejectsMalformedPatterns) {
  Router router;
  EXPECT_EQ(router.add("GET", "nope").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(router.add("GET", "/a/{x").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(router.add("GET", "/a/{}").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(router.add("GET", "/a/{x...}/b").error().code(), ErrorCode::kInvalidArgument);
}

TEST(Router, RootPath) {
  Router router;
  ASSERT_TRUE(router.add("GET", "/").has_value());
  EXPECT_TRUE(router.find("GET", segments("/")).found);
  EXPECT_FALSE(router.find("GET", segments("/x")).found);
}

}  // namespace
}  // namespace fleetlet::http
