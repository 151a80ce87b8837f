// Valid manifests: every field, its defaults and the start order.
#include "manifest/parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace fleetlet::manifest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using testing::kDesignExample;
using testing::withApps;

NodeState parseOk(std::string_view text) {
  auto state = parseNodeState(text);
  EXPECT_TRUE(state) << state.error().message() << "\n" << text;
  return state ? *state : NodeState{};
}

TEST(ParseTest, DesignExample) {
  NodeState s = parseOk(kDesignExample);
  EXPECT_EQ(s.revision, 7);
  ASSERT_EQ(s.apps.size(), 3u);

  const App& camera = s.apps.at("camera");
  EXPECT_EQ(camera.name, "camera");
  EXPECT_EQ(camera.runtime, Runtime::kContainer);
  EXPECT_EQ(camera.image, "127.0.0.1:5000/acme/camera:1.4");
  EXPECT_THAT(camera.args, ElementsAre("/bin/camera", "--fps", "2"));
  EXPECT_EQ(camera.env, (std::map<std::string, std::string>{{"CAMERA_ID", "cam-7"}}));
  EXPECT_EQ(camera.resources.cpu, 0.5);
  EXPECT_EQ(camera.resources.memory_bytes, 64 * 1024 * 1024);
  EXPECT_EQ(camera.resources.pids, 64);
  EXPECT_EQ(camera.restart, RestartPolicy::kAlways);
  ASSERT_TRUE(camera.health);
  EXPECT_EQ(camera.health->kind, HealthCheck::Kind::kHttp);
  EXPECT_EQ(camera.health->port, 8080);
  EXPECT_EQ(camera.health->path, "/healthz");
  EXPECT_EQ(camera.health->interval, 10s);
  EXPECT_EQ(camera.health->timeout, 2s);
  EXPECT_EQ(camera.health->failures, 3);
  EXPECT_THAT(camera.services, ElementsAre("blobs", "events", "logs"));
  EXPECT_EQ(camera.network.egress, Network::Egress::kNone);
  ASSERT_EQ(camera.network.expose.size(), 1u);
  EXPECT_EQ(camera.network.expose[0].port, 8080);
  EXPECT_EQ(camera.network.expose[0].host_port, 18080);
  EXPECT_EQ(camera.network.expose[0].protocol, "tcp");
  ASSERT_EQ(camera.volumes.size(), 1u);
  EXPECT_EQ(camera.volumes[0].name, "photos");
  EXPECT_EQ(camera.volumes[0].path, "/data");
  EXPECT_FALSE(camera.volumes[0].read_only);
  EXPECT_TRUE(camera.depends_on.empty());
  EXPECT_EQ(camera.spec_hash.size(), 64u);

  const App& plc = s.apps.at("plc-bridge");
  EXPECT_EQ(plc.runtime, Runtime::kNative);
  ASSERT_TRUE(plc.exec);
  EXPECT_EQ(plc.exec->path, "/opt/plc/bridge");
  EXPECT_THAT(plc.exec->args, ElementsAre("--bus", "1"));

  const App& ui = s.apps.at("inspector-ui");
  EXPECT_EQ(ui.runtime, Runtime::kWebview);
  ASSERT_TRUE(ui.bundle);
  EXPECT_EQ(ui.bundle->url, "https://example.com/ui-2.1.tar.gz");
  EXPECT_EQ(ui.bundle->sha256, std::string("0123456789abcdef") + "0123456789abcdef" +
                                   "0123456789abcdef" + "0123456789abcdef");

  EXPECT_THAT(s.start_order, ElementsAre("camera", "inspector-ui", "plc-bridge"));
}

TEST(ParseTest, DefaultsOfAMinimalApp) {
  NodeState s = parseOk(withApps("a: {image: busybox}"));
  const App& a = s.apps.at("a");
  EXPECT_EQ(a.runtime, Runtime::kContainer);
  EXPECT_TRUE(a.args.empty());
  EXPECT_TRUE(a.env.empty());
  EXPECT_EQ(a.user, "");
  EXPECT_EQ(a.working_dir, "");
  EXPECT_FALSE(a.resources.cpu);
  EXPECT_FALSE(a.resources.memory_bytes);
  EXPECT_FALSE(a.resources.pids);
  EXPECT_EQ(a.restart, RestartPolicy::kAlways);
  EXPECT_FALSE(a.health);
  EXPECT_TRUE(a.services.empty());
  EXPECT_EQ(a.network.egress, Network::Egress::kAll);
  EXPECT_TRUE(a.network.expose.empty());
  EXPECT_TRUE(a.volumes.empty());
  EXPECT_TRUE(a.depends_on.empty());
  EXPECT_EQ(a.update, UpdateStrategy::kDownloadThenKill);
  EXPECT_EQ(a.stop_grace, 10s);
  EXPECT_FALSE(a.exec);
  EXPECT_FALSE(a.bundle);
}

TEST(ParseTest, EveryContainerField) {
  NodeState s = parseOk(withApps(R"(base: {image: busybox}
full:
  runtime: container
  image: 127.0.0.1:5000/fleetlet-test/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  args: [sh, -c, "echo hi"]
  env: {A: "1", b_2: "on", EMPTY: ""}
  user: "1000:100"
  workingDir: /srv/app/
  resources: {cpu: 500m, memory: 1.5Gi, pids: 32}
  restart: {policy: on-failure}
  health: {tcp: {port: 9000}, interval: 1m30s, timeout: 250ms, failures: 5}
  services: [logs, events]
  network:
    egress: all
    expose:
      - {port: 80, hostPort: 8081}
      - {port: 53, protocol: udp}
  volumes:
    - {name: cache, path: /var/cache/app, readOnly: true}
    - {name: data-1, path: /data}
  dependsOn: [base]
  update: {strategy: kill-then-download}
  stopGracePeriod: 2h)"));
  const App& a = s.apps.at("full");
  EXPECT_EQ(a.image,
            "127.0.0.1:5000/fleetlet-test/busybox@sha256:"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_THAT(a.args, ElementsAre("sh", "-c", "echo hi"));
  EXPECT_EQ(a.env, (std::map<std::string, std::string>{{"A", "1"}, {"b_2", "on"}, {"EMPTY", ""}}));
  EXPECT_EQ(a.user, "1000:100");
  EXPECT_EQ(a.working_dir, "/srv/app");
  EXPECT_EQ(a.resources.cpu, 0.5);
  EXPECT_EQ(a.resources.memory_bytes, 1536LL * 1024 * 1024);
  EXPECT_EQ(a.resources.pids, 32);
  EXPECT_EQ(a.restart, RestartPolicy::kOnFailure);
  ASSERT_TRUE(a.health);
  EXPECT_EQ(a.health->kind, HealthCheck::Kind::kTcp);
  EXPECT_EQ(a.health->port, 9000);
  EXPECT_EQ(a.health->interval, 90s);
  EXPECT_EQ(a.health->timeout, 250ms);
  EXPECT_EQ(a.health->failures, 5);
  EXPECT_THAT(a.services, ElementsAre("events", "logs"));
  EXPECT_EQ(a.network.egress, Network::Egress::kAll);
  ASSERT_EQ(a.network.expose.size(), 2u);
  EXPECT_EQ(a.network.expose[0].host_port, 8081);
  EXPECT_EQ(a.network.expose[1].port, 53);
  EXPECT_EQ(a.network.expose[1].host_port, 53);  // defaults to the app's port
  EXPECT_EQ(a.network.expose[1].protocol, "udp");
  ASSERT_EQ(a.volumes.size(), 2u);
  EXPECT_TRUE(a.volumes[0].read_only);
  EXPECT_EQ(a.volumes[1].name, "data-1");
  EXPECT_THAT(a.depends_on, ElementsAre("base"));
  EXPECT_EQ(a.update, UpdateStrategy::kKillThenDownload);
  EXPECT_EQ(a.stop_grace, 2h);
  EXPECT_THAT(s.start_order, ElementsAre("base", "full"));
}

TEST(ParseTest, HealthProbesAndTheirDefaults) {
  NodeState s = parseOk(withApps(R"(h: {image: busybox, health: {http: {port: 8080}}}
t: {image: busybox, health: {tcp: {port: 1}, interval: 5s}}
e: {image: busybox, health: {exec: {command: [test, -f, /ready]}, failures: 1}})"));
  const HealthCheck& h = *s.apps.at("h").health;
  EXPECT_EQ(h.kind, HealthCheck::Kind::kHttp);
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.interval, 10s);
  EXPECT_EQ(h.timeout, 2s);
  EXPECT_EQ(h.failures, 3);
  EXPECT_EQ(s.apps.at("t").health->interval, 5s);
  const HealthCheck& e = *s.apps.at("e").health;
  EXPECT_EQ(e.kind, HealthCheck::Kind::kExec);
  EXPECT_THAT(e.command, ElementsAre("test", "-f", "/ready"));
  EXPECT_EQ(e.failures, 1);
}

TEST(ParseTest, RestartPoliciesAndRuntimes) {
  NodeState s = parseOk(withApps(R"(a: {image: busybox, restart: {policy: never}}
b: {image: busybox, restart: {policy: always}}
n: {runtime: native, exec: {path: /bin/true}, env: {X: y}, user: "0", workingDir: /tmp}
w: {runtime: webview, bundle: {url: "http://127.0.0.1:8000/ui.tgz", sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, services: [events]})"));
  EXPECT_EQ(s.apps.at("a").restart, RestartPolicy::kNever);
  EXPECT_EQ(s.apps.at("b").restart, RestartPolicy::kAlways);
  EXPECT_EQ(s.apps.at("n").runtime, Runtime::kNative);
  EXPECT_TRUE(s.apps.at("n").exec->args.empty());
  EXPECT_EQ(s.apps.at("w").runtime, Runtime::kWebview);
}

TEST(ParseTest, SandboxLevelOfANativeApp) {
  NodeState s =
      parseOk(withApps(R"(p: {runtime: native, exec: {path: /bin/true}, sandbox: {level: process}}
c: {runtime: native, exec: {path: /bin/true}, sandbox: {level: contained}}
d: {runtime: native, exec: {path: /bin/true}, sandbox: {}}
n: {runtime: native, exec: {path: /bin/true}})"));
  EXPECT_EQ(s.apps.at("p").sandbox->level, SandboxLevel::kProcess);
  EXPECT_EQ(s.apps.at("c").sandbox->level, SandboxLevel::kContained);
  EXPECT_EQ(s.apps.at("d").sandbox->level, SandboxLevel::kSandboxed);
  EXPECT_FALSE(s.apps.at("n").sandbox);
  EXPECT_EQ(canonicalJson(s.apps.at("c"))["sandbox"]["level"], "contained");
  EXPECT_FALSE(canonicalJson(s.apps.at("n")).contains("sandbox"));
  EXPECT_FALSE(canonicalJson(s.apps.at("c"))["sandbox"].contains("capabilities"));

  NodeState caps = parseOk(withApps(
      "b: {runtime: native, exec: {path: /bin/true}, sandbox: {capabilities: [CAP_NET_RAW, "
      "CAP_NET_BIND_SERVICE, CAP_NET_RAW]}}"));
  EXPECT_THAT(caps.apps.at("b").sandbox->capabilities,
              ElementsAre("CAP_NET_BIND_SERVICE", "CAP_NET_RAW"));
  EXPECT_EQ(caps.apps.at("b").sandbox->level, SandboxLevel::kSandboxed);
}

TEST(ParseTest, BundleFromAFileUrl) {
  NodeState s = parseOk(withApps(
      R"(w: {runtime: webview, bundle: {url: "file:///srv/bundles/ui.tgz", sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}})"));
  EXPECT_EQ(s.apps.at("w").bundle->url, "file:///srv/bundles/ui.tgz");
  EXPECT_FALSE(parseNodeState(withApps(
      R"(w: {runtime: webview, bundle: {url: "file://relative/ui.tgz", sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}})")));
}

TEST(ParseTest, DisplayPriorityOfAWebviewApp) {
  const std::string bundle =
      R"(bundle: {url: "file:///srv/ui.tgz", sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})";
  NodeState s =
      parseOk(withApps("w: {runtime: webview, " + bundle + ", display: {priority: 10}}\n" +
                       "v: {runtime: webview, " + bundle + "}"));
  ASSERT_TRUE(s.apps.at("w").display);
  EXPECT_EQ(s.apps.at("w").display->priority, 10);
  EXPECT_FALSE(s.apps.at("v").display);
  // In the spec hash only when set: apps without it hash as before it existed.
  EXPECT_EQ(canonicalJson(s.apps.at("w"))["display"]["priority"], 10);
  EXPECT_FALSE(canonicalJson(s.apps.at("v")).contains("display"));
  NodeState other =
      parseOk(withApps("w: {runtime: webview, " + bundle + ", display: {priority: 11}}"));
  EXPECT_NE(other.apps.at("w").spec_hash, s.apps.at("w").spec_hash);

  auto refused = [&](const std::string& apps, const std::string& message) {
    auto r = parseNodeState(withApps(apps));
    ASSERT_FALSE(r) << apps;
    EXPECT_THAT(r.error().message(), HasSubstr(message)) << r.error().message();
  };
  refused("w: {runtime: webview, " + bundle + ", display: {priority: 1001}}",
          "apps.w.display.priority: 1001 is not in 0..1000");
  refused("w: {runtime: webview, " + bundle + ", display: {priority: -1}}",
          "apps.w.display.priority: -1 is not in 0..1000");
  refused("w: {runtime: webview, " + bundle + ", display: {priority: high}}",
          "apps.w.display.priority");
  refused("w: {runtime: webview, " + bundle + ", display: {prio: 1}}", "apps.w.display.prio");
  refused("c: {image: busybox, display: {priority: 1}}",
          "apps.c.display: not allowed for runtime container");
}

TEST(ParseTest, CpuAndMemorySpellings) {
  NodeState s = parseOk(withApps(R"(a: {image: busybox, resources: {cpu: 2, memory: 8388608}}
b: {image: busybox, resources: {cpu: "0.25", memory: "1G"}}
c: {image: busybox, resources: {cpu: 0.01, memory: 6144Ki}})"));
  EXPECT_EQ(s.apps.at("a").resources.cpu, 2.0);
  EXPECT_EQ(s.apps.at("a").resources.memory_bytes, 8388608);
  EXPECT_EQ(s.apps.at("b").resources.cpu, 0.25);
  EXPECT_EQ(s.apps.at("b").resources.memory_bytes, 1000000000);
  EXPECT_EQ(s.apps.at("c").resources.cpu, 0.01);
  EXPECT_EQ(s.apps.at("c").resources.memory_bytes, 6291456);
}

TEST(ParseTest, NullMeansNotSet) {
  NodeState s = parseOk(withApps("a: {image: busybox, args: ~, health: null, dependsOn: }"));
  EXPECT_TRUE(s.apps.at("a").args.empty());
  EXPECT_FALSE(s.apps.at("a").health);
}

TEST(ParseTest, EmptyAppsIsAValidEmptyNode) {
  NodeState s = parseOk("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 3\napps: {}\n");
  EXPECT_EQ(s.revision, 3);
  EXPECT_TRUE(s.apps.empty());
  EXPECT_TRUE(s.start_order.empty());
}

TEST(ParseTest, JsonManifest) {
  NodeState s = parseOk(R"({"apiVersion": "fleetlet.io/v1", "kind": "NodeState",
    "revision": 9007199254740993,
    "apps": {"a": {"image": "busybox", "resources": {"cpu": "500m", "memory": 16777216}}}})");
  EXPECT_EQ(s.revision, 9007199254740993);
  EXPECT_EQ(s.apps.at("a").resources.memory_bytes, 16777216);
}

TEST(ParseTest, SameHostPortOnTcpAndUdpIsFine) {
  parseOk(withApps(R"(a: {image: busybox, network: {expose: [{port: 53}]}}
b: {image: busybox, network: {expose: [{port: 53, protocol: udp}]}})"));
}

TEST(ParseTest, StartOrderPutsDependenciesFirstTiesByName) {
  NodeState s = parseOk(withApps(R"(web: {image: busybox, dependsOn: [db, cache]}
db: {image: busybox}
cache: {image: busybox, dependsOn: [db]}
zeta: {image: busybox}
alpha: {image: busybox, dependsOn: [zeta]}
mid: {image: busybox})"));
  EXPECT_THAT(s.start_order, ElementsAre("db", "cache", "mid", "web", "zeta", "alpha"));
}

TEST(ParseTest, SourceNamesTheInputInErrors) {
  auto s = parseNodeState("apiVersion: v0\n", "demo.yaml");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "demo.yaml: apiVersion: unsupported \"v0\" (expected fleetlet.io/v1)");
}

TEST(ParseTest, NetworkEgressAllowAndMode) {
  auto s = parseNodeState(
      withApps("db: {image: busybox}\n"
               "a: {image: busybox, network: {egress: local, allow: [fd00::/8, db, 10.1.2.3]}}\n"
               "h: {image: busybox, network: {mode: host}}"));
  ASSERT_TRUE(s) << s.error().message();
  const Network& a = s->apps.at("a").network;
  EXPECT_EQ(a.egress, Network::Egress::kLocal);
  EXPECT_EQ(a.allow, (std::vector<std::string>{"10.1.2.3", "db", "fd00::/8"}));
  EXPECT_EQ(a.mode, Network::Mode::kIsolated);
  EXPECT_EQ(s->apps.at("h").network.mode, Network::Mode::kHost);
  EXPECT_EQ(s->apps.at("db").network.egress, Network::Egress::kAll);

  // The canonical JSON of each app is a valid app again, with the same hash.
  for (const auto& [name, app] : s->apps) {
    Json again = canonicalJson(app);
    again.erase("name");
    std::string others = name == "db" ? "" : "db: {image: busybox}\n";
    auto reparsed = parseNodeState(withApps(others + name + ": " + again.dump()));
    ASSERT_TRUE(reparsed) << name << ": " << reparsed.error().message();
    EXPECT_EQ(reparsed->apps.at(name).spec_hash, app.spec_hash) << name;
  }
}

}  // namespace
}  // namespace fleetlet::manifest
