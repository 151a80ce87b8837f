// NamedNetns: a real, pinned network namespace with lo up, removed by its owner. Needs root.
#include "netns/netns.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "os/child_process.h"
#include "support/require_root.h"
#include "support/temp_dir.h"

namespace fleetlet::netns {
namespace {

ino_t inodeOf(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(NamedNetns, CreatesAPinnedNamespaceWithLoopbackUpAndRemovesIt) {
  FLEETLET_REQUIRE_ROOT();
  std::string name = fmt::format("fleetlet-netns-test-{}", ::getpid());
  std::filesystem::path path;
  {
    auto ns = NamedNetns::create(name);
    ASSERT_TRUE(ns) << ns.error().message();
    path = ns->path();
    EXPECT_EQ(path, std::filesystem::path("/run/netns") / name);
    EXPECT_NE(inodeOf(path), inodeOf("/proc/self/ns/net")) << "a namespace of its own";

    ino_t inside = 0;
    ASSERT_TRUE(runInNetns(path, [&] { inside = inodeOf("/proc/thread-self/ns/net"); }));
    EXPECT_EQ(inside, inodeOf(path)) << "runInNetns entered it";
    auto out = runCommand({"ip", "-n", name, "-o", "link", "show", "lo"});
    ASSERT_TRUE(out);
    EXPECT_NE(out->out.find(",UP,"), std::string::npos) << out->out;

    auto again = NamedNetns::create(name);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
    EXPECT_TRUE(NamedNetns::isPinned(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the owner removed it";
  EXPECT_FALSE(NamedNetns::isPinned(path));
  EXPECT_TRUE(NamedNetns::remove(path)) << "removing twice succeeds";
  // The plain file a kill between creating the pin and mounting on it leaves is no pin.
  { std::ofstream(path.string()).flush(); }
  EXPECT_FALSE(NamedNetns::isPinned(path));
  EXPECT_TRUE(NamedNetns::remove(path));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(NamedNetns, RejectsNamesThatAreNotFileNames) {
  for (const char* bad : {"", "a/b", "..", "."}) {
    auto ns = NamedNetns::create(bad);
    ASSERT_FALSE(ns) << bad;
    EXPECT_EQ(ns.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(NamedNetns, WorksInAnyDirectoryAndReleaseKeepsIt) {
  FLEETLET_REQUIRE_ROOT();
  auto dir = testing::TempDir::create("fleetlet-netns");
  ASSERT_TRUE(dir);
  std::filesystem::path kept;
  {
    auto ns = NamedNetns::create("kept", dir->path() / "ns");
    ASSERT_TRUE(ns) << ns.error().message();
    kept = ns->release();
  }
  EXPECT_TRUE(std::filesystem::exists(kept));
  auto adopted = NamedNetns::adopt(kept);
  ASSERT_TRUE(adopted);
  EXPECT_TRUE(adopted->reset());
  EXPECT_FALSE(std::filesystem::exists(kept));
  // The directory was made a (self-bind) shared mount point; undo it before the TempDir goes.
  (void)runCommand({"umount", "-l", (dir->path() / "ns").string()});
}

}  // namespace
}  // namespace fleetlet::netns
