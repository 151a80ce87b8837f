// StateStore's native uid registry: one uid per native app, never two apps the same one, kept
// across reopening, host accounts skipped, freed only for apps that are gone.
#include <gtest/gtest.h>

#include <set>

#include "state/store.h"
#include "support/temp_dir.h"

namespace fleetlet::state {
namespace {

class NativeUidsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("native-uids");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
    reopen();
  }
  void reopen() {
    store_.reset();
    auto store = StateStore::open(dir_->path());
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  uint32_t uid(const std::string& app, uint32_t first = 61184, uint32_t last = 65519,
               const std::function<bool(uint32_t)>& taken = {}) {
    auto u = store_->nativeUid(app, first, last, taken);
    EXPECT_TRUE(u) << u.error().message();
    return u ? *u : 0;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(NativeUidsTest, FiftyAppsGetFiftyDifferentUidsThatStayAcrossARestart) {
  std::set<uint32_t> seen;
  std::map<std::string, uint32_t> given;
  for (int i = 0; i < 50; ++i) {
    const std::string app = "app-" + std::to_string(i);
    given[app] = uid(app);
    EXPECT_GE(given[app], 61184u);
    EXPECT_LE(given[app], 65519u);
    EXPECT_TRUE(seen.insert(given[app]).second) << app << " got a uid another app holds";
  }
  reopen();
  for (const auto& [app, u] : given) EXPECT_EQ(uid(app), u) << app;
}

TEST_F(NativeUidsTest, HostAccountsAreSkippedAndAFullRangeIsAnError) {
  // 100 is a host account: the first app gets 101, the second 102, then the range is full.
  auto host = [](uint32_t u) { return u == 100; };
  EXPECT_EQ(uid("a", 100, 102, host), 101u);
  EXPECT_EQ(uid("b", 100, 102, host), 102u);
  auto full = store_->nativeUid("c", 100, 102, host);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(full.error().message().find("100-102"), std::string::npos) << full.error().message();
  // Asking again for a known app needs no free uid.
  EXPECT_EQ(uid("a", 100, 102, host), 101u);
}

TEST_F(NativeUidsTest, OnlyTheUidsOfAppsThatAreGoneAreFreed) {
  const uint32_t a = uid("a", 100, 101);
  const uint32_t b = uid("b", 100, 101);
  ASSERT_TRUE(store_->releaseNativeUids({"b"}));
  EXPECT_EQ(uid("b", 100, 101), b);                // kept
  EXPECT_EQ(uid("c", 100, 101), a);                // a's uid went to the next app
  EXPECT_FALSE(store_->nativeUid("d", 100, 101));  // and none is left
}

}  // namespace
}  // namespace fleetlet::state
