#include "bundle/unpack.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "archive_builder.h"
#include "bundle/app_config.h"
#include "support/temp_dir.h"

namespace fleetlet::bundle {
namespace {

using testing::dir;
using testing::file;
using ::testing::HasSubstr;
using testing::makeTar;
using testing::TarEntry;
namespace fs = std::filesystem;
using testing::readFile;

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = fleetlet::testing::TempDir::create("bundle-unpack");
    ASSERT_TRUE(t) << t.error().describe();
    tmp_.emplace(std::move(*t));
  }

  // Writes the archive and unpacks it into <tmp>/out.
  Result<UnpackSummary> unpack(const std::string& bytes, const UnpackLimits& limits = {}) {
    testing::writeFile(archivePath(), bytes);
    return unpackArchive(archivePath(), out(), limits);
  }
  fs::path archivePath() const { return tmp_->path() / "bundle.tar.gz"; }
  fs::path out() const { return tmp_->path() / "out"; }

  // A refused archive leaves nothing behind, and inspectArchive (the fuzz target's entry)
  // refuses it the same way.
  void expectRefused(const std::string& bytes, ErrorCode code, const std::string& message,
                     const UnpackLimits& limits = {}) {
    auto result = unpack(bytes, limits);
    ASSERT_FALSE(result) << "accepted";
    EXPECT_EQ(result.error().code(), code) << result.error().describe();
    EXPECT_THAT(result.error().message(), HasSubstr(message));
    EXPECT_FALSE(fs::exists(out())) << "a refused archive left " << out();
    auto inspected = inspectArchive(bytes, limits);
    ASSERT_FALSE(inspected);
    EXPECT_THAT(inspected.error().message(), HasSubstr(message));
  }

  std::optional<fleetlet::testing::TempDir> tmp_;
};

TEST(CheckEntryPathTest, NormalisesAndRefuses) {
  UnpackLimits limits;
  EXPECT_EQ(checkEntryPath("./a/b.js", limits).value(), "a/b.js");
  EXPECT_EQ(checkEntryPath("assets/", limits).value(), "assets");
  EXPECT_EQ(checkEntryPath("./", limits).value(), "");
  EXPECT_EQ(checkEntryPath(".", limits).value(), "");
  for (const char* bad : {"/etc/passwd", "../x", "a/../../x", "a/..", "a//b", "a/./b", ""}) {
    auto r = checkEntryPath(bad, limits);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_THAT(checkEntryPath("../x", limits).error().message(), HasSubstr("path traversal"));
  EXPECT_THAT(checkEntryPath("/etc/passwd", limits).error().message(), HasSubstr("absolute"));
  EXPECT_FALSE(checkEntryPath(std::string(256, 'a'), limits));
  std::string deep;
  for (int i = 0; i < 33; ++i) deep += "d/";
  EXPECT_THAT(checkEntryPath(deep + "f", limits).error().message(), HasSubstr("deeper"));
}

TEST_F(UnpackTest, UnpacksFilesDirectoriesAndHardLinks) {
  auto bytes =
      makeTar({dir("./"), file("./index.html", "<h1>hi</h1>"), dir("assets/"),
               file("assets/app.js", "console.log(1)"),
               TarEntry{.path = "deep/er/tool.sh", .content = "#!/bin/sh\n", .perm = 04755},
               TarEntry{.path = "copy.html", .hardlink = "index.html"}});
  auto summary = unpack(bytes);
  ASSERT_TRUE(summary) << summary.error().describe();
  EXPECT_EQ(summary->files, 4u);
  EXPECT_EQ(readFile(out() / "index.html"), "<h1>hi</h1>");
  EXPECT_EQ(readFile(out() / "assets/app.js"), "console.log(1)");
  EXPECT_EQ(readFile(out() / "copy.html"), "<h1>hi</h1>");
  struct stat st {};
  ASSERT_EQ(::stat((out() / "deep/er/tool.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "setuid must not survive";
  ASSERT_EQ(::stat((out() / "index.html").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(UnpackTest, PlainTarIsAccepted) {
  auto summary = unpack(makeTar({file("index.html", "x")}, /*gzip=*/false));
  ASSERT_TRUE(summary) << summary.error().describe();
}

TEST_F(UnpackTest, RefusesAbsolutePath) {
  expectRefused(makeTar({file("index.html", "x"), file("/tmp/evil", "x")}),
                ErrorCode::kInvalidArgument, "\"/tmp/evil\": absolute path");
}

TEST_F(UnpackTest, RefusesDotDotTraversal) {
  expectRefused(makeTar({file("index.html", "x"), file("assets/../../evil", "x")}),
                ErrorCode::kInvalidArgument, "path traversal");
  EXPECT_FALSE(fs::exists(tmp_->path() / "evil"));
}

TEST_F(UnpackTest, RefusesSymlinkOut) {
  expectRefused(
      makeTar({TarEntry{.path = "etc", .type = AE_IFLNK, .link = "/etc"}, file("etc/evil", "x")}),
      ErrorCode::kInvalidArgument, "\"etc\" is a symbolic link (to \"/etc\")");
}

TEST_F(UnpackTest, RefusesEvenARelativeSymlink) {
  expectRefused(makeTar({file("index.html", "x"),
                         TarEntry{.path = "home.html", .type = AE_IFLNK, .link = "index.html"}}),
                ErrorCode::kInvalidArgument, "may not contain symbolic links");
}

TEST_F(UnpackTest, RefusesHardLinkOut) {
  expectRefused(makeTar({TarEntry{.path = "passwd", .hardlink = "/etc/passwd"}}),
                ErrorCode::kInvalidArgument, "absolute path");
  expectRefused(makeTar({TarEntry{.path = "passwd", .hardlink = "../../etc/passwd"}}),
                ErrorCode::kInvalidArgument, "path traversal");
}

TEST_F(UnpackTest, RefusesHardLinkToAFileNotYetInTheArchive) {
  expectRefused(makeTar({TarEntry{.path = "a", .hardlink = "b"}, file("b", "x")}),
                ErrorCode::kInvalidArgument, "no earlier file of the archive");
}

TEST_F(UnpackTest, RefusesDevicesAndFifos) {
  expectRefused(makeTar({TarEntry{.path = "null", .type = AE_IFCHR}}), ErrorCode::kInvalidArgument,
                "is a character device");
  expectRefused(makeTar({TarEntry{.path = "pipe", .type = AE_IFIFO}}), ErrorCode::kInvalidArgument,
                "is a fifo");
}

TEST_F(UnpackTest, RefusesAFileUnderAFile) {
  expectRefused(makeTar({file("a", "x"), file("a/b", "y")}), ErrorCode::kInvalidArgument,
                "its parent \"a\" is a file");
}

TEST_F(UnpackTest, RefusesADuplicateFile) {
  expectRefused(makeTar({file("index.html", "good"), file("./index.html", "evil")}),
                ErrorCode::kInvalidArgument, "appears twice");
}

TEST_F(UnpackTest, EnforcesTheFileCountLimit) {
  std::vector<TarEntry> entries;
  for (int i = 0; i < 11; ++i) entries.push_back(file("f" + std::to_string(i), "x"));
  expectRefused(makeTar(entries), ErrorCode::kResourceExhausted, "more than 10 entries",
                UnpackLimits{.max_files = 10});
}

TEST_F(UnpackTest, EnforcesTheSizeLimitOnTheBytesWritten) {
  // A gzip bomb in small: 4 MiB of zeros compress to a few KiB.
  auto bytes = makeTar({file("index.html", "x"), file("zeros", std::string(4 << 20, '\0'))});
  ASSERT_LT(bytes.size(), 64u * 1024);
  expectRefused(bytes, ErrorCode::kResourceExhausted, "more than 1048576 bytes",
                UnpackLimits{.max_total_bytes = 1 << 20});
}

TEST_F(UnpackTest, RefusesTruncatedAndGarbageArchives) {
  auto bytes = makeTar({file("index.html", std::string(100000, 'x'))}, /*gzip=*/false);
  expectRefused(bytes.substr(0, 5000), ErrorCode::kInvalidArgument, "");
  expectRefused("this is not a tar archive at all, not even close......",
                ErrorCode::kInvalidArgument, "");
}

TEST_F(UnpackTest, RefusesAnExistingDestination) {
  fs::create_directories(out());
  testing::writeFile(archivePath(), makeTar({file("index.html", "x")}));
  auto result = unpackArchive(archivePath(), out());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kAlreadyExists);
}

TEST(AppConfigTest, ParsesAllMembers) {
  auto c = parseAppConfig(R"({"displayName":"Inspector","startPage":"./app/main.html",
      "settings":{"line":3},"allowedOrigins":["https://docs.example.com:8443"]})");
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->display_name, "Inspector");
  EXPECT_EQ(c->start_page, "app/main.html");
  EXPECT_EQ(c->settings["line"], 3);
  EXPECT_EQ(c->allowed_origins, std::vector<std::string>{"https://docs.example.com:8443"});
}

TEST(AppConfigTest, RefusesBadMembers) {
  EXPECT_THAT(parseAppConfig(R"({"startPage":"../x.html"})").error().message(),
              HasSubstr("startPage: \"../x.html\" is not a path inside the bundle"));
  EXPECT_THAT(parseAppConfig(R"({"settings":[1]})").error().message(),
              HasSubstr("settings: expected an object"));
  EXPECT_THAT(parseAppConfig(R"({"allowedOrigins":["https://x.com/path"]})").error().message(),
              HasSubstr("is not an origin"));
  EXPECT_THAT(parseAppConfig(R"({"allowedOrigins":["file://x"]})").error().message(),
              HasSubstr("is not an origin"));
  EXPECT_THAT(parseAppConfig(R"({"colour":"red"})").error().message(),
              HasSubstr("colour: unknown member"));
  EXPECT_FALSE(parseAppConfig("[]"));
}

}  // namespace
}  // namespace fleetlet::bundle
