// The system manifest (manifests/system/) and how it is merged with the desired state.
#include "system_apps/system_apps.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "manifest/parse.h"
#include "ocispec/builder.h"
#include "support/temp_dir.h"

namespace fleetlet::system_apps {
namespace {

manifest::NodeState parse(const std::string& yaml) {
  auto s = manifest::parseNodeState(yaml);
  EXPECT_TRUE(s) << s.error().message();
  return s ? *s : manifest::NodeState{};
}

Result<manifest::NodeState> shipped(const SystemAppsOptions& options = {
                                        .handoff_dir = "/run/fleetlet/handoff"}) {
  return loadSystemManifest(FLEETLET_SYSTEM_MANIFEST, options);
}

TEST(SystemAppsTest, TheShippedManifestRunsBothServicesInTheNodesNetworkWithTheHandoffDir) {
  auto system = shipped();
  ASSERT_TRUE(system) << system.error().message();
  ASSERT_EQ(system->apps.size(), 2u);
  for (const std::string name : {"fleetlet-streams", "fleetlet-blobs"}) {
    const auto& app = system->apps.at(name);
    EXPECT_EQ(app.network.mode, manifest::Network::Mode::kHost) << name;
    EXPECT_EQ(app.restart, manifest::RestartPolicy::kAlways) << name;
    ASSERT_EQ(app.volumes.size(), 1u) << name;
    EXPECT_EQ(app.volumes[0].path, "/data");
    ASSERT_EQ(app.host_mounts.size(), 1u) << name;
    EXPECT_EQ(app.host_mounts[0].source, "/run/fleetlet/handoff");
    EXPECT_EQ(app.host_mounts[0].path, kHandoffMountPath);
    // The service's handoff socket is in the mounted directory.
    bool handoff_in_dir = false;
    for (size_t i = 0; i + 1 < app.args.size(); ++i) {
      if (app.args[i] == "--handoff-socket") {
        handoff_in_dir = app.args[i + 1].starts_with(std::string(kHandoffMountPath) + "/");
      }
    }
    EXPECT_TRUE(handoff_in_dir) << name;
  }
  EXPECT_EQ(system->apps.at("fleetlet-streams").image, "fleetlet.local/fleetlet/streams:1");
  EXPECT_EQ(system->apps.at("fleetlet-blobs").image, "fleetlet.local/fleetlet/blobs:1");

  // The mount reaches the container's spec.
  auto spec = ocispec::buildSpec(system->apps.at("fleetlet-streams"), oci::ImageConfig{},
                                 {.container_id = "c", .ns = "n", .volumes_root = "/v"});
  ASSERT_TRUE(spec) << spec.error().message();
  bool mounted = false;
  for (const auto& m : (*spec)["mounts"]) {
    if (m["destination"] == kHandoffMountPath && m["source"] == "/run/fleetlet/handoff") {
      mounted = true;
    }
  }
  EXPECT_TRUE(mounted) << (*spec)["mounts"].dump();
}

TEST(SystemAppsTest, TheSpecHashFollowsTheHandoffDirAndTheImageDigest) {
  auto a = shipped();
  auto b = shipped({.handoff_dir = "/other"});
  auto c = shipped({.handoff_dir = "/run/fleetlet/handoff",
                    .image_digests = {{"fleetlet.local/fleetlet/streams:1", "sha256:ab"}}});
  auto again = shipped();
  ASSERT_TRUE(a && b && c && again);
  const auto hash = [](const auto& s, const char* app) { return s->apps.at(app).spec_hash; };
  EXPECT_EQ(hash(a, "fleetlet-streams"), hash(again, "fleetlet-streams")) << "stable";
  EXPECT_NE(hash(a, "fleetlet-streams"), hash(b, "fleetlet-streams"));
  EXPECT_NE(hash(a, "fleetlet-streams"), hash(c, "fleetlet-streams")) << "a new image";
  EXPECT_EQ(hash(a, "fleetlet-blobs"), hash(c, "fleetlet-blobs")) << "its image is the same";
}

TEST(SystemAppsTest, AMissingOrBadSystemManifestIsAnErrorNamingIt) {
  auto missing = loadSystemManifest("/nonexistent/system.yaml", {});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent/system.yaml"), std::string::npos);
  auto dir = testing::TempDir::create("system-apps");
  ASSERT_TRUE(dir);
  const auto bad = dir->path() / "bad.yaml";
  std::ofstream(bad) << "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps:\n"
                        "  s: {image: x, colour: red}\n";
  auto parsed = loadSystemManifest(bad, {});
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("apps.s.colour: unknown field"), std::string::npos)
      << parsed.error().message();
}

TEST(SystemAppsTest, ADesiredStateNamingASystemAppIsRefusedNamingIt) {
  auto system = shipped();
  ASSERT_TRUE(system);
  auto ok = parse(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 3\napps:\n"
      "  camera: {image: busybox}\n");
  EXPECT_TRUE(checkNoSystemApps(ok, *system));
  auto shadow = parse(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 3\napps:\n"
      "  camera: {image: busybox}\n  fleetlet-streams: {image: busybox}\n");
  auto st = checkNoSystemApps(shadow, *system);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(
      st.error().message().find("apps.fleetlet-streams: \"fleetlet-streams\" is a system app"),
      std::string::npos)
      << st.error().message();
}

TEST(SystemAppsTest, MergingKeepsTheDesiredRevisionAndEveryApp) {
  auto system = shipped();
  ASSERT_TRUE(system);
  auto desired = parse(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 7\nrollback: {window: 60s}\napps:\n"
      "  ui: {image: busybox, dependsOn: [camera]}\n  camera: {image: busybox}\n");
  auto merged = merge(&desired, *system);
  EXPECT_EQ(merged->revision, 7);
  EXPECT_EQ(merged->rollback_window, desired.rollback_window);
  EXPECT_EQ(merged->apps.size(), 4u);
  EXPECT_EQ(merged->apps.at("camera").spec_hash, desired.apps.at("camera").spec_hash);
  EXPECT_EQ(merged->apps.at("fleetlet-blobs").spec_hash,
            system->apps.at("fleetlet-blobs").spec_hash);
  EXPECT_EQ(merged->start_order,
            (std::vector<std::string>{"fleetlet-streams", "fleetlet-blobs", "camera", "ui"}));

  auto alone = merge(nullptr, *system);
  EXPECT_EQ(alone->revision, 0);
  EXPECT_EQ(alone->apps.size(), 2u);

  // A state accepted before a name became a system app's: the system app wins.
  auto old = parse(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 2\napps:\n"
      "  fleetlet-blobs: {image: busybox}\n  camera: {image: busybox}\n");
  auto won = merge(&old, *system);
  EXPECT_EQ(won->apps.at("fleetlet-blobs").image, "fleetlet.local/fleetlet/blobs:1");
  EXPECT_EQ(won->apps.size(), 3u);
  EXPECT_EQ(std::count(won->start_order.begin(), won->start_order.end(), "fleetlet-blobs"), 1);
}

}  // namespace
}  // namespace fleetlet::system_apps
