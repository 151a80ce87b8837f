#include "ocispec/builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "manifest/parse.h"

namespace fleetlet::ocispec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

manifest::App containerApp(std::string name = "camera") {
  manifest::App app;
  app.name = std::move(name);
  app.runtime = manifest::Runtime::kContainer;
  app.image = "127.0.0.1:5000/fleetlet-test/busybox:1";
  return app;
}

oci::ImageConfig busyboxImage() {
  oci::ImageConfig image;
  image.os = "linux";
  image.architecture = "amd64";
  image.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  image.cmd = {"sh"};
  return image;
}

SpecInputs inputs() {
  SpecInputs in;
  in.container_id = "camera-1";
  in.ns = "fleetlet";
  in.volumes_root = "/var/lib/fleetlet/volumes/camera";
  return in;
}

Json build(const manifest::App& app, const oci::ImageConfig& image = busyboxImage(),
           const SpecInputs& in = inputs()) {
  auto spec = buildSpec(app, image, in);
  EXPECT_TRUE(spec) << spec.error().message();
  return spec ? *spec : Json();
}

std::vector<std::string> strings(const Json& array) {
  return array.get<std::vector<std::string>>();
}

TEST(BuildSpecTest, MatchesContainerdDefaults) {
  Json spec = build(containerApp());
  EXPECT_EQ(spec["ociVersion"], "1.0.2-dev");
  EXPECT_EQ(spec["root"], Json({{"path", "rootfs"}}));
  EXPECT_EQ(spec["hostname"], "camera");
  EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
  EXPECT_EQ(spec["process"]["terminal"], false);
  EXPECT_EQ(spec["process"]["rlimits"],
            Json::parse(R"([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])"));
  const auto caps = std::vector<std::string>{
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  for (const char* set : {"bounding", "effective", "permitted"}) {
    EXPECT_EQ(strings(spec["process"]["capabilities"][set]), caps) << set;
  }
  EXPECT_FALSE(spec["process"]["capabilities"].contains("inheritable"));
  EXPECT_FALSE(spec["process"]["capabilities"].contains("ambient"));

  std::vector<std::string> destinations;
  for (const auto& m : spec["mounts"]) destinations.push_back(m["destination"]);
  EXPECT_THAT(destinations,
              ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"));
  EXPECT_EQ(spec["mounts"][5],
            Json::parse(R"({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                            "options": ["nosuid", "noexec", "nodev", "ro"]})"));

  const Json& linux = spec["linux"];
  EXPECT_EQ(linux["cgroupsPath"], "/fleetlet/camera-1");
  EXPECT_EQ(linux["namespaces"], Json::parse(R"([{"type": "pid"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}, {"type": "network"}])"));
  EXPECT_THAT(strings(linux["maskedPaths"]),
              ElementsAre("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                          "/proc/sched_debug", "/sys/firmware", "/proc/scsi"));
  EXPECT_THAT(strings(linux["readonlyPaths"]), ElementsAre("/proc/bus", "/proc/fs", "/proc/irq",
                                                           "/proc/sys", "/proc/sysrq-trigger"));
  const Json& devices = linux["resources"]["devices"];
  EXPECT_EQ(devices[0], Json::parse(R"({"allow": false, "access": "rwm"})"));
  EXPECT_EQ(
      devices[1],
      Json::parse(R"({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})"));
  EXPECT_EQ(devices.size(), 10u);
  EXPECT_FALSE(linux["resources"].contains("cpu"));
  EXPECT_FALSE(linux["resources"].contains("memory"));
  EXPECT_FALSE(linux["resources"].contains("pids"));
}

TEST(BuildSpecTest, ArgsFromAppReplaceEntrypointAndCmd) {
  manifest::App app = containerApp();
  oci::ImageConfig image = busyboxImage();
  image.entrypoint = {"/entry"};
  image.cmd = {"--default"};
  EXPECT_THAT(strings(build(app, image)["process"]["args"]), ElementsAre("/entry", "--default"));
  app.args = {"sh", "-c", "echo hi"};
  EXPECT_THAT(strings(build(app, image)["process"]["args"]), ElementsAre("sh", "-c", "echo hi"));
  image.entrypoint.clear();
  app.args.clear();
  EXPECT_THAT(strings(build(app, image)["process"]["args"]), ElementsAre("--default"));
  image.entrypoint = {"/only-entry"};
  image.cmd.clear();
  EXPECT_THAT(strings(build(app, image)["process"]["args"]), ElementsAre("/only-entry"));
}

TEST(BuildSpecTest, NoCommandIsAnError) {
  oci::ImageConfig image = busyboxImage();
  image.cmd.clear();
  auto spec = buildSpec(containerApp(), image, inputs());
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(spec.error().message(), HasSubstr("app camera: no command"));
}

TEST(BuildSpecTest, EnvImageThenAgentThenAppReplacingInPlace) {
  manifest::App app = containerApp();
  app.env = {{"SHARED", "app"}, {"APP_ONLY", "1"}};
  oci::ImageConfig image = busyboxImage();
  image.env = {"PATH=/bin", "SHARED=image", "IMAGE_ONLY=x=y", "BARE"};
  SpecInputs in = inputs();
  in.extra_env = {{"AX_EVENT_SERVICE_URI", "http://127.0.0.1:4454/api/"}, {"SHARED", "agent"}};
  EXPECT_THAT(strings(build(app, image, in)["process"]["env"]),
              ElementsAre("PATH=/bin", "SHARED=app", "IMAGE_ONLY=x=y", "BARE",
                          "AX_EVENT_SERVICE_URI=http://127.0.0.1:4454/api/", "APP_ONLY=1"));
  app.env.clear();
  EXPECT_THAT(strings(build(app, image, in)["process"]["env"]),
              ElementsAre("PATH=/bin", "SHARED=agent", "IMAGE_ONLY=x=y", "BARE",
                          "AX_EVENT_SERVICE_URI=http://127.0.0.1:4454/api/"));
}

TEST(BuildSpecTest, DefaultPathWhenTheImageHasNone) {
  oci::ImageConfig image = busyboxImage();
  image.env = {"HOME=/root"};
  EXPECT_THAT(strings(build(containerApp(), image)["process"]["env"]),
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOME=/root"));
  image.env.clear();
  EXPECT_THAT(strings(build(containerApp(), image)["process"]["env"]),
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
}

TEST(BuildSpecTest, CwdFromAppThenImageThenRoot) {
  manifest::App app = containerApp();
  oci::ImageConfig image = busyboxImage();
  EXPECT_EQ(build(app, image)["process"]["cwd"], "/");
  image.working_dir = "/image";
  EXPECT_EQ(build(app, image)["process"]["cwd"], "/image");
  app.working_dir = "/app";
  EXPECT_EQ(build(app, image)["process"]["cwd"], "/app");
}

TEST(BuildSpecTest, UserFromAppThenImageNumericOnly) {
  manifest::App app = containerApp();
  oci::ImageConfig image = busyboxImage();
  EXPECT_EQ(build(app, image)["process"]["user"], Json::parse(R"({"uid": 0, "gid": 0})"));
  image.user = "65534";
  EXPECT_EQ(build(app, image)["process"]["user"], Json::parse(R"({"uid": 65534, "gid": 0})"));
  image.user = "1:2";
  EXPECT_EQ(build(app, image)["process"]["user"], Json::parse(R"({"uid": 1, "gid": 2})"));
  app.user = "1000:100";
  EXPECT_EQ(build(app, image)["process"]["user"], Json::parse(R"({"uid": 1000, "gid": 100})"));

  // A name in the image is an error unless the manifest sets a numeric user.
  image.user = "nobody";
  EXPECT_EQ(build(app, image)["process"]["user"]["uid"], 1000);
  app.user.clear();
  auto spec = buildSpec(app, image, inputs());
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(spec.error().message(), HasSubstr("user \"nobody\" from the image config"));
  EXPECT_THAT(spec.error().message(), HasSubstr("apps.camera.user"));
  for (std::string bad : {"www:www", "1000:staff", "-1", "4294967295", "1:", ":1"}) {
    SCOPED_TRACE(bad);
    image.user = bad;
    EXPECT_FALSE(buildSpec(app, image, inputs()));
  }
  image.user.clear();
  app.user = "root";  // a hand-made App; parseNodeState would have refused it
  EXPECT_THAT(buildSpec(app, image, inputs()).error().message(), HasSubstr("from the manifest"));
}

TEST(BuildSpecTest, CgroupLimitsFromResources) {
  manifest::App app = containerApp();
  app.resources.cpu = 0.5;
  app.resources.memory_bytes = 64LL * 1024 * 1024;
  app.resources.pids = 64;
  Json resources = build(app)["linux"]["resources"];
  EXPECT_EQ(resources["cpu"], Json::parse(R"({"quota": 50000, "period": 100000})"));
  EXPECT_EQ(resources["memory"], Json::parse(R"({"limit": 67108864})"));
  EXPECT_EQ(resources["pids"], Json::parse(R"({"limit": 64})"));
  app.resources.cpu = 2;
  EXPECT_EQ(build(app)["linux"]["resources"]["cpu"]["quota"], 200000);
  app.resources.cpu = 0.01;
  EXPECT_EQ(build(app)["linux"]["resources"]["cpu"]["quota"], 1000);
}

TEST(BuildSpecTest, LimitsFromAParsedManifest) {
  auto state = manifest::parseNodeState(R"(apiVersion: fleetlet.io/v1
kind: NodeState
revision: 1
apps:
  limited: {image: busybox, resources: {cpu: 250m, memory: 1.5Gi, pids: 16}})");
  ASSERT_TRUE(state) << state.error().message();
  Json resources = build(state->apps.at("limited"))["linux"]["resources"];
  EXPECT_EQ(resources["cpu"]["quota"], 25000);
  EXPECT_EQ(resources["memory"]["limit"], 1610612736);
  EXPECT_EQ(resources["pids"]["limit"], 16);
}

TEST(BuildSpecTest, VolumesAreRbindMounts) {
  manifest::App app = containerApp();
  app.volumes = {{"photos", "/data", false}, {"calibration", "/etc/camera", true}};
  Json mounts = build(app)["mounts"];
  ASSERT_EQ(mounts.size(), 9u);
  EXPECT_EQ(mounts[7], Json::parse(R"({"destination": "/data", "type": "bind",
      "source": "/var/lib/fleetlet/volumes/camera/photos", "options": ["rbind", "rw"]})"));
  EXPECT_EQ(mounts[8], Json::parse(R"({"destination": "/etc/camera", "type": "bind",
      "source": "/var/lib/fleetlet/volumes/camera/calibration", "options": ["rbind", "ro"]})"));

  SpecInputs in = inputs();
  in.volumes_root = "relative/dir";
  auto spec = buildSpec(app, busyboxImage(), in);
  ASSERT_FALSE(spec);
  EXPECT_THAT(spec.error().message(), HasSubstr("must be an absolute path"));
}

TEST(BuildSpecTest, JoinsTheGivenNetworkNamespace) {
  SpecInputs in = inputs();
  in.netns_path = "/var/run/netns/fleetlet-camera";
  Json namespaces = build(containerApp(), busyboxImage(), in)["linux"]["namespaces"];
  ASSERT_EQ(namespaces.size(), 5u);
  EXPECT_EQ(namespaces[4],
            Json::parse(R"({"type": "network", "path": "/var/run/netns/fleetlet-camera"})"));
  for (size_t i = 0; i < 4; ++i) EXPECT_FALSE(namespaces[i].contains("path"));
}

TEST(BuildSpecTest, AHostsFileIsMountedReadOnlySoLocalhostResolves) {
  SpecInputs in = inputs();
  in.hosts_file = "/var/lib/fleetlet/hosts/camera";
  Json mounts = build(containerApp(), busyboxImage(), in)["mounts"];
  EXPECT_EQ(mounts.back(), Json::parse(R"({"destination": "/etc/hosts", "type": "bind",
      "source": "/var/lib/fleetlet/hosts/camera", "options": ["rbind", "ro"]})"));
  EXPECT_EQ(hostsFile("camera"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tcamera\n");
}

TEST(BuildSpecTest, HostModeHasNoNetworkNamespace) {
  manifest::App app = containerApp();
  app.network.mode = manifest::Network::Mode::kHost;
  SpecInputs in = inputs();
  in.netns_path = "/var/run/netns/fleetlet-camera";  // ignored: the node's network
  Json namespaces = build(app, busyboxImage(), in)["linux"]["namespaces"];
  ASSERT_EQ(namespaces.size(), 4u);
  for (const auto& ns : namespaces) EXPECT_NE(ns["type"], "network") << ns.dump();
}

TEST(BuildSpecTest, RefusesOtherRuntimesAndBadIds) {
  manifest::App native = containerApp();
  native.runtime = manifest::Runtime::kNative;
  EXPECT_THAT(buildSpec(native, busyboxImage(), inputs()).error().message(),
              HasSubstr("only container apps"));
  for (auto [id, ns] : {std::pair{"", "fleetlet"}, {"a/b", "fleetlet"}, {"x", ""}, {"x", ".."}}) {
    SpecInputs in = inputs();
    in.container_id = id;
    in.ns = ns;
    auto spec = buildSpec(containerApp(), busyboxImage(), in);
    ASSERT_FALSE(spec) << id << " " << ns;
    EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument);
  }
}

manifest::App nativeApp() {
  manifest::App app;
  app.name = "plc";
  app.runtime = manifest::Runtime::kNative;
  app.exec = manifest::NativeExec{.path = "/opt/plc/bridge", .args = {"--bus", "1"}};
  return app;
}

Json buildNative(const manifest::App& app, const SpecInputs& in = inputs()) {
  auto spec = buildNativeSpec(app, in);
  EXPECT_TRUE(spec) << spec.error().message();
  return spec ? *spec : Json();
}

TEST(BuildNativeSpecTest, RunsTheHostBinaryOnTheHostRootSandboxedByDefault) {
  manifest::App app = nativeApp();
  app.env = {{"BUS", "2"}, {"PATH", "/opt/plc"}};
  app.resources = {.cpu = 0.5, .memory_bytes = 64 << 20, .pids = 32};
  SpecInputs in = inputs();
  in.extra_env = {{"AX_EVENT_SERVICE_URI", "http://localhost:4454"}};
  in.state_dir = "/var/lib/fleetlet/state/plc";
  Json spec = buildNative(app, in);
  EXPECT_EQ(spec["root"], Json({{"path", "/"}}));
  EXPECT_THAT(strings(spec["process"]["args"]), ElementsAre("/opt/plc/bridge", "--bus", "1"));
  EXPECT_THAT(strings(spec["process"]["env"]),
              ElementsAre("PATH=/opt/plc", "AX_EVENT_SERVICE_URI=http://localhost:4454", "BUS=2"));
  EXPECT_EQ(spec["process"]["cwd"], "/");
  EXPECT_EQ(spec["process"]["user"], Json({{"uid", 0}, {"gid", 0}}));
  EXPECT_EQ(spec["process"]["noNewPrivileges"], true);
  EXPECT_EQ(spec["annotations"]["io.fleetlet.sandbox"], "sandboxed");
  EXPECT_EQ(spec["annotations"]["io.fleetlet.sandbox.state-dir"], "/var/lib/fleetlet/state/plc");
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "/fleetlet/camera-1");
  EXPECT_EQ(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
  EXPECT_EQ(spec["linux"]["resources"]["cpu"]["quota"], 50000);
  EXPECT_EQ(spec["linux"]["resources"]["pids"]["limit"], 32);
  EXPECT_FALSE(spec["linux"].contains("namespaces"));  // the host's network
  EXPECT_TRUE(spec["mounts"].empty());
}

TEST(BuildNativeSpecTest, LevelUserAndNetworkNamespace) {
  manifest::App app = nativeApp();
  app.sandbox = manifest::Sandbox{.level = manifest::SandboxLevel::kContained};
  SpecInputs in = inputs();
  in.netns_path = "/var/run/netns/fleetlet-plc";
  in.native_uid = 61200;
  Json spec = buildNative(app, in);
  EXPECT_EQ(spec["annotations"]["io.fleetlet.sandbox"], "contained");
  EXPECT_EQ(spec["process"]["user"], Json({{"uid", 61200}, {"gid", 61200}}));
  EXPECT_EQ(spec["linux"]["namespaces"],
            Json::parse(R"([{"type": "network", "path": "/var/run/netns/fleetlet-plc"}])"));

  // The manifest's user wins over the allocated one.
  app.user = "1000:1001";
  EXPECT_EQ(buildNative(app, in)["process"]["user"], Json({{"uid", 1000}, {"gid", 1001}}));

  // The process level: the spec's user (root), the host's network, $STATE_DIRECTORY set here.
  app.user.clear();
  app.sandbox->level = manifest::SandboxLevel::kProcess;
  in.state_dir = "/var/lib/fleetlet/state/plc";
  spec = buildNative(app, in);
  EXPECT_EQ(spec["annotations"]["io.fleetlet.sandbox"], "process");
  EXPECT_EQ(spec["process"]["user"], Json({{"uid", 0}, {"gid", 0}}));
  EXPECT_FALSE(spec["linux"].contains("namespaces"));
  EXPECT_THAT(strings(spec["process"]["env"]),
              ::testing::Contains("STATE_DIRECTORY=/var/lib/fleetlet/state/plc"));
}

TEST(BuildNativeSpecTest, ListedCapabilitiesAreAmbientAndInEverySet) {
  manifest::App app = nativeApp();
  EXPECT_FALSE(buildNative(app)["process"]["capabilities"].contains("ambient"));
  app.sandbox = manifest::Sandbox{.capabilities = {"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}};
  Json caps = buildNative(app)["process"]["capabilities"];
  EXPECT_THAT(strings(caps["ambient"]), ElementsAre("CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"));
  EXPECT_THAT(strings(caps["inheritable"]), ElementsAre("CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"));
  for (const char* set : {"bounding", "effective", "permitted"}) {
    EXPECT_THAT(strings(caps[set]), ::testing::Contains("CAP_NET_ADMIN")) << set;
  }
}

TEST(BuildNativeSpecTest, RefusesContainerAppsAndBadIds) {
  EXPECT_THAT(buildNativeSpec(containerApp(), inputs()).error().message(),
              HasSubstr("not a native app"));
  SpecInputs in = inputs();
  in.container_id = "a/b";
  auto spec = buildNativeSpec(nativeApp(), in);
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleetlet::ocispec
