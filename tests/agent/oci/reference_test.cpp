#include "oci/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::oci {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kDigest =
    "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";

struct Good {
  std::string input;
  std::string registry;
  std::string repository;
  std::string tag;
  std::string digest;
  std::string canonical;
};

// Readable test names in ctest: the input, non-printables as '?'.
std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) out += (c >= 0x21 && c < 0x7f) ? c : '?';
  return out.empty() ? "<empty>" : out.substr(0, 60);
}
void PrintTo(const Good& g, std::ostream* os) { *os << printable(g.input); }

class GoodReferenceTest : public ::testing::TestWithParam<Good> {};

TEST_P(GoodReferenceTest, Parses) {
  const Good& g = GetParam();
  auto ref = Reference::parse(g.input);
  ASSERT_TRUE(ref) << ref.error().message();
  EXPECT_EQ(ref->registry(), g.registry);
  EXPECT_EQ(ref->repository(), g.repository);
  EXPECT_EQ(ref->tag(), g.tag);
  EXPECT_EQ(ref->digest(), g.digest);
  EXPECT_EQ(ref->toString(), g.canonical);
  // The canonical form parses back to the same reference.
  auto again = Reference::parse(ref->toString());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *ref);
}

const std::string D(kDigest);

INSTANTIATE_TEST_SUITE_P(
    All, GoodReferenceTest,
    ::testing::Values(
        Good{"busybox", "docker.io", "library/busybox", "latest", "",
             "docker.io/library/busybox:latest"},
        Good{"busybox:1.36", "docker.io", "library/busybox", "1.36", "",
             "docker.io/library/busybox:1.36"},
        Good{"acme/app", "docker.io", "acme/app", "latest", "", "docker.io/acme/app:latest"},
        Good{"docker.io/busybox", "docker.io", "library/busybox", "latest", "",
             "docker.io/library/busybox:latest"},
        Good{"index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", "",
             "docker.io/library/busybox:1"},
        Good{"127.0.0.1:5000/acme/x:1", "127.0.0.1:5000", "acme/x", "1", "",
             "127.0.0.1:5000/acme/x:1"},
        Good{"localhost/x", "localhost", "x", "latest", "", "localhost/x:latest"},
        Good{"localhost:5000/a/b/c:v1.2-rc_3", "localhost:5000", "a/b/c", "v1.2-rc_3", "",
             "localhost:5000/a/b/c:v1.2-rc_3"},
        Good{"ghcr.io/org/my-app__x.y:latest", "ghcr.io", "org/my-app__x.y", "latest", "",
             "ghcr.io/org/my-app__x.y:latest"},
        Good{"registry.example.com/a---b/c_d", "registry.example.com", "a---b/c_d", "latest", "",
             "registry.example.com/a---b/c_d:latest"},
        Good{"busybox@" + D, "docker.io", "library/busybox", "", D,
             "docker.io/library/busybox@" + D},
        Good{"127.0.0.1:5000/acme/x:1@" + D, "127.0.0.1:5000", "acme/x", "1", D,
             "127.0.0.1:5000/acme/x:1@" + D},
        Good{"[::1]:5000/acme/x", "[::1]:5000", "acme/x", "latest", "", "[::1]:5000/acme/x:latest"},
        Good{"my-registry.local:443/x:TAG_1", "my-registry.local:443", "x", "TAG_1", "",
             "my-registry.local:443/x:TAG_1"},
        Good{"a/b:_tag", "docker.io", "a/b", "_tag", "", "docker.io/a/b:_tag"}));

struct Bad {
  std::string input;
  std::string reason;
};

void PrintTo(const Bad& b, std::ostream* os) { *os << printable(b.input); }

class BadReferenceTest : public ::testing::TestWithParam<Bad> {};

TEST_P(BadReferenceTest, RefusedNamingTheProblem) {
  const Bad& b = GetParam();
  auto ref = Reference::parse(b.input);
  ASSERT_FALSE(ref) << b.input << " parsed as " << ref->toString();
  EXPECT_EQ(ref.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(ref.error().message(), HasSubstr("invalid reference \"" + b.input + "\""));
  EXPECT_THAT(ref.error().message(), HasSubstr(b.reason));
}

INSTANTIATE_TEST_SUITE_P(
    All, BadReferenceTest,
    ::testing::Values(
        Bad{"", "empty reference"}, Bad{":tag", "missing repository name"},
        Bad{"busybox:", "empty tag"}, Bad{"Busybox", "must be lowercase"},
        Bad{"acme/App", "must be lowercase"}, Bad{"busy box", "whitespace"},
        Bad{"a//b", "empty path component"}, Bad{"a/", "empty path component"},
        Bad{"-a", "must start and end"}, Bad{"a-", "bad separator"}, Bad{"a..b", "bad separator"},
        Bad{"a___b", "bad separator"}, Bad{"a/b:-tag", "must start with"},
        Bad{"a:b/c", "invalid port \"b\""}, Bad{"a/b:t@g", "invalid digest"},
        Bad{"busybox@sha256:abc", "64 hex digits"},
        Bad{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm"},
        Bad{"busybox@sha256:CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB",
            "lowercase hex"},
        Bad{"busybox@", "invalid digest"}, Bad{"host:99999/x", "out of range"},
        Bad{"host:port/x", "invalid port"}, Bad{"-host.com/x", "invalid registry host"},
        Bad{"ho_st.com/x", "invalid character '_'"}, Bad{"[::1/x", "unterminated IPv6"},
        Bad{"a/b:" + std::string(129, 't'), "tag longer than 128"},
        Bad{"example.com/" + std::string(250, 'a'), "name longer than 255"},
        Bad{"example.com/", "missing repository name"}, Bad{"a\tb", "control"}));

TEST(ReferenceTest, TagOrDigestPrefersDigest) {
  auto ref = Reference::parse("127.0.0.1:5000/acme/x:1@" + D);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->tagOrDigest(), D);
  EXPECT_EQ(ref->name(), "127.0.0.1:5000/acme/x");
  auto tagged = Reference::parse("127.0.0.1:5000/acme/x:1");
  ASSERT_TRUE(tagged);
  EXPECT_EQ(tagged->tagOrDigest(), "1");
}

}  // namespace
}  // namespace fleetlet::oci
