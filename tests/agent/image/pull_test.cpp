// Pull and import against a private containerd and a loopback registry, checked through
// containerd's own tool (ctr) so that "works like ctr images pull" is what is tested.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "containerd/content.h"
#include "containerd/images.h"
#include "image/importer.h"
#include "image/puller.h"
#include "image/registry_source.h"
#include "image/store.h"
#include "json/json.h"
#include "oci/reference.h"
#include "os/child_process.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/shared_images.h"
#include "support/test_images.h"

namespace fleetlet::image {
namespace {

using testing::LocalRegistry;
using testing::PrivateContainerd;
using testing::TestImages;

// One registry with the test images for the whole binary; one containerd per test.
class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    auto shared = testing::SharedImages::get({});
    ASSERT_TRUE(shared) << shared.error().message();
    registry_ = &(*shared)->registry();
    images_ = &(*shared)->images();
    auto ctrd = PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    auto conn =
        containerd::Connection::connect(containerd_->socket().string(), std::chrono::seconds(10));
    ASSERT_TRUE(conn) << conn.error().message();
    store_.emplace(*conn, "fleetlet");
  }

  Result<PullResult> pull(const std::string& text, PullOptions options = {}) {
    FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(text));
    registry::RegistryClient client(ref.registry(), {.plain_http = true});
    RegistrySource source(client, ref);
    return pullImage(source, *store_, ref.toString(), options);
  }

  // Runs the image with ctr and returns its stdout.
  std::string ctrRun(const std::string& image, std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {"run", "--rm", image, PrivateContainerd::uniqueId("ctr-run")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = containerd_->ctrOk(argv);
    EXPECT_TRUE(out) << out.error().message();
    return out.value_or("");
  }

  std::string ctrImages() { return containerd_->ctrOk({"images", "ls", "-q"}).value_or("?"); }

  const LocalRegistry* registry_ = nullptr;
  const TestImages* images_ = nullptr;
  std::optional<PrivateContainerd> containerd_;
  std::optional<ImageStore> store_;
};

TEST_F(PullTest, PulledImageIsListedAndRunsWithCtr) {
  std::vector<PullProgress> progress;
  auto r =
      pull(images_->busybox(), {.progress = [&](const PullProgress& p) { progress.push_back(p); }});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->name, images_->busybox());
  EXPECT_EQ(r->layers, 3u);
  EXPECT_GT(r->fetched_bytes, 0);
  EXPECT_FALSE(r->top_chain_id.empty());
  // Every layer was reported downloaded and unpacked.
  auto count = [&](PullProgress::Phase phase) {
    return std::count_if(progress.begin(), progress.end(), [&](const PullProgress& p) {
      return p.kind == PullProgress::Kind::kLayer && p.phase == phase;
    });
  };
  EXPECT_EQ(count(PullProgress::Phase::kDownloaded), 3);
  EXPECT_EQ(count(PullProgress::Phase::kUnpacked), 3);

  EXPECT_NE(ctrImages().find(images_->busybox()), std::string::npos);
  EXPECT_EQ(ctrRun(images_->busybox()), TestImages::kBusyboxOutput);
  // The third layer's whiteout and overwrite were applied.
  EXPECT_EQ(ctrRun(images_->busybox(), {"cat", "/etc/fleetlet-test/motd"}), "motd from layer 3\n");
  auto removed =
      containerd_->ctr({"run", "--rm", images_->busybox(), PrivateContainerd::uniqueId("ctr-run"),
                        "cat", "/etc/fleetlet-test/removed.txt"});
  ASSERT_TRUE(removed);
  EXPECT_NE(removed->status.exit_code, 0);

  // ctr sees the content as a pull of its own would leave it: the GC labels are in place.
  auto conn = store_->connection();
  containerd::ContentService content(conn, {"fleetlet", {}});
  auto info = content.info(r->manifest.digest);
  ASSERT_TRUE(info && *info);
  EXPECT_TRUE((*info)->labels.contains("containerd.io/gc.ref.content.config"));
  EXPECT_TRUE((*info)->labels.contains("containerd.io/gc.ref.content.l.2"));
  EXPECT_EQ((*info)->labels.at("containerd.io/distribution.source.127.0.0.1"),
            "fleetlet-test/busybox");
  // No lease is left behind.
  auto leases = containerd_->ctrOk({"leases", "ls", "-q"});
  ASSERT_TRUE(leases);
  EXPECT_EQ(*leases, "");
}

TEST_F(PullTest, SecondPullFetchesNothing) {
  ASSERT_TRUE(pull(images_->busybox()));
  auto again = pull(images_->busybox());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->fetched_bytes, 0);
}

TEST_F(PullTest, ImageSurvivesGarbageCollection) {
  ASSERT_TRUE(pull(images_->busybox()));
  // Removing an unrelated image forces a synchronous GC; ours must keep all its blobs and
  // snapshots (the labels reference them).
  ASSERT_TRUE(pull(images_->big()));
  ASSERT_TRUE(store_->removeImage(images_->big()));
  EXPECT_EQ(ctrRun(images_->busybox()), TestImages::kBusyboxOutput);
  auto listed = store_->list();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(listed->front().unpacked);
  EXPECT_EQ(listed->front().platform, "linux/amd64");
}

TEST_F(PullTest, RemoveDropsContentAndSnapshots) {
  ASSERT_TRUE(pull(images_->busybox()));
  ASSERT_TRUE(store_->removeImage(images_->busybox()));
  EXPECT_EQ(containerd_->ctrOk({"content", "ls", "-q"}).value_or("?"), "");
  EXPECT_EQ(containerd_->ctrOk({"snapshots", "ls"}).value_or("?").find("sha256:"),
            std::string::npos);
  auto again = store_->removeImage(images_->busybox());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
}

TEST_F(PullTest, KilledPullResumesAndTransfersLess) {
  // Pull the 50 MB image in a child process with one download at a time and kill -9 it once
  // a layer ingest holds some bytes.
  auto conn = store_->connection();
  containerd::ContentService content(conn, {"fleetlet", {}});
  int64_t partial = 0;
  for (int attempt = 0; attempt < 5 && partial == 0; ++attempt) {
    auto child = ChildProcess::spawn(
        {.argv = {FLEETLETCTL_PATH, "--address", containerd_->socket().string(), "image", "pull",
                  "--plain-http", "--parallel", "1", images_->big()},
         .stdout_path = "/dev/null"});
    ASSERT_TRUE(child) << child.error().message();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && !child->poll()) {
      auto ingests = content.listIngests();
      ASSERT_TRUE(ingests);
      for (const auto& i : *ingests) {
        if (i.ref.starts_with("layer-") && i.offset > (4 << 20)) partial = i.offset;
      }
      if (partial > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    child->signal(SIGKILL);
    child->wait();
    if (partial == 0) {
      // The pull outran us: start again from nothing.
      (void)store_->removeImage(images_->big());
    }
  }
  ASSERT_GT(partial, 0) << "could not catch the pull midway";
  EXPECT_EQ(ctrImages().find(images_->big()), std::string::npos)
      << "a killed pull must not leave an image";

  auto resumed = pull(images_->big());
  ASSERT_TRUE(resumed) << resumed.error().message();
  EXPECT_GE(resumed->resumed_bytes, partial);
  int64_t layer_bytes = resumed->total_bytes - resumed->manifest.size;
  EXPECT_LT(resumed->fetched_bytes, layer_bytes);
  EXPECT_NE(ctrRun(images_->big(), {"sh", "-c", "cat /data/*.bin | wc -c"}), "0\n");
  // All ingests were committed.
  auto left = content.listIngests();
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty());
}

TEST_F(PullTest, TamperedLayerIsRefusedAndNoImageIsCreated) {
  // A registry of its own, whose copy of a layer gets one byte flipped on disk.
  auto registry = LocalRegistry::start();
  ASSERT_TRUE(registry) << registry.error().message();
  auto images = TestImages::push(*registry, {.include_big = false});
  ASSERT_TRUE(images) << images.error().message();
  std::string victim;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(registry->storageDir())) {
    if (entry.path().filename() != "data" || entry.file_size() < 100000) continue;
    victim = entry.path().parent_path().filename().string();
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('X');
    break;
  }
  ASSERT_FALSE(victim.empty()) << "no layer blob found in the registry storage";

  auto r = pull(images->busybox());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("digest mismatch for layer sha256:" + victim),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(ctrImages(), "");
  containerd::ContentService content(store_->connection(), {"fleetlet", {}});
  EXPECT_FALSE(content.info("sha256:" + victim).value().has_value());
}

TEST_F(PullTest, ImportsOciArchive) {
  auto r = importArchive(images_->busyboxOciTar(), *store_, {});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().name, TestImages::kBusyboxTarRef);
  EXPECT_EQ(ctrRun(std::string(TestImages::kBusyboxTarRef)), TestImages::kBusyboxOutput);
}

TEST_F(PullTest, ImportRefusesArchivesThatAreNotOciLayouts) {
  auto dir = std::filesystem::temp_directory_path() / PrivateContainerd::uniqueId("bad-tar");
  std::filesystem::create_directories(dir / "src");
  std::ofstream(dir / "src" / "hello.txt") << "not an image\n";
  auto tar = dir / "bad.tar";
  ASSERT_TRUE(runCommand({"tar", "-C", (dir / "src").string(), "-cf", tar.string(), "."}));
  auto r = importArchive(tar, *store_, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("no oci-layout"), std::string::npos) << r.error().message();

  std::ofstream(dir / "garbage.tar") << "garbage garbage garbage";
  r = importArchive(dir / "garbage.tar", *store_, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ctrImages(), "");
  std::filesystem::remove_all(dir);
}

TEST_F(PullTest, CliPullListsRunsAndReportsErrors) {
  std::string addr = containerd_->socket().string();
  auto out = runCommand(
      {FLEETLETCTL_PATH, "--address", addr, "image", "pull", "--plain-http", images_->busybox()});
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->status.success()) << out->err;
  EXPECT_NE(out->out.find("pulled " + images_->busybox()), std::string::npos) << out->out;
  EXPECT_EQ(ctrRun(images_->busybox()), TestImages::kBusyboxOutput);

  auto ls = runCommand({FLEETLETCTL_PATH, "--address", addr, "image", "ls"});
  ASSERT_TRUE(ls);
  EXPECT_NE(ls->out.find(images_->busybox()), std::string::npos);
  EXPECT_NE(ls->out.find("linux/amd64"), std::string::npos);

  auto unknown = runCommand({FLEETLETCTL_PATH, "--address", addr, "image", "pull", "--plain-http",
                             registry_->address() + "/fleetlet-test/nope:1"});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status.exit_code, 1);
  EXPECT_NE(unknown->err.find("manifest unknown"), std::string::npos) << unknown->err;

  auto unreachable = runCommand({FLEETLETCTL_PATH, "--address", addr, "image", "pull",
                                 "--plain-http", "127.0.0.1:1/fleetlet-test/busybox:1"});
  ASSERT_TRUE(unreachable);
  EXPECT_EQ(unreachable->status.exit_code, 1);
  EXPECT_NE(unreachable->err.find("unreachable"), std::string::npos) << unreachable->err;

  auto no_containerd =
      runCommand({FLEETLETCTL_PATH, "--address", "/nonexistent.sock", "image", "ls"});
  ASSERT_TRUE(no_containerd);
  EXPECT_EQ(no_containerd->status.exit_code, 1);
  EXPECT_NE(no_containerd->err.find("does not answer"), std::string::npos) << no_containerd->err;
}

}  // namespace
}  // namespace fleetlet::image
