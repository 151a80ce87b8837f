#include "oci/platform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oci/manifest.h"
#include "oci/media_types.h"

namespace fleetlet::oci {
namespace {

using ::testing::HasSubstr;

Platform P(std::string os, std::string arch, std::string variant = "") {
  return Platform{std::move(os), std::move(arch), std::move(variant), "", {}};
}

TEST(PlatformTest, Normalizes) {
  EXPECT_EQ(normalize(P("Linux", "x86_64")).toString(), "linux/amd64");
  EXPECT_EQ(normalize(P("linux", "aarch64")).toString(), "linux/arm64");
  EXPECT_EQ(normalize(P("linux", "arm64", "v8")).toString(), "linux/arm64");
  EXPECT_EQ(normalize(P("linux", "armhf")).toString(), "linux/arm/v7");
  EXPECT_EQ(normalize(P("linux", "armel")).toString(), "linux/arm/v6");
  EXPECT_EQ(normalize(P("linux", "armv7l")).toString(), "linux/arm/v7");
  EXPECT_EQ(normalize(P("linux", "armv6l")).toString(), "linux/arm/v6");
  EXPECT_EQ(normalize(P("linux", "arm")).toString(), "linux/arm/v7");
  EXPECT_EQ(normalize(P("linux", "arm", "6")).toString(), "linux/arm/v6");
  EXPECT_EQ(normalize(P("linux", "i686")).toString(), "linux/386");
  EXPECT_EQ(normalize(P("linux", "riscv64")).toString(), "linux/riscv64");
}

TEST(PlatformTest, HostIsNormalised) {
  Platform host = hostPlatform();
  EXPECT_EQ(host.os, "linux");
  EXPECT_EQ(normalize(host), host);
#if defined(__x86_64__)
  EXPECT_EQ(host.toString(), "linux/amd64");
#endif
}

TEST(PlatformTest, Matching) {
  EXPECT_TRUE(platformMatches(P("linux", "amd64"), P("linux", "x86_64")));
  EXPECT_FALSE(platformMatches(P("linux", "arm64"), P("linux", "amd64")));
  EXPECT_FALSE(platformMatches(P("windows", "amd64"), P("linux", "amd64")));
  EXPECT_TRUE(platformMatches(P("linux", "arm", "v6"), P("linux", "arm", "v7")));
  EXPECT_FALSE(platformMatches(P("linux", "arm", "v7"), P("linux", "arm", "v6")));
  EXPECT_GT(platformScore(P("linux", "arm", "v7"), P("linux", "arm", "v7")),
            platformScore(P("linux", "arm", "v6"), P("linux", "arm", "v7")));
  EXPECT_GT(platformScore(P("linux", "arm", "v6"), P("linux", "arm", "v7")),
            platformScore(P("linux", "arm", "v5"), P("linux", "arm", "v7")));
}

Descriptor entry(std::string digest_char, std::optional<Platform> platform,
                 std::string_view media_type = media_type::kOciManifest) {
  Descriptor d;
  d.media_type = media_type;
  d.digest = "sha256:" + std::string(64, digest_char[0]);
  d.size = 1;
  d.platform = std::move(platform);
  return d;
}

TEST(SelectManifestTest, PrefersExactVariant) {
  Index index;
  index.manifests = {entry("1", P("linux", "amd64")), entry("2", P("linux", "arm", "v6")),
                     entry("3", P("linux", "arm", "v7")), entry("4", P("linux", "arm64", "v8")),
                     entry("5", P("unknown", "unknown"))};
  EXPECT_EQ(selectManifest(index, P("linux", "armv7l"))->digest, index.manifests[2].digest);
  EXPECT_EQ(selectManifest(index, P("linux", "arm", "v6"))->digest, index.manifests[1].digest);
  EXPECT_EQ(selectManifest(index, P("linux", "aarch64"))->digest, index.manifests[3].digest);
  EXPECT_EQ(selectManifest(index, P("linux", "amd64"))->digest, index.manifests[0].digest);
  index.manifests.erase(index.manifests.begin() + 2);
  // No v7 image: an armv7 host takes v6.
  EXPECT_EQ(selectManifest(index, P("linux", "arm", "v7"))->digest, index.manifests[1].digest);
}

TEST(SelectManifestTest, NoMatchListsAvailable) {
  Index index;
  index.manifests = {entry("1", P("linux", "amd64")), entry("2", P("linux", "arm64"))};
  auto none = selectManifest(index, P("linux", "riscv64"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(
      none.error().message(),
      HasSubstr("no image for linux/riscv64 in index; available: linux/amd64, linux/arm64"));
  Index empty;
  EXPECT_THAT(selectManifest(empty, P("linux", "amd64")).error().message(),
              HasSubstr("available: none"));
}

TEST(SelectManifestTest, EntryWithoutPlatformIsAWeakMatch) {
  Index index;
  index.manifests = {entry("1", std::nullopt), entry("2", P("linux", "amd64"))};
  EXPECT_EQ(selectManifest(index, P("linux", "amd64"))->digest, index.manifests[1].digest);
  EXPECT_EQ(selectManifest(index, P("linux", "s390x"))->digest, index.manifests[0].digest);
  // Non-manifest entries (e.g. signatures) are never chosen.
  Index artifacts;
  artifacts.manifests = {
      entry("3", std::nullopt, "application/vnd.dev.cosign.simplesigning.v1+json")};
  EXPECT_FALSE(selectManifest(artifacts, P("linux", "amd64")));
}

}  // namespace
}  // namespace fleetlet::oci
