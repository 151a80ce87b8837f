#include "registry/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::registry {
namespace {

using ::testing::HasSubstr;

TEST(ChallengeTest, DockerHubBearer) {
  auto c = parseChallenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*c)[0].param("service"), "registry.docker.io");
  EXPECT_EQ((*c)[0].param("scope"), "repository:library/busybox:pull");
  EXPECT_EQ((*c)[0].param("error"), std::nullopt);
}

TEST(ChallengeTest, CommasAndEscapesInQuotes) {
  auto c = parseChallenges(
      R"(Bearer realm="http://127.0.0.1:1/t?a=1,b=2", scope="repository:a/b:pull,push",error="say \"no\"")");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].param("realm"), "http://127.0.0.1:1/t?a=1,b=2");
  EXPECT_EQ((*c)[0].param("scope"), "repository:a/b:pull,push");
  EXPECT_EQ((*c)[0].param("error"), "say \"no\"");
}

TEST(ChallengeTest, CaseInsensitiveNamesTokensAndSpaces) {
  auto c = parseChallenges(R"(BASIC  Realm = "Registry Realm" , charset=UTF-8)");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "basic");
  EXPECT_EQ((*c)[0].param("realm"), "Registry Realm");
  EXPECT_EQ((*c)[0].param("charset"), "UTF-8");
}

TEST(ChallengeTest, MultipleChallenges) {
  auto c = parseChallenges(
      R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Negotiate abc==, Bearer)");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 4u);
  EXPECT_EQ((*c)[0].scheme, "newauth");
  EXPECT_EQ((*c)[0].params.size(), 3u);
  EXPECT_EQ((*c)[0].param("title"), "Login to \"apps\"");
  EXPECT_EQ((*c)[1].scheme, "basic");
  EXPECT_EQ((*c)[1].param("realm"), "simple");
  EXPECT_EQ((*c)[2].scheme, "negotiate");
  EXPECT_EQ((*c)[2].token68, "abc==");
  EXPECT_EQ((*c)[3].scheme, "bearer");
  EXPECT_TRUE((*c)[3].params.empty());
}

TEST(ChallengeTest, MalformedNamesTheProblem) {
  auto expect = [](std::string_view header, std::string_view text) {
    auto c = parseChallenges(header);
    ASSERT_FALSE(c) << header;
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(c.error().message(), HasSubstr(std::string(text))) << header;
  };
  expect("", "no challenge");
  expect("  ,, ", "no challenge");
  expect(R"(Bearer realm="unterminated)", "unterminated quoted string at byte");
  expect(R"(Bearer realm="x" service="y")", "expected ',' between parameters");
  expect(R"(="x")", "expected an auth scheme at byte 0");
  expect(R"(Bearer realm="x", ="y")", "expected an auth scheme");
}

TEST(BasicAuthTest, EncodesCredentials) {
  // printf 'fleet:s3cr3t!' | base64
  EXPECT_EQ(basicAuthorization("fleet", "s3cr3t!"), "Basic ZmxlZXQ6czNjcjN0IQ==");
  EXPECT_EQ(basicAuthorization("", ""), "Basic Og==");
}

}  // namespace
}  // namespace fleetlet::registry
