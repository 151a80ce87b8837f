// Issue 10: the node services as system apps. fleetletd imports fleetlet/streams and
// fleetlet/blobs from their OCI archives (hack/build-images.sh --system), runs them as
// containers from manifests/system/ beside the desired state, and hands every app that lists a
// service a listener on its own localhost. Real fleetletd, containerd, runc, CNI plugins and
// the services in containers.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "fleetletd_fixture.h"

namespace fleetlet {
namespace {

using fleetletd_testing::countOf;
using fleetletd_testing::FleetletdTest;
using fleetletd_testing::lines;
using fleetletd_testing::readFile;
using testing::TempDir;
using testing::TestNodeNetwork;
using namespace std::chrono_literals;

const std::set<std::string> kSystemApps = {"fleetlet-streams", "fleetlet-blobs"};

// A TCP port on 127.0.0.1 that was free a moment ago.
uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

void replaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// An environment variable the test runner sets (tests/CMakeLists.txt); empty when unset.
std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Listening TCP sockets on `port` inside the namespace at `netns` (ss).
int listenersOn(const std::filesystem::path& netns, uint16_t port) {
  auto out = runCommand(
      {"nsenter", "--net=" + netns.string(), "ss", "-Hltn", "sport = :" + std::to_string(port)});
  return out ? static_cast<int>(lines(out->out).size()) : -1;
}

class SystemAppsTest : public FleetletdTest {
 protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::create("fleetlet-system-apps-images");
    ASSERT_TRUE(dir);
    images_dir_ = std::make_unique<TempDir>(std::move(*dir));
    const std::string source = env("FLEETLET_SOURCE_DIR");
    const std::string binary = env("FLEETLET_BINARY_DIR");
    auto built = runCommand({source + "/hack/build-images.sh", "--system", binary, "--out",
                             images_dir_->path().string()});
    ASSERT_TRUE(built) << built.error().message();
    ASSERT_TRUE(built->status.success()) << built->err;
  }
  static void TearDownTestSuite() { images_dir_.reset(); }

  // The shipped system manifest with the services' host listeners on free ports (the test's
  // node shares the host's loopback), and fleetletd started with it.
  void startWithSystemApps() {
    ASSERT_NE(images_dir_, nullptr);
    if (system_manifest_.empty()) {
      std::string text = readFile(std::filesystem::path(env("FLEETLET_SOURCE_DIR")) / "manifests" /
                                  "system" / "node-services.yaml");
      ASSERT_NE(text.find("127.0.0.1:4454"), std::string::npos);
      events_port_ = freePort();
      blobs_port_ = freePort();
      // Each address with its closing quote: a port put in by an earlier replacement (e.g.
      // 44571) must not match a later one ("127.0.0.1:4457"), or fleetlet-streams gets a
      // mangled --listen and exits 2 on every start.
      replaceAll(text, "127.0.0.1:4454\"", fmt::format("127.0.0.1:{}\"", events_port_));
      replaceAll(text, "127.0.0.1:4457\"", fmt::format("127.0.0.1:{}\"", freePort()));
      replaceAll(text, "127.0.0.1:4455\"", fmt::format("127.0.0.1:{}\"", blobs_port_));
      ASSERT_EQ(text.find("127.0.0.1:4454\""), std::string::npos);
      system_manifest_ = dir_->path() / "system.yaml";
      std::ofstream(system_manifest_) << text;
      streams_port_ = std::to_string(events_port_);
    }
    startAgent({"--system-manifest", system_manifest_.string(), "--system-images",
                (images_dir_->path()).string(), "--handoff-dir",
                (dir_->path() / "handoff").string()});
  }

  // `apps` and the system apps run, and nothing else.
  bool waitRunningWithSystem(std::set<std::string> apps, std::chrono::milliseconds t = 90s) {
    apps.insert(kSystemApps.begin(), kSystemApps.end());
    return waitRunning(apps, t);
  }

  // The app as the local API reports it; an empty object when it is not listed.
  Json appStatus(const std::string& app) {
    auto apps = apiApps();
    auto it = apps.find(app);
    return it == apps.end() ? Json::object() : it->second;
  }

  std::string appLog(const std::string& app) {
    return readFile(dataDir() / "logs" / app / "current.log");
  }

  // A busybox shell loop publishing one event every 50 ms, printing ok or FAIL per request.
  std::string publishLoop() const {
    return "while true; do if wget -q -O /dev/null --header 'Content-Type: application/json' "
           "--post-data '{\\\"data\\\":[{\\\"semantics\\\":\\\"loop\\\",\\\"name\\\":\\\"n\\\","
           "\\\"payload\\\":1}]}' ${AX_EVENT_SERVICE_URI}v1/events/publish; then echo ok; else "
           "echo FAIL; fi; sleep 0.05; done";
  }

  static std::unique_ptr<TempDir> images_dir_;  // NOLINT(*-non-const-global-variables): per suite
  std::filesystem::path system_manifest_;
  uint16_t events_port_ = 0;
  uint16_t blobs_port_ = 0;
};

std::unique_ptr<TempDir> SystemAppsTest::images_dir_;  // NOLINT(*-non-const-global-variables)

// From inside busybox apps: `wget` publishes to localhost:4454 and the stored event carries
// the app's name (also when the body names another app); an app listing only events is refused
// on 4455; an app listing nothing finds nothing. fleetletd killed with -9 and started again
// while an app publishes in a loop: the services keep running (same containers), every
// listener is handed over again and none is duplicated, the app sees no error. A removed app's
// listeners and namespace go.
TEST_F(SystemAppsTest, AppsReachTheServiceContainersOnTheirOwnLocalhost) {
  startWithSystemApps();
  const std::string publish =
      "wget -q -O- --header 'Content-Type: application/json' --post-data "
      "'{\\\"data\\\":[{\\\"semantics\\\":\\\"demo\\\",\\\"name\\\":\\\"n\\\",\\\"payload\\\":1}]}'"
      " ${AX_EVENT_SERVICE_URI}v1/events/publish 2>&1; echo wget: $?; "
      "wget -q -O- http://localhost:4455/api/v1/blobs/ 2>&1; echo blobs: $?; sleep 1000";
  std::string pose = publish;
  pose.replace(pose.find("\\\"payload\\\""), 0, "\\\"sourceApp\\\":\\\"pub\\\",");
  apply(manifest(1, busyboxApp("pub", publish, "    services: [events]\n") +
                        busyboxApp("other", pose, "    services: [events]\n") +
                        busyboxApp("loop", publishLoop(), "    services: [events]\n") +
                        busyboxApp("quiet", "sleep 1000")));
  ASSERT_TRUE(waitRunningWithSystem({"pub", "other", "loop", "quiet"})) << agentLog();

  // The services run as containers of the system apps, their data in volumes.
  for (const auto& app : kSystemApps) EXPECT_FALSE(containerOf(app).empty()) << app;
  ASSERT_TRUE(testing::waitFor(
      [&] { return streamsEvents().find("\"sourceApp\":\"pub\"") != std::string::npos; }, 60s))
      << "events: " << streamsEvents() << "\npub: " << appLog("pub") << "\n"
      << appLog("fleetlet-streams") << agentLog();
  EXPECT_TRUE(
      std::filesystem::exists(dataDir() / "volumes" / "fleetlet-streams" / "data" / "events.db"));
  EXPECT_TRUE(std::filesystem::exists(dir_->path() / "handoff" / "streams.sock"));
  EXPECT_TRUE(std::filesystem::exists(dir_->path() / "handoff" / "blobs.sock"));

  ASSERT_TRUE(
      testing::waitFor([&] { return appLog("pub").find("blobs: ") != std::string::npos; }, 20s));
  EXPECT_NE(appLog("pub").find("Connection refused"), std::string::npos)
      << "pub lists only events: 4455 is refused\n"
      << appLog("pub");
  const auto pub = net_->netnsDir() / "fleetlet-pub";
  const auto quiet = net_->netnsDir() / "fleetlet-quiet";
  EXPECT_TRUE(TestNodeNetwork::canConnect(pub, "127.0.0.1", 4454));
  EXPECT_FALSE(TestNodeNetwork::canConnect(pub, "127.0.0.1", 4455)) << "blobs not listed";
  EXPECT_FALSE(TestNodeNetwork::canConnect(pub, "127.0.0.1", 4457)) << "logs not listed";
  EXPECT_FALSE(TestNodeNetwork::canConnect(quiet, "127.0.0.1", 4454)) << "nothing listed";
  EXPECT_EQ(listenersOn(pub, 4454), 1);
  EXPECT_FALSE(TestNodeNetwork::canConnect(net_->netnsDir() / "fleetlet-other",
                                           net_->appAddress("pub"), 4454))
      << "a listener is on its app's loopback only";
  ASSERT_TRUE(testing::waitFor(
      [&] { return countOf(streamsEvents(), "\"sourceApp\":\"other\"") == 1; }, 20s))
      << streamsEvents();
  EXPECT_EQ(countOf(streamsEvents(), "\"sourceApp\":\"pub\""), 1u) << "other cannot pose as pub";

  // kill -9 and restart of fleetletd while loop publishes and a probe connects every 10 ms.
  const auto services_before = tasks();
  std::atomic<bool> probing{true};
  std::atomic<int> refused{0};
  std::atomic<int> probes{0};
  std::jthread probe([&](const std::stop_token& stop) {
    while (probing && !stop.stop_requested()) {
      if (!TestNodeNetwork::canConnect(pub, "127.0.0.1", 4454)) ++refused;
      ++probes;
      std::this_thread::sleep_for(10ms);
    }
  });
  const size_t ok_before = countOf(appLog("loop"), " ok");
  const size_t handed_before = countOf(agentLog(), "listeners to fleetlet-streams");
  killAgent();
  std::this_thread::sleep_for(500ms);
  startWithSystemApps();
  ASSERT_TRUE(testing::waitFor(
      [&] { return countOf(agentLog(), "listeners to fleetlet-streams") > handed_before; }, 30s))
      << agentLog();
  ASSERT_TRUE(testing::waitFor([&] { return listenersOn(pub, 4454) == 1; }, 10s))
      << listenersOn(pub, 4454);
  ASSERT_TRUE(
      testing::waitFor([&] { return countOf(appLog("loop"), " ok") >= ok_before + 20; }, 30s))
      << appLog("loop");
  probing = false;
  probe.join();
  EXPECT_EQ(refused.load(), 0) << "of " << probes.load() << " probes";
  EXPECT_GT(probes.load(), 10);
  EXPECT_EQ(countOf(appLog("loop"), "FAIL"), 0u) << appLog("loop");
  EXPECT_EQ(listenersOn(net_->netnsDir() / "fleetlet-loop", 4454), 1);
  auto services_after = tasks();
  for (const auto& app : kSystemApps) {
    EXPECT_EQ(services_after[containerOf(app)], services_before.at(containerOf(app)))
        << app << " kept running in the same container";
  }

  // Removed: its listeners and namespace go.
  apply(manifest(2, busyboxApp("quiet", "sleep 1000") +
                        busyboxApp("other", pose, "    services: [events]\n")));
  ASSERT_TRUE(testing::waitFor([&] { return !std::filesystem::exists(pub); }, 30s)) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] { return !std::filesystem::exists(net_->netnsDir() / "fleetlet-loop"); }, 30s));
  EXPECT_TRUE(waitRunningWithSystem({"other", "quiet"}, 30s)) << agentLog();
  EXPECT_EQ(agent_->poll(), std::nullopt);
}

// A desired state can neither shadow a system app (a manifest naming one is refused, naming it,
// and changes nothing) nor remove one (an empty manifest leaves them running).
TEST_F(SystemAppsTest, AManifestCanNeitherShadowNorRemoveASystemApp) {
  startWithSystemApps();
  apply(manifest(1, busyboxApp("a", "sleep 1000")));
  ASSERT_TRUE(waitRunningWithSystem({"a"})) << agentLog();
  const auto before = containers();
  const auto running = tasks();

  apply(manifest(2, busyboxApp("b", "sleep 1000") +
                        busyboxApp("fleetlet-streams", "sleep 1000", "    services: [events]\n")));
  const std::string why = "apps.fleetlet-streams: \"fleetlet-streams\" is a system app";
  ASSERT_TRUE(testing::waitFor(
      [&] {
        for (const auto& e : apiEvents(0)) {
          if (e.value("kind", "") == "rejected" &&
              e.value("message", "").find(why) != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      20s))
      << agentLog();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(containers(), before);
  EXPECT_EQ(tasks(), running);
  EXPECT_NE(apiGet("/v1/status").second.find("\"desiredRevision\":1"), std::string::npos)
      << apiGet("/v1/status").second;

  apply(manifest(3, "  {}\n"));
  ASSERT_TRUE(testing::waitFor([&] { return containerOf("a").empty(); }, 30s)) << agentLog();
  for (const auto& app : kSystemApps) {
    EXPECT_EQ(tasks()[containerOf(app)], running.at(containerOf(app))) << app << " untouched";
  }
  EXPECT_EQ(appStatus("fleetlet-streams").value("state", ""), "running");
  EXPECT_EQ(appStatus("fleetlet-blobs").value("state", ""), "running");
  // The API marks the system apps, and only them.
  apply(manifest(4, busyboxApp("c", "sleep 1000")));
  ASSERT_TRUE(waitRunningWithSystem({"c"})) << agentLog();
  for (const auto& [name, status] : apiApps()) {
    EXPECT_EQ(status.value("system", false), kSystemApps.contains(name)) << status.dump();
  }
}

// The fleetlet-streams container stopped under an app publishing in a loop and started again
// by its restart policy: the app sees no error (its connections wait in the backlog of the
// listener fleetletd keeps), and every acknowledged event is stored once.
TEST_F(SystemAppsTest, AStreamsContainerRestartIsInvisibleToAnAppUsingIt) {
  startWithSystemApps();
  apply(manifest(1, busyboxApp("pub", publishLoop(), "    services: [events]\n")));
  ASSERT_TRUE(waitRunningWithSystem({"pub"})) << appLog("fleetlet-streams") << agentLog();
  ASSERT_TRUE(testing::waitFor([&] { return countOf(appLog("pub"), " ok") >= 10; }, 60s))
      << appLog("pub") << appLog("fleetlet-streams");

  const std::string streams = containerOf("fleetlet-streams");
  const std::string pid_before = tasks()[streams].first;
  // SIGTERM (ctr's default): the service finishes the requests it accepted and exits; the
  // restart policy (always) starts it again after its backoff.
  ASSERT_TRUE(containerd_->ctrOk({"tasks", "kill", streams}, ns_));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto t = tasks();
        return t.contains(streams) && t[streams].second == "RUNNING" &&
               t[streams].first != pid_before;
      },
      30s))
      << agentLog();
  EXPECT_EQ(appStatus("fleetlet-streams").value("restarts", 0), 1);
  const size_t at_restart = countOf(appLog("pub"), " ok");
  ASSERT_TRUE(
      testing::waitFor([&] { return countOf(appLog("pub"), " ok") >= at_restart + 20; }, 30s))
      << appLog("pub") << agentLog();

  apply(manifest(2, "  {}\n"));
  ASSERT_TRUE(testing::waitFor([&] { return containerOf("pub").empty(); }, 30s)) << agentLog();
  const std::string printed = appLog("pub");
  EXPECT_EQ(countOf(printed, "FAIL"), 0u) << printed;
  const size_t acknowledged = countOf(printed, " ok");
  const size_t stored = countOf(streamsEvents(), "\"sourceApp\":\"pub\"");
  // The last request may have been stored and its app stopped before it printed "ok".
  EXPECT_GE(stored, acknowledged);
  EXPECT_LE(stored, acknowledged + 1);
}

// The ActyxOS SDK suite (tests/stream-sidecar/node/test.js, @actyx/os-sdk 0.3.1) from inside a
// container (the host's node in an image from scratch, hack/build-images.sh --node-sdk) that
// lists events and logs: it finds the services through fleetletd's AX_* variables, and every
// event it reads is its own (sourceApp).
TEST_F(SystemAppsTest, TheActyxOsSdkSuitePassesFromAContainerOnItsOwnEvents) {
  auto tools = runCommand({"sh", "-c", "command -v node && command -v npm"});
  // hack/install-deps.sh installs them: missing is a failure, not a skip.
  ASSERT_TRUE(tools && tools->status.success()) << "node and npm are not installed";
  const std::string source = env("FLEETLET_SOURCE_DIR");
  auto installed =
      runCommand({source + "/tests/stream-sidecar/node/install-sdk.sh", FLEETLET_NPM_CACHE});
  ASSERT_TRUE(installed && installed->status.success())
      << (installed ? installed->err : installed.error().message());
  auto built = runCommand({source + "/hack/build-images.sh", "--node-sdk", FLEETLET_NPM_CACHE,
                           "--out", dir_->path().string()});
  ASSERT_TRUE(built && built->status.success()) << (built ? built->err : built.error().message());
  ASSERT_TRUE(
      containerd_->ctrOk({"images", "import", (dir_->path() / "node-sdk-oci.tar").string()}, ns_));

  startWithSystemApps();
  apply(manifest(1,
                 "  sdk:\n    image: fleetlet.test/fleetlet-test/node-sdk:1\n"
                 "    services: [events, logs]\n    env: {SDK_EXPECT_APP: sdk}\n"
                 "    restart: {policy: never}\n"));
  ASSERT_TRUE(
      testing::waitFor([&] { return appStatus("sdk").value("state", "") == "exited"; }, 120s))
      << appLog("sdk") << agentLog();
  EXPECT_EQ(appStatus("sdk").value("lastExitCode", -1), 0) << appLog("sdk");
  EXPECT_NE(appLog("sdk").find("node SDK test: all checks passed"), std::string::npos)
      << appLog("sdk");
  EXPECT_EQ(countOf(streamsEvents(), "\"sourceApp\":\"sdk\""), 12u) << streamsEvents();
}

// The photo story of hack/demo.sh from manifests/examples/photos.yaml as shipped (only the
// image's registry differs): the camera's photos reach the blob service through its own
// listener (sourceApp camera), the inspector follows the metadata events on its listener and
// fetches each photo, and a photo read back on the host is byte-identical to what the camera
// sent.
TEST_F(SystemAppsTest, ThePhotoStoryRunsFromOneManifest) {
  std::string photos = readFile(std::filesystem::path(env("FLEETLET_SOURCE_DIR")) / "manifests" /
                                "examples" / "photos.yaml");
  ASSERT_NE(photos.find("127.0.0.1:5000/fleetlet-test/busybox:1"), std::string::npos);
  replaceAll(photos, "127.0.0.1:5000/fleetlet-test/busybox:1", images_->busybox());
  startWithSystemApps();
  apply(photos);
  ASSERT_TRUE(waitRunningWithSystem({"camera", "inspector"})) << agentLog();
  ASSERT_TRUE(
      testing::waitFor([&] { return countOf(appLog("inspector"), "inspector: photo ") >= 2; }, 60s))
      << "camera: " << appLog("camera") << "\ninspector: " << appLog("inspector");
  EXPECT_EQ(countOf(appLog("camera"), "failed"), 0u) << appLog("camera");
  EXPECT_EQ(countOf(appLog("inspector"), "failed"), 0u) << appLog("inspector");
  // Every photo is 543 bytes of JPEG plus a 22-byte comment segment.
  EXPECT_NE(appLog("inspector").find(" 565 bytes"), std::string::npos) << appLog("inspector");

  // The metadata events, read on the host: the photos are camera's.
  const std::string events = streamsEvents();
  EXPECT_GE(countOf(events, "\"semantics\":\"com.actyx.os.blobs.metadata\""), 2u) << events;
  EXPECT_GE(countOf(events, "\"sourceApp\":\"camera\""), 2u) << events;
  EXPECT_NE(events.find("com.example.inspection-photos"), std::string::npos) << events;
  const std::string marker = "\"handle\":\"";
  const auto at = events.find(marker);
  ASSERT_NE(at, std::string::npos);
  const std::string handle =
      events.substr(at + marker.size(), events.find('"', at + marker.size()) - at - marker.size());
  EXPECT_NE(appLog("inspector").find("inspector: photo " + handle + " 565 bytes"),
            std::string::npos)
      << appLog("inspector");

  http::Client host;
  auto got = host.send(
      {.url = "http://127.0.0.1:" + std::to_string(blobs_port_) + "/api/v1/blobs/" + handle});
  ASSERT_TRUE(got && got->status == 200) << (got ? got->body : got.error().message());
  // What the camera sent as shot 1 (the first metadata event is its first photo).
  const std::string manifest_b64 = "PHOTO_JPEG_BASE64: \"";
  const auto b = photos.find(manifest_b64) + manifest_b64.size();
  auto decoded = runCommand({"sh", "-c", "printf '%s' \"$1\" | base64 -d | tail -c +3", "sh",
                             photos.substr(b, photos.find('"', b) - b)});
  ASSERT_TRUE(decoded && decoded->status.success());
  const std::string expected =
      std::string("\xff\xd8\xff\xfe\x00\x14", 6) + "camera shot 000001" + decoded->out;
  EXPECT_EQ(got->body.size(), 565u);
  EXPECT_TRUE(got->body == expected) << "the fetched photo differs from shot 1";
}

}  // namespace
}  // namespace fleetlet
