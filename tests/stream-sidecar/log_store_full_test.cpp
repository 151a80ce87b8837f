// The console's log store on a full disk (a small tmpfs this test mounts): appends keep
// working by dropping the oldest entries, or fail with kResourceExhausted; never worse.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "console/log_store.h"
#include "support/require_root.h"
#include "support/temp_dir.h"

namespace fleetlet::streams {
namespace {

struct ScopedTmpfs {
  explicit ScopedTmpfs(const std::filesystem::path& dir, const char* size) : dir_(dir) {
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, size) == 0;
  }
  ~ScopedTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  std::filesystem::path dir_;
  bool mounted_ = false;
};

TEST(LogStoreFullDisk, KeepsAcceptingByDroppingTheOldest) {
  if (!fleetlet::testing::isRoot()) GTEST_SKIP() << "needs root (mounts a tmpfs)";
  auto dir = fleetlet::testing::TempDir::create("streams-fulldisk");
  ASSERT_TRUE(dir);
  ScopedTmpfs tmpfs(dir->path(), "size=2m");
  ASSERT_TRUE(tmpfs.mounted_);
  {
    auto store = LogStore::open({.dir = dir->path(), .app_cap_bytes = 1ull << 30});
    ASSERT_TRUE(store) << store.error().message();
    int ok = 0, exhausted = 0, other = 0;
    for (int i = 0; i < 6000; ++i) {
      LogEntry e;
      e.log_name = "l";
      e.severity = "info";
      e.message = fmt::format("{:06d}", i) + std::string(1000, 'x');
      auto r = (*store)->append("app", std::move(e));
      if (r) {
        ++ok;
      } else if (r.error().code() == ErrorCode::kResourceExhausted) {
        ++exhausted;
      } else {
        ++other;
        ADD_FAILURE() << r.error().message();
        break;
      }
    }
    EXPECT_EQ(other, 0);
    EXPECT_GT(ok, 1000);
    auto newest = (*store)->read({.limit = 1});
    ASSERT_TRUE(newest) << newest.error().message();
    ASSERT_EQ(newest->size(), 1u);
    // The last appends went through: the disk filled up long before 6000 entries.
    EXPECT_EQ(newest->at(0).message.substr(0, 6), "005999") << "ok=" << ok << " full=" << exhausted;
  }
}

}  // namespace
}  // namespace fleetlet::streams
