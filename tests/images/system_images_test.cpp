// hack/build-images.sh --system: fleetlet/streams and fleetlet/blobs, built from scratch out of
// this build's binaries, import into a private containerd as an air-gapped node would, run
// there with nothing but what the image holds, and answer on their host listeners.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "http/client.h"
#include "os/child_process.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/system_state.h"
#include "support/temp_dir.h"

namespace fleetlet {
namespace {

using namespace std::chrono_literals;
using testing::PrivateContainerd;

class SystemImagesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = testing::TempDir::create("fleetlet-system-images");
    ASSERT_TRUE(dir);
    out_ = new testing::TempDir(std::move(*dir));
    const std::string source = std::getenv("FLEETLET_SOURCE_DIR");
    const std::string binary = std::getenv("FLEETLET_BINARY_DIR");
    auto built = runCommand(
        {source + "/hack/build-images.sh", "--system", binary, "--out", out_->path().string()});
    ASSERT_TRUE(built) << built.error().message();
    ASSERT_TRUE(built->status.success()) << built->err;
  }
  static void TearDownTestSuite() {
    delete out_;
    out_ = nullptr;
  }
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    ASSERT_NE(out_, nullptr);
    auto ctrd = PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    ns_ = PrivateContainerd::uniqueId("sysimg");
  }

  // Imports fleetlet-<name>-oci.tar and runs `args` (ctr replaces the whole command, entrypoint
  // included) in it in the node's network; returns
  // whether GET `path` on 127.0.0.1:<port> answers 200 within 20 s. When it does not, the
  // failure shows the task's state and what the service printed.
  bool runsAndAnswers(const std::string& name, std::vector<std::string> args, uint16_t port,
                      const std::string& path) {
    auto imported = containerd_->ctrOk(
        {"images", "import", (out_->path() / ("fleetlet-" + name + "-oci.tar")).string()}, ns_);
    EXPECT_TRUE(imported) << imported.error().message();
    if (!imported) return false;
    const std::string image = "fleetlet.local/fleetlet/" + name + ":1";
    const std::string id = PrivateContainerd::uniqueId(name);
    const auto log = out_->path() / (id + ".log");
    std::vector<std::string> run = {
        "run", "-d", "--net-host", "--log-uri", "file://" + log.string(), image, id};
    run.insert(run.end(), args.begin(), args.end());
    auto started = containerd_->ctrOk(run, ns_);
    EXPECT_TRUE(started) << started.error().message();
    if (!started) return false;
    http::Client client({.total_timeout = 2s});
    bool ok = testing::waitFor(
        [&] {
          auto r = client.send({.url = "http://127.0.0.1:" + std::to_string(port) + path});
          return r && r->status == 200;
        },
        20s);
    if (!ok) {
      auto tasks = containerd_->ctr({"tasks", "ls"}, ns_);
      std::ifstream printed(log);
      ADD_FAILURE() << name << ": nothing answered 200 on 127.0.0.1:" << port << path
                    << " within 20 s\ntasks:\n"
                    << (tasks ? tasks->out : tasks.error().message()) << "\nit printed:\n"
                    << std::string(std::istreambuf_iterator<char>(printed), {});
    }
    (void)containerd_->ctr({"tasks", "kill", "-s", "SIGKILL", id}, ns_);
    for (int i = 0; i < 100; ++i) {
      auto rm = containerd_->ctr({"tasks", "rm", id}, ns_);
      if (rm && rm->status.success()) break;
      std::this_thread::sleep_for(50ms);
    }
    (void)containerd_->ctr({"containers", "rm", id}, ns_);
    return ok;
  }

  // `n` distinct ports on 127.0.0.1 that were free a moment ago (the services listen on fixed
  // ports; a port derived from the pid could be another test's listener or connection).
  static std::vector<uint16_t> freePorts(size_t n) {
    std::vector<uint16_t> ports;
    while (ports.size() < n) {
      auto port = testing::freePort();
      EXPECT_TRUE(port) << port.error().message();
      if (!port) break;
      if (std::find(ports.begin(), ports.end(), *port) == ports.end()) ports.push_back(*port);
    }
    return ports;
  }

  static testing::TempDir* out_;
  std::optional<PrivateContainerd> containerd_;
  std::string ns_;
};

testing::TempDir* SystemImagesTest::out_ = nullptr;

TEST_F(SystemImagesTest, ImagesAreSmallAndHoldNoDistribution) {
  for (const char* name : {"streams", "blobs"}) {
    auto tar = out_->path() / (std::string("fleetlet-") + name + "-oci.tar");
    ASSERT_TRUE(std::filesystem::exists(tar)) << tar;
    EXPECT_LT(std::filesystem::file_size(tar), 32u << 20) << tar;
    auto listing = runCommand({"sh", "-c",
                               "tar -xOf " + tar.string() +
                                   " --wildcards 'blobs/sha256/*' 2>/dev/null | "
                                   "tar -t 2>/dev/null | grep -c 'bin/sh' || true"});
    ASSERT_TRUE(listing);
    EXPECT_EQ(listing->out, "0\n") << name << " carries a shell";
  }
}

TEST_F(SystemImagesTest, StreamsRunsFromItsImageAlone) {
  const auto ports = freePorts(2);
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_TRUE(runsAndAnswers("streams",
                             {"/usr/bin/fleetlet-streams", "--data-dir", "/data", "--listen",
                              "127.0.0.1:" + std::to_string(ports[0]), "--console-listen",
                              "127.0.0.1:" + std::to_string(ports[1])},
                             ports[0], "/api/v1/events/offsets"));
}

TEST_F(SystemImagesTest, BlobsRunsFromItsImageAlone) {
  const auto ports = freePorts(1);
  ASSERT_EQ(ports.size(), 1u);
  const uint16_t port = ports[0];
  EXPECT_TRUE(runsAndAnswers("blobs",
                             {"/usr/bin/fleetlet-blobs", "--data-dir", "/data", "--listen",
                              "127.0.0.1:" + std::to_string(port)},
                             port, "/api/v1/blobs"));
}

}  // namespace
}  // namespace fleetlet
