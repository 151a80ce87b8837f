// Rejected manifests: every rule names the field path and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "manifest/parse.h"
#include "test_util.h"

namespace fleetlet::manifest {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::withApps;

struct Bad {
  std::string name;      // test name
  std::string apps;      // YAML lines of `apps`
  std::string expected;  // the start of the error message (the path and the problem)
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }

class BadAppTest : public ::testing::TestWithParam<Bad> {};

TEST_P(BadAppTest, NamesFieldPath) {
  const Bad& b = GetParam();
  auto s = parseNodeState(withApps(b.apps));
  ASSERT_FALSE(s) << "accepted:\n" << withApps(b.apps);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().message(), StartsWith(b.expected));
}

constexpr std::string_view kSha =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string webview(std::string_view extra) {
  return fmt::format(
      "w: {{runtime: webview, bundle: {{url: \"https://x.test/ui.tgz\", sha256: "
      "\"{}\"}}{}}}",
      kSha, extra);
}

const Bad kBadApps[] = {
    // Unknown fields, at every level.
    {"UnknownAppField", "camera: {image: busybox, colour: red}",
     "apps.camera.colour: unknown field"},
    {"UnknownResourcesField", "a: {image: busybox, resources: {gpu: 1}}",
     "apps.a.resources.gpu: unknown field"},
    {"UnknownHealthField", "a: {image: busybox, health: {tcp: {port: 1, host: x}}}",
     "apps.a.health.tcp.host: unknown field"},
    {"UnknownExposeField", "a: {image: busybox, network: {expose: [{port: 1, ip: x}]}}",
     "apps.a.network.expose[0].ip: unknown field"},
    {"UnknownVolumeField", "a: {image: busybox, volumes: [{name: v, path: /v, size: 1}]}",
     "apps.a.volumes[0].size: unknown field"},
    {"MergeKeyIsUnknown", "a: {image: busybox, <<: {args: [x]}}", "apps.a.<<: unknown field"},

    // Names.
    {"UpperCaseAppName", "Camera: {image: busybox}", "apps: invalid app name \"Camera\""},
    {"AppNameStartsWithDash", "-a: {image: busybox}", "apps: invalid app name \"-a\""},
    {"AppNameWithDot", "a.b: {image: busybox}", "apps: invalid app name \"a.b\""},
    {"AppNameTooLong", std::string(64, 'a') + ": {image: busybox}", "apps: invalid app name"},

    // Runtimes and what they need.
    {"UnknownRuntime", "a: {runtime: docker, image: busybox}",
     "apps.a.runtime: unknown runtime \"docker\""},
    {"RuntimeNotString", "a: {runtime: 1, image: busybox}",
     "apps.a.runtime: expected a string, got integer"},
    {"ContainerNeedsImage", "a: {args: [sh]}", "apps.a.image: required for runtime container"},
    {"ContainerForbidsExec", "a: {image: busybox, exec: {path: /bin/sh}}",
     "apps.a.exec: not allowed for runtime container"},
    {"ContainerForbidsBundle",
     fmt::format("a: {{image: busybox, bundle: {{url: \"https://x.test/u\", sha256: {}}}}}", kSha),
     "apps.a.bundle: not allowed for runtime container"},
    {"NativeNeedsExec", "a: {runtime: native}", "apps.a.exec: required for runtime native"},
    {"NativeForbidsImage", "a: {runtime: native, exec: {path: /bin/x}, image: busybox}",
     "apps.a.image: not allowed for runtime native"},
    {"NativeForbidsArgs", "a: {runtime: native, exec: {path: /bin/x}, args: [y]}",
     "apps.a.args: not allowed for runtime native"},
    {"WebviewNeedsBundle", "a: {runtime: webview}", "apps.a.bundle: required for runtime webview"},
    {"WebviewForbidsVolumes", webview(", volumes: [{name: v, path: /v}]"),
     "apps.w.volumes: not allowed for runtime webview"},
    {"BundleShaNotHex", "a: {runtime: webview, bundle: {url: \"https://x.test/u\", sha256: \"…\"}}",
     "apps.a.bundle.sha256: \"…\" is not 64 lower-case hex digits"},
    {"BundleShaUpperCase",
     "a: {runtime: webview, bundle: {url: \"https://x.test/u\", sha256: " + std::string(64, 'A') +
         "}}",
     "apps.a.bundle.sha256: "},
    {"BundleUrlNotHttp",
     fmt::format("a: {{runtime: webview, bundle: {{url: ftp://x/u, sha256: {}}}}}", kSha),
     "apps.a.bundle.url: \"ftp://x/u\" is not an http://, https://, file:/// or blob:// URL"},
    {"BundleNeedsUrl", fmt::format("a: {{runtime: webview, bundle: {{sha256: {}}}}}", kSha),
     "apps.a.bundle.url: required"},
    {"ExecPathRelative", "a: {runtime: native, exec: {path: bin/x}}",
     "apps.a.exec.path: \"bin/x\" is not an absolute path"},
    {"SandboxLevelUnknown", "a: {runtime: native, exec: {path: /x}, sandbox: {level: jail}}",
     "apps.a.sandbox.level: unknown value \"jail\" (expected process, sandboxed or contained)"},
    {"SandboxLevelNotString", "a: {runtime: native, exec: {path: /x}, sandbox: {level: 1}}",
     "apps.a.sandbox.level: expected a string, got integer"},
    {"SandboxUnknownKey", "a: {runtime: native, exec: {path: /x}, sandbox: {levle: process}}",
     "apps.a.sandbox.levle"},
    {"SandboxCapabilityBadName",
     "a: {runtime: native, exec: {path: /x}, sandbox: {capabilities: [CAP_CHOWN, net_admin]}}",
     "apps.a.sandbox.capabilities[1]: \"net_admin\" is not a capability name like "
     "CAP_NET_BIND_SERVICE"},
    {"ContainerForbidsSandbox", "a: {image: busybox, sandbox: {level: process}}",
     "apps.a.sandbox: not allowed for runtime container"},
    {"ExecArgsNotStrings", "a: {runtime: native, exec: {path: /x, args: [--bus, 1]}}",
     "apps.a.exec.args[1]: expected a string, got integer"},

    // Container fields.
    {"BadImage", "a: {image: \"Not An Image\"}", "apps.a.image: invalid reference"},
    {"ImageNotString", "a: {image: 5}", "apps.a.image: expected a string, got integer"},
    {"ArgsNotList", "a: {image: busybox, args: \"sh -c\"}",
     "apps.a.args: expected a list of strings, got string \"sh -c\""},
    {"ArgNotString", "a: {image: busybox, args: [sleep, 10]}",
     "apps.a.args[1]: expected a string, got integer"},
    {"EnvNotMap", "a: {image: busybox, env: [A=1]}", "apps.a.env: expected a map"},
    {"EnvBadName", "a: {image: busybox, env: {1X: y}}", "apps.a.env: invalid variable name \"1X\""},
    {"EnvNameWithDash", "a: {image: busybox, env: {A-B: y}}",
     "apps.a.env: invalid variable name \"A-B\""},
    {"EnvValueNumber", "a: {image: busybox, env: {PORT: 8080}}",
     "apps.a.env.PORT: expected a string (quote numbers and booleans), got integer"},
    {"EnvValueBool", "a: {image: busybox, env: {DEBUG: true}}",
     "apps.a.env.DEBUG: expected a string (quote numbers and booleans), got boolean"},
    {"UserName", "a: {image: busybox, user: nobody}",
     "apps.a.user: \"nobody\" is not a numeric uid or uid:gid"},
    {"UserGroupName", "a: {image: busybox, user: \"0:wheel\"}",
     "apps.a.user: \"0:wheel\" is not a numeric uid or uid:gid"},
    {"UserNumber", "a: {image: busybox, user: 1000}",
     "apps.a.user: expected a string, got integer"},
    {"WorkingDirRelative", "a: {image: busybox, workingDir: srv}",
     "apps.a.workingDir: \"srv\" is not an absolute path"},

    // Quantities.
    {"BadMemory", "camera: {image: busybox, resources: {memory: 64Q}}",
     "apps.camera.resources.memory: \"64Q\" is not a quantity"},
    {"FractionalBytes", "a: {image: busybox, resources: {memory: 0.5}}",
     "apps.a.resources.memory: expected a quantity like \"64Mi\" or a number of bytes, got "
     "number"},
    {"ZeroMemory", "a: {image: busybox, resources: {memory: 0}}",
     "apps.a.resources.memory: must be at least 6Mi (runc needs that much to start a container)"},
    {"NegativeMemory", "a: {image: busybox, resources: {memory: -1}}",
     "apps.a.resources.memory: must be at least 6Mi (runc needs that much to start a container)"},
    {"OneByteMemory", "a: {image: busybox, resources: {memory: 1}}",
     "apps.a.resources.memory: must be at least 6Mi (runc needs that much to start a container)"},
    {"BelowRuncsMinimum", "a: {image: busybox, resources: {memory: 5Mi}}",
     "apps.a.resources.memory: must be at least 6Mi (runc needs that much to start a container)"},
    {"MemoryTooLarge", "a: {image: busybox, resources: {memory: 8Ei}}",
     "apps.a.resources.memory: \"8Ei\" is too large"},
    {"BadCpu", "a: {image: busybox, resources: {cpu: lots}}",
     "apps.a.resources.cpu: \"lots\" is not a cpu amount"},
    {"CpuTooSmall", "a: {image: busybox, resources: {cpu: 0.001}}",
     "apps.a.resources.cpu: 0.001 is below the minimum of 10m"},
    {"CpuMillisTooSmall", "a: {image: busybox, resources: {cpu: 5m}}",
     "apps.a.resources.cpu: \"5m\" is below the minimum of 10m"},
    {"CpuTooFine", "a: {image: busybox, resources: {cpu: 0.0005}}",
     "apps.a.resources.cpu: 0.0005 is finer than 1m"},
    {"CpuNegative", "a: {image: busybox, resources: {cpu: -1}}",
     "apps.a.resources.cpu: -1 is not a cpu amount"},
    {"CpuBool", "a: {image: busybox, resources: {cpu: true}}",
     "apps.a.resources.cpu: expected a cpu amount"},
    {"PidsZero", "a: {image: busybox, resources: {pids: 0}}",
     "apps.a.resources.pids: 0 is not a positive number of processes"},
    {"PidsString", "a: {image: busybox, resources: {pids: \"64\"}}",
     "apps.a.resources.pids: expected an integer, got string \"64\""},

    // Durations.
    {"GraceWithoutUnit", "a: {image: busybox, stopGracePeriod: 10}",
     "apps.a.stopGracePeriod: expected a duration string like 10s, got integer"},
    {"GraceBadUnit", "a: {image: busybox, stopGracePeriod: 10x}",
     "apps.a.stopGracePeriod: \"10x\" is not a duration"},
    {"HealthIntervalBad", "a: {image: busybox, health: {tcp: {port: 1}, interval: soon}}",
     "apps.a.health.interval: \"soon\" is not a duration"},
    {"HealthIntervalZero", "a: {image: busybox, health: {tcp: {port: 1}, interval: 0s}}",
     "apps.a.health.interval: must be more than 0"},
    {"HealthTimeoutBad", "a: {image: busybox, health: {tcp: {port: 1}, timeout: 1.5s}}",
     "apps.a.health.timeout: \"1.5s\" is not a duration"},

    // Restart, update, health.
    {"RestartPolicy", "a: {image: busybox, restart: {policy: sometimes}}",
     "apps.a.restart.policy: unknown value \"sometimes\" (expected always, on-failure or never)"},
    {"RestartShorthand", "a: {image: busybox, restart: always}",
     "apps.a.restart: expected an object, got string \"always\""},
    {"UpdateStrategy", "a: {image: busybox, update: {strategy: rolling}}",
     "apps.a.update.strategy: unknown value \"rolling\" (expected download-then-kill or "
     "kill-then-download)"},
    {"HealthNoProbe", "a: {image: busybox, health: {interval: 5s}}",
     "apps.a.health: needs one of http, tcp or exec"},
    {"HealthTwoProbes", "a: {image: busybox, health: {http: {port: 1}, tcp: {port: 2}}}",
     "apps.a.health: only one of http, tcp or exec may be set"},
    {"HealthPortZero", "a: {image: busybox, health: {http: {port: 0}}}",
     "apps.a.health.http.port: 0 is not a port (1..65535)"},
    {"HealthPortMissing", "a: {image: busybox, health: {tcp: {}}}",
     "apps.a.health.tcp.port: required"},
    {"HealthPathRelative", "a: {image: busybox, health: {http: {port: 1, path: healthz}}}",
     "apps.a.health.http.path: \"healthz\" does not start with /"},
    {"HealthExecEmpty", "a: {image: busybox, health: {exec: {command: []}}}",
     "apps.a.health.exec.command: must not be empty"},
    {"HealthFailuresZero", "a: {image: busybox, health: {tcp: {port: 1}, failures: 0}}",
     "apps.a.health.failures: 0 is not in 1..1000"},

    // Services.
    {"UnknownService", "a: {image: busybox, services: [events, metrics]}",
     "apps.a.services[1]: unknown service \"metrics\" (expected events, blobs or logs)"},
    {"DuplicateService", "a: {image: busybox, services: [events, events]}",
     "apps.a.services[1]: \"events\" is listed twice"},

    // Network.
    {"EgressOn", "a: {image: busybox, network: {egress: on}}",
     "apps.a.network.egress: unknown value \"on\" (expected all, local or none)"},
    {"AllowUnknownApp", "a: {image: busybox, network: {allow: [b]}}",
     "apps.a.network.allow[0]: \"b\" is neither an app of this manifest nor an address or CIDR"},
    {"AllowBadCidr", "a: {image: busybox, network: {allow: [10.0.0.0/33]}}",
     "apps.a.network.allow[0]: \"10.0.0.0/33\" is neither an app"},
    {"AllowBadAddress", "a: {image: busybox, network: {allow: [\"10.0.0/8\"]}}",
     "apps.a.network.allow[0]: \"10.0.0/8\" is neither an app"},
    {"AllowTwice", "a: {image: busybox, network: {allow: [10.0.0.1, 10.0.0.1]}}",
     "apps.a.network.allow[1]: \"10.0.0.1\" is listed twice"},
    {"AllowNotAList", "a: {image: busybox, network: {allow: 10.0.0.1}}",
     "apps.a.network.allow: expected a list"},
    {"ModeBridge", "a: {image: busybox, network: {mode: bridge}}",
     "apps.a.network.mode: unknown value \"bridge\" (expected isolated or host)"},
    {"HostModeWithEgress", "a: {image: busybox, network: {mode: host, egress: none}}",
     "apps.a.network.egress: does not apply with mode host"},
    {"HostModeWithExpose", "a: {image: busybox, network: {mode: host, expose: [{port: 80}]}}",
     "apps.a.network.expose: does not apply with mode host"},
    {"ExposePortTooLarge", "a: {image: busybox, network: {expose: [{port: 70000}]}}",
     "apps.a.network.expose[0].port: 70000 is not a port (1..65535)"},
    {"ExposeNeedsPort", "a: {image: busybox, network: {expose: [{hostPort: 80}]}}",
     "apps.a.network.expose[0].port: required"},
    {"ExposeHostPortZero", "a: {image: busybox, network: {expose: [{port: 1, hostPort: 0}]}}",
     "apps.a.network.expose[0].hostPort: 0 is not a port"},
    {"ExposeProtocol", "a: {image: busybox, network: {expose: [{port: 1, protocol: sctp}]}}",
     "apps.a.network.expose[0].protocol: unknown value \"sctp\" (expected tcp or udp)"},
    {"ExposeReservedPort", "a: {image: busybox, network: {expose: [{port: 4454}]}}",
     "apps.a.network.expose[0].hostPort: 4454 is reserved for the node services"},
    {"DuplicateHostPortAcrossApps",
     "camera: {image: busybox, network: {expose: [{port: 8080, hostPort: 18080}]}}\n"
     "cam2: {image: busybox, network: {expose: [{port: 80, hostPort: 18080}]}}",
     "apps.camera.network.expose[0].hostPort: 18080 is already used by apps.cam2"},
    {"DuplicateDefaultHostPort",
     "a: {image: busybox, network: {expose: [{port: 8080}]}}\n"
     "b: {image: busybox, network: {expose: [{port: 9, hostPort: 1}, {port: 8080}]}}",
     "apps.b.network.expose[1].hostPort: 8080 is already used by apps.a"},
    {"DuplicateHostPortInOneApp",
     "a: {image: busybox, network: {expose: [{port: 1, hostPort: 9}, {port: 2, hostPort: 9}]}}",
     "apps.a.network.expose[1].hostPort: 9 is already used by apps.a.network.expose[0]"},

    // Volumes.
    {"VolumeBadName", "a: {image: busybox, volumes: [{name: ../etc, path: /x}]}",
     "apps.a.volumes[0].name: invalid volume name \"../etc\""},
    {"VolumeNeedsPath", "a: {image: busybox, volumes: [{name: v}]}",
     "apps.a.volumes[0].path: required"},
    {"VolumeRelativePath", "a: {image: busybox, volumes: [{name: v, path: data}]}",
     "apps.a.volumes[0].path: \"data\" is not an absolute path"},
    {"VolumeDotDot", "a: {image: busybox, volumes: [{name: v, path: /data/../etc}]}",
     "apps.a.volumes[0].path: \"/data/../etc\" must not contain . or .. components"},
    {"VolumeRoot", "a: {image: busybox, volumes: [{name: v, path: /}]}",
     "apps.a.volumes[0].path: \"/\" cannot hold a volume"},
    {"VolumeProc", "a: {image: busybox, volumes: [{name: v, path: /proc/x}]}",
     "apps.a.volumes[0].path: \"/proc/x\" cannot hold a volume"},
    {"VolumeDuplicatePath",
     "a: {image: busybox, volumes: [{name: v, path: /data}, {name: w, path: /data/}]}",
     "apps.a.volumes[1].path: \"/data\" is already used by apps.a.volumes[0]"},
    {"VolumeReadOnlyString", "a: {image: busybox, volumes: [{name: v, path: /v, readOnly: yes}]}",
     "apps.a.volumes[0].readOnly: expected a boolean (true or false), got string \"yes\""},

    // Dependencies.
    {"UnknownDependency", "a: {image: busybox, dependsOn: [nope]}",
     "apps.a.dependsOn[0]: unknown app \"nope\""},
    {"DuplicateDependency", "a: {image: busybox}\nb: {image: busybox, dependsOn: [a, a]}",
     "apps.b.dependsOn[1]: \"a\" is listed twice"},
    {"SelfDependency", "a: {image: busybox, dependsOn: [a]}", "apps.a.dependsOn: cycle a -> a"},
    {"TwoAppCycle",
     "ui: {image: busybox, dependsOn: [camera]}\ncamera: {image: busybox, dependsOn: [ui]}",
     "apps.camera.dependsOn: cycle camera -> ui -> camera"},
    {"CycleBehindATail",
     "a: {image: busybox, dependsOn: [b]}\nb: {image: busybox, dependsOn: [c]}\n"
     "c: {image: busybox, dependsOn: [b]}",
     "apps.b.dependsOn: cycle b -> c -> b"},
    {"ThreeAppCycle",
     "x: {image: busybox, dependsOn: [y]}\ny: {image: busybox, dependsOn: [z]}\n"
     "z: {image: busybox, dependsOn: [x]}\nok: {image: busybox}",
     "apps.x.dependsOn: cycle x -> y -> z -> x"},
    {"AppNotObject", "a: busybox", "apps.a: expected an object, got string \"busybox\""},
};

INSTANTIATE_TEST_SUITE_P(Rules, BadAppTest, ::testing::ValuesIn(kBadApps),
                         [](const auto& param_info) { return param_info.param.name; });

struct BadDocument {
  std::string name;
  std::string text;
  std::string expected;
};

void PrintTo(const BadDocument& b, std::ostream* os) { *os << b.name; }

class BadDocumentTest : public ::testing::TestWithParam<BadDocument> {};

TEST_P(BadDocumentTest, NamesFieldPath) {
  const BadDocument& b = GetParam();
  auto s = parseNodeState(b.text);
  ASSERT_FALSE(s) << "accepted:\n" << b.text;
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().message(), StartsWith(b.expected));
}

const BadDocument kBadDocuments[] = {
    {"NotAnObject", "- a\n- b\n", "manifest: expected an object, got array"},
    {"Scalar", "hello\n", "manifest: expected an object, got string \"hello\""},
    {"UnknownTopLevelField",
     "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps: {}\n"
     "extra: 1\n",
     "extra: unknown field"},
    {"MissingApiVersion", "kind: NodeState\nrevision: 1\napps: {}\n", "apiVersion: required"},
    {"WrongApiVersion", "apiVersion: fleetlet.io/v2\nkind: NodeState\nrevision: 1\napps: {}\n",
     "apiVersion: unsupported \"fleetlet.io/v2\" (expected fleetlet.io/v1)"},
    {"WrongKind", "apiVersion: fleetlet.io/v1\nkind: Node\nrevision: 1\napps: {}\n",
     "kind: unsupported \"Node\" (expected NodeState)"},
    {"MissingRevision", "apiVersion: fleetlet.io/v1\nkind: NodeState\napps: {}\n",
     "revision: required"},
    {"ZeroRevision", "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 0\napps: {}\n",
     "revision: 0 is not a positive integer"},
    {"NegativeRevision", "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: -3\napps: {}\n",
     "revision: -3 is not a positive integer"},
    {"QuotedRevision", "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: \"7\"\napps: {}\n",
     "revision: expected an integer, got string \"7\""},
    {"OctalLookingRevision",
     "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 010\napps: {}\n",
     "revision: expected an integer, got string \"010\""},
    {"FractionalRevision", "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1.5\napps: {}\n",
     "revision: expected an integer, got number"},
    {"HugeRevision",
     R"({"apiVersion": "fleetlet.io/v1", "kind": "NodeState", "revision": 18446744073709551615,
         "apps": {}})",
     "revision: 18446744073709551615 is too large"},
    {"MissingApps", "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\n", "apps: required"},
    {"AppsList", "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps: [a]\n",
     "apps: expected a map of app names to apps, got array"},
    {"YamlSyntax", "apiVersion: fleetlet.io/v1\nkind: [NodeState\n", "line 3, column 1: "},
    {"JsonSyntax", "{\"apiVersion\": \"fleetlet.io/v1\",}", "line 1, column 33: malformed JSON"},
    {"DuplicateKey", "apiVersion: fleetlet.io/v1\nkind: NodeState\nkind: NodeState\n",
     "line 3, column 1: duplicate key \"kind\""},
    {"Empty", "", "manifest is empty"},
};

INSTANTIATE_TEST_SUITE_P(Rules, BadDocumentTest, ::testing::ValuesIn(kBadDocuments),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(ErrorsTest, FirstErrorOnlyAndNothingPartial) {
  // A valid app next to an invalid one: the result is the error alone.
  auto s = parseNodeState(withApps("a: {image: busybox}\nb: {image: busybox, colour: red}"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "apps.b.colour: unknown field");
}

TEST(ErrorsTest, StringsInMessagesAreEscaped) {
  auto s = parseNodeState(withApps("a: {image: busybox, user: \"x\\ny\"}"));
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("\"x\\ny\""));
  auto nul = parseNodeState(
      R"({"apiVersion":"fleetlet.io/v1","kind":"NodeState","revision":1,"apps":{"a":{"image":"busybox","args":["a\u0000b"]}}})");
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().message(), "apps.a.args[0]: contains a NUL character");
}

TEST(ErrorsTest, NodeAndExpires) {
  const std::string head = "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps: {}\n";
  auto ok = parseNodeState(head + "node: edge-7\nexpires: \"2026-12-01T10:00:00+01:00\"\n");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->node, "edge-7");
  ASSERT_TRUE(ok->expires.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*ok->expires), 1796115600);
  auto empty = parseNodeState(head + "node: \"\"\n");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "node: must be 1 to 253 characters");
  auto number = parseNodeState(head + "node: 7\n");
  ASSERT_FALSE(number);
  EXPECT_THAT(number.error().message(), HasSubstr("node: expected a string"));
  auto bad = parseNodeState(head + "expires: tomorrow\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), ::testing::StartsWith("expires: "));
  auto unset = parseNodeState(head);
  ASSERT_TRUE(unset);
  EXPECT_TRUE(unset->node.empty());
  EXPECT_FALSE(unset->expires.has_value());
  EXPECT_FALSE(unset->rollback_window.has_value());
}

TEST(ErrorsTest, RollbackWindow) {
  const std::string head = "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps: {}\n";
  auto ok = parseNodeState(head + "rollback: {window: 2m}\n");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->rollback_window, std::chrono::minutes(2));
  EXPECT_EQ(parseNodeState(head + "rollback: {}\n").error().message(), "rollback.window: required");
  EXPECT_EQ(parseNodeState(head + "rollback: {window: 0s}\n").error().message(),
            "rollback.window: must be longer than 0s");
  EXPECT_EQ(parseNodeState(head + "rollback: {window: 1m, after: 2}\n").error().message(),
            "rollback.after: unknown field");
}

}  // namespace
}  // namespace fleetlet::manifest
