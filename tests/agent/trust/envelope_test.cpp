// DSSE envelope parsing, PAE, base64 and Ed25519 keys (agent/src/trust).
#include "trust/envelope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_keys.h"
#include "trust/base64.h"

namespace fleetlet::trust {
namespace {

using ::testing::HasSubstr;

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    auto encoded = base64Encode(bytes);
    auto decoded = base64Decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(i * 37 + 200);
  }
  EXPECT_EQ(base64Encode("hello"), "aGVsbG8=");
}

TEST(Base64, AcceptsUrlSafeAndUnpadded) {
  EXPECT_EQ(base64Decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64Decode("-_8"), base64Decode("+/8="));
}

TEST(Base64, RefusesGarbage) {
  EXPECT_FALSE(base64Decode("aGVs bG8=").has_value());
  EXPECT_FALSE(base64Decode("a").has_value());
  EXPECT_FALSE(base64Decode("aGVsbG8==").has_value());
  EXPECT_FALSE(base64Decode("aGVsbG9=").has_value());  // non-zero unused bits
  EXPECT_FALSE(base64Decode("<html>").has_value());
}

TEST(Pae, MatchesTheDsseSpec) {
  // The example of the DSSE protocol document.
  EXPECT_EQ(pae("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  EXPECT_EQ(pae("", ""), "DSSEv1 0  0 ");
}

TEST(Envelope, ParsesWhatSerializeWrites) {
  Envelope env{.payload_type = std::string(kPayloadTypeJson),
               .payload = "{\"a\":1}",
               .signatures = {{.keyid = "ab", .sig = std::string(64, 'x')}}};
  auto text = serializeEnvelope(env);
  EXPECT_TRUE(looksLikeEnvelope(text));
  auto parsed = parseEnvelope(text);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->payload_type, env.payload_type);
  EXPECT_EQ(parsed->payload, env.payload);
  ASSERT_EQ(parsed->signatures.size(), 1U);
  EXPECT_EQ(parsed->signatures[0].keyid, "ab");
  EXPECT_EQ(parsed->signatures[0].sig, std::string(64, 'x'));
}

TEST(Envelope, RefusalsNameTheProblem) {
  struct Case {
    std::string text;
    std::string reason;
  };
  const Case cases[] = {
      {"<html><body>502 Bad Gateway</body></html>", "envelope: not JSON"},
      {"{\"payloadType\": \"x\", \"payload\": \"aGk=\", \"signatures\": [{\"sig\": \"aGk=\"}]",
       "envelope: not JSON"},  // truncated
      {"[]", "envelope: expected a JSON object, got array"},
      {R"({"payload":"aGk=","signatures":[{"sig":"aGk="}]})", "payloadType: required"},
      {R"({"payloadType":"t","payload":"**","signatures":[{"sig":"aGk="}]})",
       "payload: not base64"},
      {R"({"payloadType":"t","payload":"aGk=","signatures":[]})", "signatures: none"},
      {R"({"payloadType":"t","payload":"aGk="})", "signatures: required"},
      {R"({"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k"}]})",
       "signatures[0].sig: required"},
      {R"({"payloadType":"t","payload":"aGk=","signatures":[1]})",
       "signatures[0]: expected an object"},
      {R"({"payloadType":"t","payload":"aGk=","signatures":[{"sig":"aGk="}],"x":1})",
       "unknown field \"x\""},
      {R"({"payloadType":1,"payload":"aGk=","signatures":[{"sig":"aGk="}]})",
       "payloadType: expected a string, got number"},
  };
  for (const auto& c : cases) {
    auto parsed = parseEnvelope(c.text);
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(parsed.error().message(), HasSubstr(c.reason)) << c.text;
  }
}

TEST(Envelope, RefusesOversizeBeforeParsing) {
  std::string big(kMaxEnvelopeBytes + 1, ' ');
  auto parsed = parseEnvelope(big);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_THAT(parsed.error().message(), HasSubstr("is more than"));
}

TEST(Envelope, TellsEnvelopesFromManifests) {
  EXPECT_TRUE(looksLikeEnvelope("  {\n \"payloadType\": 1}"));
  EXPECT_TRUE(looksLikeEnvelope("{\"signatures\":[]}"));
  EXPECT_FALSE(looksLikeEnvelope("{\"apiVersion\": \"fleetlet.io/v1\"}"));
  EXPECT_FALSE(looksLikeEnvelope("apiVersion: fleetlet.io/v1\n"));
  EXPECT_FALSE(looksLikeEnvelope(""));
}

TEST(Ed25519, SignsAndVerifiesAndRefusesOthers) {
  auto key = testing::newKey();
  auto other = testing::newKey();
  auto sig = key.sign("message");
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(sig->size(), 64U);
  EXPECT_TRUE(key.publicKey().verify("message", *sig));
  EXPECT_FALSE(key.publicKey().verify("messagE", *sig));
  EXPECT_FALSE(other.publicKey().verify("message", *sig));
  EXPECT_FALSE(key.publicKey().verify("message", sig->substr(0, 63)));
  EXPECT_NE(key.publicKey().id(), other.publicKey().id());
  EXPECT_EQ(key.publicKey().id().size(), 64U);
}

TEST(Ed25519, KeysRoundTripThroughPem) {
  auto key = testing::newKey();
  auto priv = PrivateKey::fromPem(key.pem(), "k");
  ASSERT_TRUE(priv.has_value()) << priv.error().message();
  auto pub = PublicKey::fromPem(key.publicKey().pem(), "k.pub");
  ASSERT_TRUE(pub.has_value()) << pub.error().message();
  EXPECT_EQ(pub->id(), key.publicKey().id());
  EXPECT_EQ(priv->publicKey().id(), key.publicKey().id());
  // A private key file can stand for its public key.
  auto from_private = PublicKey::fromPem(key.pem(), "k");
  ASSERT_TRUE(from_private.has_value());
  EXPECT_EQ(from_private->id(), key.publicKey().id());
}

TEST(Ed25519, RefusesOtherKeyKindsAndGarbage) {
  auto bad = PublicKey::fromPem("not a key", "keys/x.pem");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("keys/x.pem: not an Ed25519 PEM key"));
  // An EC P-256 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256).
  const char* ec =
      "-----BEGIN PUBLIC KEY-----\n"
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ9DfMsWDrVCaSlVPQfgq1CVwB3cb\n"
      "Mla7uMmFzYxu1RPx0W2Jh8HYmqh3+JHA9F4WrR1q6vJrDXH2mpcGNxJUXA==\n"
      "-----END PUBLIC KEY-----\n";
  auto wrong = PublicKey::fromPem(ec, "ec.pem");
  if (!wrong) {
    EXPECT_THAT(wrong.error().message(), HasSubstr("ec.pem: not an"));
  } else {
    ADD_FAILURE() << "an EC key was accepted";
  }
  auto missing = PublicKey::load("/nonexistent/key.pem");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fleetlet::trust
