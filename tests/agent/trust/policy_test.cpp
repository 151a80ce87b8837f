// The trust policy: which envelopes and manifests a node admits, and the binding checks
// (node, revision, expiry). Each refusal names its reason.
#include "trust/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "manifest/parse.h"
#include "test_keys.h"
#include "time/rfc3339.h"

namespace fleetlet::trust {
namespace {

using ::testing::HasSubstr;
using testing::manifestFor;
using testing::newKey;
using testing::sign;

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("trust-test");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
  }
  Policy load(std::vector<const PrivateKey*> keys, int threshold = 1, bool unsigned_local = false) {
    PolicyConfig config{
        .key_files = {}, .threshold = threshold, .allow_unsigned_local = unsigned_local};
    int i = 0;
    for (const auto* k : keys) {
      config.key_files.push_back(
          testing::writePublic(dir_->path(), fmt::format("k{}.pub", i++), *k));
    }
    auto policy = Policy::load(config);
    EXPECT_TRUE(policy.has_value()) << policy.error().message();
    return *policy;
  }

  std::unique_ptr<fleetlet::testing::TempDir> dir_;
  PrivateKey a_ = newKey();
  PrivateKey b_ = newKey();
  PrivateKey c_ = newKey();
};

TEST_F(PolicyTest, AdmitsAnEnvelopeSignedByAPinnedKey) {
  auto policy = load({&a_});
  auto text = serializeEnvelope(sign(manifestFor("n1", 1), {&a_}));
  auto admitted = policy.admit(text, Origin::kCloud);
  ASSERT_TRUE(admitted.has_value()) << admitted.error().message();
  EXPECT_EQ(admitted->manifest, manifestFor("n1", 1));
  EXPECT_TRUE(admitted->is_signed);
  EXPECT_EQ(admitted->key_ids, std::vector<std::string>{a_.publicKey().id()});
}

TEST_F(PolicyTest, TriesEveryKeyWhenTheKeyidIsEmpty) {
  auto policy = load({&b_, &a_});
  auto env = sign(manifestFor("n1", 1), {&a_});
  env.signatures[0].keyid.clear();
  EXPECT_TRUE(policy.admit(serializeEnvelope(env), Origin::kCloud).has_value());
}

TEST_F(PolicyTest, RefusesATamperedPayload) {
  auto policy = load({&a_});
  auto env = sign(manifestFor("n1", 1), {&a_});
  env.payload = manifestFor("n1", 2);  // the signature covers revision 1
  auto admitted = policy.admit(serializeEnvelope(env), Origin::kCloud);
  ASSERT_FALSE(admitted.has_value());
  EXPECT_EQ(admitted.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(admitted.error().message(),
              HasSubstr("signature: no valid signature by a trusted key"));
}

TEST_F(PolicyTest, RefusesATamperedPayloadType) {
  auto policy = load({&a_});
  auto env = sign(manifestFor("n1", 1), {&a_});
  env.payload_type = kPayloadTypeJson;  // PAE binds the type too
  auto admitted = policy.admit(serializeEnvelope(env), Origin::kCloud);
  ASSERT_FALSE(admitted.has_value());
  EXPECT_THAT(admitted.error().message(), HasSubstr("no valid signature"));
}

TEST_F(PolicyTest, RefusesAWrongKey) {
  auto policy = load({&a_});
  auto admitted =
      policy.admit(serializeEnvelope(sign(manifestFor("n1", 1), {&b_})), Origin::kCloud);
  ASSERT_FALSE(admitted.has_value());
  EXPECT_THAT(admitted.error().message(),
              HasSubstr("no valid signature by a trusted key (envelope keyids: " +
                        b_.publicKey().id().substr(0, 16)));
}

TEST_F(PolicyTest, RefusesAnUnknownPayloadType) {
  auto policy = load({&a_});
  auto admitted = policy.admit(
      serializeEnvelope(sign(manifestFor("n1", 1), {&a_}, "application/vnd.in-toto+json")),
      Origin::kCloud);
  ASSERT_FALSE(admitted.has_value());
  EXPECT_THAT(admitted.error().message(), HasSubstr("unsupported payloadType"));
}

TEST_F(PolicyTest, CountsDistinctKeysTowardsTheThreshold) {
  auto policy = load({&a_, &b_, &c_}, 2);
  auto one = sign(manifestFor("n1", 1), {&a_});
  auto admitted = policy.admit(serializeEnvelope(one), Origin::kCloud);
  ASSERT_FALSE(admitted.has_value());
  EXPECT_THAT(admitted.error().message(), HasSubstr("1 of the 2 required trusted keys signed"));
  // The same key twice is still one key.
  auto twice = sign(manifestFor("n1", 1), {&a_, &a_});
  EXPECT_FALSE(policy.admit(serializeEnvelope(twice), Origin::kCloud).has_value());
  auto two = sign(manifestFor("n1", 1), {&a_, &c_});
  auto ok = policy.admit(serializeEnvelope(two), Origin::kCloud);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->key_ids.size(), 2U);
}

TEST_F(PolicyTest, ThresholdAboveTheKeysIsAConfigError) {
  PolicyConfig config{.key_files = {testing::writePublic(dir_->path(), "a.pub", a_)},
                      .threshold = 2,
                      .allow_unsigned_local = false};
  auto policy = Policy::load(config);
  ASSERT_FALSE(policy.has_value());
  EXPECT_THAT(policy.error().message(), HasSubstr("trust.threshold: 2 is more than the 1"));
}

TEST_F(PolicyTest, UnsignedManifests) {
  const auto text = manifestFor("n1", 1);
  // From the cloud: never, even without keys.
  auto none = Policy();
  auto cloud = none.admit(text, Origin::kCloud);
  ASSERT_FALSE(cloud.has_value());
  EXPECT_THAT(cloud.error().message(),
              HasSubstr("unsigned manifest refused: the cloud must serve"));
  // Locally without keys: as before signing existed.
  auto local = none.admit(text, Origin::kLocal);
  ASSERT_TRUE(local.has_value());
  EXPECT_FALSE(local->is_signed);
  // With keys: only when allowed.
  auto strict = load({&a_});
  auto refused = strict.admit(text, Origin::kLocal);
  ASSERT_FALSE(refused.has_value());
  EXPECT_THAT(refused.error().message(), HasSubstr("trust.allowUnsigned: local"));
  EXPECT_TRUE(load({&a_}, 1, true).admit(text, Origin::kLocal).has_value());
  // An envelope without keys cannot be verified.
  auto unverifiable = none.admit(serializeEnvelope(sign(text, {&a_})), Origin::kLocal);
  ASSERT_FALSE(unverifiable.has_value());
  EXPECT_THAT(unverifiable.error().message(), HasSubstr("trusts no keys"));
}

TEST_F(PolicyTest, TruncatedAndHtmlBodiesAreRefused) {
  auto policy = load({&a_});
  auto text = serializeEnvelope(sign(manifestFor("n1", 1), {&a_}));
  auto truncated = policy.admit(text.substr(0, text.size() / 2), Origin::kCloud);
  ASSERT_FALSE(truncated.has_value());
  EXPECT_THAT(truncated.error().message(), HasSubstr("envelope: not JSON"));
  auto html = policy.admit("<html><body>Service Unavailable</body></html>", Origin::kCloud);
  ASSERT_FALSE(html.has_value());
  EXPECT_THAT(html.error().message(), HasSubstr("unsigned manifest refused"));
  EXPECT_THAT(html.error().message(), HasSubstr("<html>"));
}

manifest::NodeState parsed(const std::string& text) {
  auto state = manifest::parseNodeState(text);
  EXPECT_TRUE(state.has_value()) << state.error().message();
  return *state;
}

TEST(Binding, RefusesAnotherNodesManifest) {
  auto now = std::chrono::system_clock::now();
  auto st = checkBinding(parsed(manifestFor("n2", 5)), "n1", true, 0, now);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "node: manifest is for node \"n2\", this node is \"n1\"");
  EXPECT_TRUE(checkBinding(parsed(manifestFor("n1", 5)), "n1", true, 0, now).has_value());
}

TEST(Binding, ASignedManifestMustNameItsNode) {
  auto text = std::string("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps: {}\n");
  auto now = std::chrono::system_clock::now();
  auto st = checkBinding(parsed(text), "n1", true, 0, now);
  ASSERT_FALSE(st.has_value());
  EXPECT_THAT(st.error().message(), HasSubstr("must name the node"));
  EXPECT_TRUE(checkBinding(parsed(text), "n1", false, 0, now).has_value());
}

TEST(Binding, RefusesAnOlderOrEqualRevision) {
  auto now = std::chrono::system_clock::now();
  auto st = checkBinding(parsed(manifestFor("n1", 5)), "n1", true, 5, now);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "revision 5 is not newer than the accepted revision 5");
  EXPECT_FALSE(checkBinding(parsed(manifestFor("n1", 4)), "n1", true, 5, now).has_value());
  EXPECT_TRUE(checkBinding(parsed(manifestFor("n1", 6)), "n1", true, 5, now).has_value());
}

TEST(Binding, RefusesAnExpiredManifest) {
  auto state = parsed(manifestFor("n1", 5, "expires: \"2026-12-01T10:00:00Z\"\n"));
  auto expiry = parseRfc3339("2026-12-01T10:00:00Z");
  ASSERT_TRUE(expiry.has_value());
  auto st = checkBinding(state, "n1", true, 0, *expiry);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "expires: manifest expired at 2026-12-01T10:00:00Z");
  EXPECT_TRUE(checkBinding(state, "n1", true, 0, *expiry - std::chrono::seconds(1)).has_value());
}

}  // namespace
}  // namespace fleetlet::trust
