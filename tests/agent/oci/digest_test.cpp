#include "oci/digest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::oci {
namespace {

using ::testing::HasSubstr;

// Expected values computed outside this code base with sha256sum, e.g.
//   printf 'sha256:ca97...48bb sha256:3e23...009d' | sha256sum
constexpr std::string_view kA =
    "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";  // "a"
constexpr std::string_view kB =
    "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";  // "b"
constexpr std::string_view kC =
    "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";  // "c"
constexpr std::string_view kChainAB =
    "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676";
constexpr std::string_view kChainABC =
    "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106";

TEST(DigestTest, DigestOfAndVerify) {
  EXPECT_EQ(digestOf("a"), kA);
  EXPECT_TRUE(verify("a", kA));
  auto bad = verify("b", kA);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("digest mismatch: expected " + std::string(kA)));
  EXPECT_THAT(bad.error().message(), HasSubstr(std::string(kB)));
}

TEST(DigestTest, ValidateNamesTheProblem) {
  EXPECT_TRUE(validateDigest(kA));
  EXPECT_THAT(validateDigest("sha256:abc").error().message(), HasSubstr("64 hex digits, got 3"));
  EXPECT_THAT(validateDigest("sha512:abc").error().message(),
              HasSubstr("unsupported digest algorithm \"sha512\""));
  EXPECT_THAT(validateDigest("abc").error().message(), HasSubstr("expected sha256:<64 hex>"));
  EXPECT_THAT(validateDigest(":abc").error().message(), HasSubstr("expected sha256:<64 hex>"));
  std::string upper(kA);
  upper[10] = 'A';
  EXPECT_THAT(validateDigest(upper).error().message(), HasSubstr("lowercase hex"));
}

TEST(DigestTest, StreamingVerifierChecksSizeAndDigest) {
  auto v = DigestVerifier::create(kA, 1);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->update("a"));
  EXPECT_TRUE(v->finish());

  auto chunks = DigestVerifier::create(digestOf("hello world"), 11);
  ASSERT_TRUE(chunks);
  ASSERT_TRUE(chunks->update("hello"));
  ASSERT_TRUE(chunks->update(" world"));
  EXPECT_EQ(chunks->bytesSeen(), 11u);
  EXPECT_TRUE(chunks->finish());

  auto too_long = DigestVerifier::create(kA, 1);
  ASSERT_TRUE(too_long);
  auto grown = too_long->update("ab");
  ASSERT_FALSE(grown);
  EXPECT_THAT(grown.error().message(), HasSubstr("more than the expected 1 bytes"));

  auto too_short = DigestVerifier::create(kA, 2);
  ASSERT_TRUE(too_short);
  ASSERT_TRUE(too_short->update("a"));
  EXPECT_THAT(too_short->finish().error().message(), HasSubstr("expected 2 bytes, got 1"));

  auto wrong = DigestVerifier::create(kA, std::nullopt);
  ASSERT_TRUE(wrong);
  ASSERT_TRUE(wrong->update("b"));
  EXPECT_THAT(wrong->finish().error().message(), HasSubstr("digest mismatch"));

  EXPECT_FALSE(DigestVerifier::create("sha256:nope", 1));
}

TEST(ChainIdTest, MatchesIndependentlyComputedValues) {
  auto none = chainIds({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto one = chainIds({std::string(kA)});
  ASSERT_TRUE(one);
  EXPECT_EQ(*one, std::vector<std::string>{std::string(kA)});

  auto three = chainIds({std::string(kA), std::string(kB), std::string(kC)});
  ASSERT_TRUE(three);
  EXPECT_EQ(*three, (std::vector<std::string>{std::string(kA), std::string(kChainAB),
                                              std::string(kChainABC)}));
}

TEST(ChainIdTest, RefusesMalformedDiffId) {
  auto bad = chainIds({std::string(kA), "sha256:xyz"});
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("diff_ids[1]"));
}

}  // namespace
}  // namespace fleetlet::oci
