#include "retention/retention_policy.h"

#include <gtest/gtest.h>

namespace fleetlet::retention {
namespace {

Result<RetentionPolicy> parse(const std::string& text) {
  return parseRetentionPolicy(Json::parse(text), "metadata.retentionPolicy");
}

TEST(RetentionPolicyTest, ParsesEachPolicy) {
  EXPECT_EQ(parse(R"({"policy":"keepForever"})")->kind, PolicyKind::kKeepForever);
  auto time = parse(R"({"policy":"keepUntilTime","until":28499383002})");
  ASSERT_TRUE(time);
  EXPECT_EQ(time->until_micros, 28499383002LL * 1000000);
  auto rfc = parse(R"({"policy":"keepUntilTime","until":"2026-11-21T10:00:00.5+01:00"})");
  ASSERT_TRUE(rfc) << rfc.error().message();
  EXPECT_EQ(rfc->until_micros, 1795251600LL * 1000000 + 500000);  // 09:00:00.5Z
  auto next = parse(R"({"policy":"keepUntilNext","sourceApp":"camera"})");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->kind, PolicyKind::kKeepUntilNext);
  EXPECT_EQ(next->source_app, "camera");
  EXPECT_FALSE(next->semantics);
}

TEST(RetentionPolicyTest, RoundTripsThroughJson) {
  for (const char* text :
       {R"({"policy":"keepForever"})", R"({"policy":"keepUntilTime","until":28499383002})",
        R"({"policy":"keepUntilNext","semantics":"s","source":"n"})"}) {
    auto policy = parse(text);
    ASSERT_TRUE(policy);
    EXPECT_EQ(toJson(*policy), Json::parse(text));
  }
}

TEST(RetentionPolicyTest, RejectsBadPoliciesNamingTheField) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (Case c : {Case{R"({"policy":"keepSometimes"})", "unknown policy \"keepSometimes\""},
                 Case{R"({})", "metadata.retentionPolicy.policy"},
                 Case{R"({"policy":"keepUntilTime"})", "until: missing"},
                 Case{R"({"policy":"keepUntilTime","until":true})", "until: expected"},
                 Case{R"({"policy":"keepUntilTime","until":"tomorrow"})", "RFC 3339"},
                 Case{R"({"policy":"keepUntilTime","until":-5})", "plausible"},
                 Case{R"({"policy":"keepUntilNext","semantics":3})", "semantics"},
                 Case{R"([1])", "expected an object"}}) {
    auto policy = parse(c.text);
    ASSERT_FALSE(policy) << c.text;
    EXPECT_NE(policy.error().message().find(c.message), std::string::npos)
        << c.text << " → " << policy.error().message();
  }
}

TEST(RetentionPolicyTest, FractionalUntilIsRefusedFromClientsButReadFromTheIndex) {
  for (const char* text : {R"({"policy":"keepUntilTime","until":28499383002.5})",
                           R"({"policy":"keepUntilTime","until":1.7e9})"}) {
    auto policy = parse(text);
    ASSERT_FALSE(policy) << text;
    EXPECT_EQ(policy.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(policy.error().message().find("metadata.retentionPolicy.until"), std::string::npos)
        << policy.error().message();
    EXPECT_NE(policy.error().message().find("whole number"), std::string::npos)
        << policy.error().message();
  }
  // toJson writes an RFC 3339 time with a fraction as fractional seconds; the index reads it.
  auto rfc = parse(R"({"policy":"keepUntilTime","until":"2026-11-21T10:00:00.5+01:00"})");
  ASSERT_TRUE(rfc);
  auto stored = parseStoredRetentionPolicy(toJson(*rfc), "retentionPolicy");
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_EQ(stored->until_micros, rfc->until_micros);
}

TEST(RetentionPolicyTest, SupersedeKeyDefaultsToOwnSemanticsAndApp) {
  RetentionPolicy policy{.kind = PolicyKind::kKeepUntilNext};
  SupersedeKey key = supersedeKey(policy, "photos", "camera");
  EXPECT_EQ(key.semantics, "photos");
  EXPECT_EQ(key.source_app, "camera");
  EXPECT_FALSE(key.source);
  policy.semantics = "other";
  policy.source = "node-2";
  key = supersedeKey(policy, "photos", "camera");
  EXPECT_EQ(key.semantics, "other");
  EXPECT_EQ(key.source, "node-2");
}

}  // namespace
}  // namespace fleetlet::retention
