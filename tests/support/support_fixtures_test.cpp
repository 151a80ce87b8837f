// Tests of the integration-test fixtures themselves: a private containerd pulls and runs the
// test images from a local registry, survives a restart, and leaves nothing behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <optional>

#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/system_state.h"
#include "support/temp_dir.h"
#include "support/test_images.h"

namespace fleetlet::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(TempDirTest, RemovesItselfUnlessReleased) {
  fs::path kept;
  fs::path removed;
  {
    auto dir = TempDir::create("fleetlet-tempdir");
    ASSERT_TRUE(dir) << dir.error().message();
    removed = dir->path();
    EXPECT_TRUE(removed.string().starts_with("/tmp/fleetlet-tempdir-"));
    fs::create_directories(removed / "a" / "b");
    auto other = TempDir::create("fleetlet-tempdir");
    ASSERT_TRUE(other);
    kept = other->release();
  }
  EXPECT_FALSE(fs::exists(removed));
  EXPECT_TRUE(fs::is_directory(kept));
  fs::remove_all(kept);
}

TEST(LocalRegistryTest, ServesV2OnItsOwnPortAndStops) {
  auto first = LocalRegistry::start();
  ASSERT_TRUE(first) << first.error().message();
  auto second = LocalRegistry::start();
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_NE(first->port(), second->port());
  EXPECT_TRUE(first->address().starts_with("127.0.0.1:"));
  EXPECT_EQ(httpGetStatus("127.0.0.1", first->port(), "/v2/").value_or(0), 200);

  const pid_t pid = first->pid();
  const uint16_t port = first->port();
  const fs::path storage = first->storageDir();
  first = std::unexpected(Error(ErrorCode::kInternal, "destroyed"));
  EXPECT_FALSE(processAlive(pid));
  EXPECT_FALSE(httpGetStatus("127.0.0.1", port, "/v2/"));
  EXPECT_FALSE(fs::exists(storage));
}

class PrivateContainerdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FLEETLET_REQUIRE_ROOT();
    auto registry = LocalRegistry::start();
    ASSERT_TRUE(registry) << registry.error().message();
    registry_.emplace(std::move(*registry));
    auto images = TestImages::push(*registry_);
    ASSERT_TRUE(images) << images.error().message();
    images_.emplace(std::move(*images));
  }
  static void TearDownTestSuite() {
    images_.reset();
    registry_.reset();
  }
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    ASSERT_TRUE(images_) << "suite setup failed";
  }

  static std::string ctrOk(const PrivateContainerd& containerd, std::vector<std::string> args) {
    auto out = containerd.ctrOk(std::move(args));
    EXPECT_TRUE(out) << out.error().message();
    return out.value_or("");
  }

  static std::string uniqueId(std::string_view prefix) {
    return PrivateContainerd::uniqueId(prefix);
  }

  static inline std::optional<LocalRegistry> registry_;
  static inline std::optional<TestImages> images_;
};

TEST_F(PrivateContainerdTest, PullsRunsAndLeavesNothingBehind) {
  fs::path dir;
  fs::path socket;
  pid_t pid = -1;
  {
    auto containerd = PrivateContainerd::start();
    ASSERT_TRUE(containerd) << containerd.error().message();
    dir = containerd->dir();
    socket = containerd->socket();
    pid = containerd->pid();
    EXPECT_TRUE(processAlive(pid));

    ctrOk(*containerd, {"images", "pull", "--plain-http", images_->busybox()});
    EXPECT_EQ(ctrOk(*containerd, {"run", "--rm", images_->busybox(), uniqueId("hello")}),
              TestImages::kBusyboxOutput);
    // Layer 3 overwrote motd and whited out removed.txt; Env and WorkingDir come from the
    // image config.
    EXPECT_EQ(
        ctrOk(*containerd, {"run", "--rm", images_->busybox(), uniqueId("layers"), "/bin/sh", "-c",
                            "cat /etc/fleetlet-test/motd; "
                            "test -e /etc/fleetlet-test/removed.txt || echo removed; "
                            "echo $FLEETLET_TEST_IMAGE; pwd"}),
        "motd from layer 3\nremoved\nbusybox\n/srv/app\n");

    // The big image pulls too (4 layers).
    ctrOk(*containerd, {"images", "pull", "--plain-http", images_->big()});
    EXPECT_EQ(ctrOk(*containerd, {"run", "--rm", images_->big(), uniqueId("big"), "/bin/sh", "-c",
                                  "ls /data | wc -l"}),
              "3\n");

    // Leave a running task, a mounted rootfs and a shim for the destructor to clean up.
    ctrOk(*containerd, {"run", "-d", images_->busybox(), uniqueId("sleeper"), "sleep", "1000"});
    auto mounts = mountsUnder(dir);
    ASSERT_TRUE(mounts);
    EXPECT_FALSE(mounts->empty());
    EXPECT_EQ(shimsOf(socket).size(), 1u);
  }
  auto mounts = mountsUnder(dir);
  ASSERT_TRUE(mounts);
  EXPECT_TRUE(mounts->empty()) << mounts->front();
  EXPECT_FALSE(processAlive(pid));
  EXPECT_TRUE(shimsOf(socket).empty());
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(PrivateContainerdTest, ImportsTheOciTar) {
  auto containerd = PrivateContainerd::start();
  ASSERT_TRUE(containerd) << containerd.error().message();
  ASSERT_TRUE(fs::exists(images_->busyboxOciTar()));
  ctrOk(*containerd, {"images", "import", images_->busyboxOciTar().string()});
  EXPECT_EQ(ctrOk(*containerd, {"images", "ls", "-q"}),
            std::string(TestImages::kBusyboxTarRef) + "\n");
  EXPECT_EQ(
      ctrOk(*containerd, {"run", "--rm", std::string(TestImages::kBusyboxTarRef), uniqueId("t")}),
      TestImages::kBusyboxOutput);
}

TEST_F(PrivateContainerdTest, TasksSurviveADaemonRestartAndACrash) {
  auto containerd = PrivateContainerd::start();
  ASSERT_TRUE(containerd) << containerd.error().message();
  ctrOk(*containerd, {"images", "pull", "--plain-http", images_->busybox()});
  ctrOk(*containerd, {"run", "-d", images_->busybox(), uniqueId("sleeper"), "sleep", "1000"});
  const pid_t before = containerd->pid();

  ASSERT_TRUE(containerd->restart());
  EXPECT_FALSE(processAlive(before));
  EXPECT_NE(containerd->pid(), before);
  EXPECT_NE(ctrOk(*containerd, {"tasks", "ls"}).find("RUNNING"), std::string::npos);

  containerd->stopDaemon(SIGKILL);
  EXPECT_EQ(containerd->pid(), -1);
  EXPECT_FALSE(containerd->ctr({"version"})->status.success());
  ASSERT_TRUE(containerd->startDaemon());
  EXPECT_NE(ctrOk(*containerd, {"tasks", "ls"}).find("RUNNING"), std::string::npos);
}

TEST_F(PrivateContainerdTest, CleansUpAfterACrashedDaemon) {
  fs::path dir;
  fs::path socket;
  std::vector<pid_t> shims;
  const std::string id = uniqueId("orphan");
  {
    auto containerd = PrivateContainerd::start();
    ASSERT_TRUE(containerd) << containerd.error().message();
    dir = containerd->dir();
    socket = containerd->socket();
    ctrOk(*containerd, {"images", "pull", "--plain-http", images_->busybox()});
    ctrOk(*containerd, {"run", "-d", images_->busybox(), id, "sleep", "1000"});
    containerd->stopDaemon(SIGKILL);
    shims = shimsOf(socket);
    ASSERT_EQ(shims.size(), 1u);
    EXPECT_TRUE(fs::exists(fs::path("/run/containerd/runc/fleetlet") / id));
  }
  EXPECT_FALSE(processAlive(shims[0]));
  EXPECT_FALSE(fs::exists(fs::path("/run/containerd/runc/fleetlet") / id));
  auto mounts = mountsUnder(dir);
  ASSERT_TRUE(mounts);
  EXPECT_TRUE(mounts->empty());
  EXPECT_FALSE(fs::exists(dir));
}

TEST(PrivateContainerdErrors, TooLongDirectoryIsRejected) {
  auto containerd = PrivateContainerd::start(fs::path("/tmp") / std::string(120, 'x'));
  ASSERT_FALSE(containerd);
  EXPECT_EQ(containerd.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(fs::path("/tmp") / std::string(120, 'x')));
}

}  // namespace
}  // namespace fleetlet::testing
