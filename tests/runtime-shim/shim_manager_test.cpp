// The shim's `start` and `delete` subcommands as containerd runs them, without containerd:
// socket reuse, stale sockets, the address file, Shutdown, the delete answer.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "os/child_process.h"
#include "shim/manager.h"
#include "support/temp_dir.h"
#include "ttrpc/client.h"
#include "ttrpc/socket.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string readFile(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the shim ($1) the way containerd does: cwd = the bundle ($0), -address $2, action $3.
constexpr const char* kShimInBundle =
    "cd \"$0\" && exec \"$1\" -namespace ns -address \"$2\" -publish-binary /bin/false "
    "-id task1 \"$3\"";

class ShimManagerSubcommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("shim-mgr");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
    bundle_ = dir_->path() / "bundle";
    fs::create_directories(bundle_);
    // Stands in for containerd's socket: only its directory matters (the shim's socket goes
    // to <dir>/s/).
    address_ = (dir_->path() / "containerd.sock").string();
  }

  CommandOutput shim(const std::string& action) {
    auto out =
        runCommand(RunOptions{.argv = {"/bin/sh", "-c", kShimInBundle, bundle_.string(),
                                       std::string(FLEETLET_SHIM_BINARY), address_, action},
                              .env = {{"TTRPC_ADDRESS", (dir_->path() / "nobody.ttrpc").string()}},
                              .timeout = 30s});
    EXPECT_TRUE(out) << out.error().message();
    return out ? *out : CommandOutput{};
  }

  void shutdownServer(const std::string& address) {
    auto client = ttrpc::Client::connect(address);
    ASSERT_TRUE(client) << client.error().message();
    containerd::task::v2::ShutdownRequest request;
    request.set_id("task1");
    (void)(*client)->call("containerd.task.v2.Task", "Shutdown", request.SerializeAsString(),
                          {.timeout = 10s});
  }

  std::unique_ptr<testing::TempDir> dir_;
  fs::path bundle_;
  std::string address_;
};

TEST_F(ShimManagerSubcommandTest, StartPrintsTheAddressReusesALiveShimAndShutdownEndsIt) {
  auto first = shim("start");
  ASSERT_TRUE(first.status.success()) << first.err;
  const std::string address = first.out;
  EXPECT_EQ(address, "unix://" + socketPathFor(address_, "ns", "task1").string());
  EXPECT_EQ(readFile(bundle_ / "address"), address);
  auto connect = [&] {
    auto client = ttrpc::Client::connect(address);
    if (!client) return false;
    containerd::task::v2::ConnectRequest request;
    request.set_id("task1");
    return (*client)
        ->call("containerd.task.v2.Task", "Connect", request.SerializeAsString(), {.timeout = 10s})
        .has_value();
  };
  ASSERT_TRUE(connect());

  // A second start for the same task finds the live shim and hands out its address.
  auto second = shim("start");
  ASSERT_TRUE(second.status.success()) << second.err;
  EXPECT_EQ(second.out, address);

  // No task was created, so Shutdown ends the server and removes its socket.
  shutdownServer(address);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (fs::exists(address.substr(7)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(fs::exists(address.substr(7)));
  EXPECT_FALSE(connect());
}

TEST_F(ShimManagerSubcommandTest, AStaleSocketIsReplaced) {
  // A socket file nobody listens on (a shim that was killed).
  fs::path path = socketPathFor(address_, "ns", "task1");
  fs::create_directories(path.parent_path());
  {
    auto stale = ttrpc::listenUnix(path);
    ASSERT_TRUE(stale);
  }
  ASSERT_TRUE(fs::exists(path));
  auto started = shim("start");
  ASSERT_TRUE(started.status.success()) << started.err;
  EXPECT_EQ(started.out, "unix://" + path.string());
  auto client = ttrpc::Client::connect(started.out);
  ASSERT_TRUE(client) << client.error().message();
  client->reset();
  shutdownServer(started.out);
}

TEST_F(ShimManagerSubcommandTest, DeleteAnswersADeleteResponseEvenTwice) {
  for (int round = 0; round < 2; ++round) {
    auto out = shim("delete");
    ASSERT_TRUE(out.status.success()) << out.err;
    containerd::task::v2::DeleteResponse response;
    ASSERT_TRUE(response.ParseFromString(out.out));
    EXPECT_EQ(response.exit_status(), 137u);
    EXPECT_GT(response.exited_at().seconds(), 0);
  }
}

TEST_F(ShimManagerSubcommandTest, BadFlagsExitNonZeroNamingThem) {
  auto out = runCommand(
      {std::string(FLEETLET_SHIM_BINARY), "-namespace", "ns", "-id", "x", "-bogus", "1", "start"});
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->status.success());
  EXPECT_NE(out->err.find("-bogus"), std::string::npos) << out->err;
}

}  // namespace
}  // namespace fleetlet::shim
