// fleetletd runs `runtime: native` apps through the real containerd-shim-fleetlet-v1: a
// private containerd whose PATH holds the freshly built shim, the real fleetletd and
// fleetletctl. Restart policies, logs, limits, the sandbox level, describe, restart, removal
// and a kill -9 of fleetletd while a native task runs.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fleetletd_fixture.h"

namespace fleetlet {
namespace {

using namespace fleetletd_testing;
using ::testing::HasSubstr;

class NativeAppsTest : public FleetletdTest {
 protected:
  // A native app running `command` with /bin/sh; `body` is extra YAML at the app's indentation.
  static std::string nativeApp(const std::string& name, const std::string& command,
                               const std::string& body = "") {
    return "  " + name + ":\n    runtime: native\n    exec: {path: /bin/sh, args: [\"-c\", \"" +
           command + "\"]}\n    stopGracePeriod: 1s\n" + body;
  }

  CommandOutput ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {FLEETLETCTL_PATH, "--api-socket",
                                     (dir_->path() / "api.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = runCommand(RunOptions{.argv = argv, .timeout = 30s});
    EXPECT_TRUE(out) << out.error().message();
    return out ? *out : CommandOutput{};
  }

  // The uid a process runs as (the real uid from /proc/<pid>/status); -1 when it is gone.
  static long uidOf(const std::string& pid) {
    std::istringstream in(readFile("/proc/" + pid + "/status"));
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("Uid:")) return std::stol(line.substr(4));
    }
    return -1;
  }
};

TEST_F(NativeAppsTest, AFailingNativeAppIsRestartedByItsPolicyAndItsLogsAreReadable) {
  startAgent();
  apply(manifest(1, nativeApp("flaky", "echo native-says-hello; echo oops >&2; exit 3",
                              "    restart: {policy: on-failure}\n")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps.contains("flaky") && apps["flaky"].value("restarts", 0) >= 2;
      },
      60s))
      << agentLog();
  const std::string id = containerOf("flaky");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(runtimeOf(id), "io.containerd.fleetlet.v1");
  // No image, so no snapshot.
  EXPECT_TRUE(snapshots().empty());
  EXPECT_EQ(containers().size(), 1u);
  auto logs = ctl({"logs", "flaky"});
  ASSERT_TRUE(logs.status.success()) << logs.err;
  EXPECT_GE(countOf(logs.out, "native-says-hello\n"), 2u) << logs.out;
  EXPECT_THAT(logs.out, HasSubstr("oops\n"));
  EXPECT_THAT(agentLog(), HasSubstr("app flaky: restarted"));
}

// Writes into its state directory, then stays.
constexpr const char* kWritesState = "echo kept > $STATE_DIRECTORY/note; exec sleep 1000";

TEST_F(NativeAppsTest, LimitsSandboxLevelsOwnUidsAndDescribe) {
  startAgent();
  apply(manifest(1, nativeApp("small", kWritesState, "    resources: {memory: 32Mi, pids: 16}\n") +
                        nativeApp("other", "sleep 1000",
                                  "    sandbox: {capabilities: [CAP_NET_BIND_SERVICE]}\n") +
                        nativeApp("plain", "sleep 1000", "    sandbox: {level: process}\n")));
  ASSERT_TRUE(waitRunning({"small", "other", "plain"})) << agentLog();
  auto cgroup = [&](const std::string& controller, const std::string& app,
                    const std::string& file) {
    return readFile(std::filesystem::path("/sys/fs/cgroup") / controller / ns_ / containerOf(app) /
                    file);
  };
  EXPECT_EQ(cgroup("memory", "small", "memory.limit_in_bytes"), "33554432\n");
  EXPECT_EQ(cgroup("pids", "small", "pids.max"), "16\n");

  auto all = tasks();
  const std::string small_pid = all[containerOf("small")].first;
  const std::string other_pid = all[containerOf("other")].first;
  const std::string plain_pid = all[containerOf("plain")].first;
  // Sandboxed apps run as uids of their own from the DynamicUser range, never the same one;
  // the process level keeps the spec's user (root).
  const long small_uid = uidOf(small_pid), other_uid = uidOf(other_pid);
  EXPECT_GE(small_uid, 61184);
  EXPECT_LE(small_uid, 65519);
  EXPECT_GE(other_uid, 61184);
  EXPECT_LE(other_uid, 65519);
  EXPECT_NE(small_uid, other_uid);
  EXPECT_EQ(uidOf(plain_pid), 0);
  // A listed capability is kept by the non-root app (bit 10), none otherwise.
  auto capEff = [](const std::string& pid) {
    std::istringstream in(readFile("/proc/" + pid + "/status"));
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("CapEff:")) return line.substr(8);
    }
    return std::string();
  };
  EXPECT_EQ(capEff(other_pid), "0000000000000400");
  EXPECT_EQ(capEff(small_pid), "0000000000000000");
  // Its state directory: <data-dir>/state/<app>, writable by it and owned by its uid.
  const auto note = dataDir() / "state" / "small" / "note";
  ASSERT_TRUE(testing::waitFor([&] { return readFile(note) == "kept\n"; }, 10s));
  struct stat st {};
  ASSERT_EQ(::stat(note.c_str(), &st), 0);
  EXPECT_EQ(static_cast<long>(st.st_uid), small_uid);

  auto described = ctl({"describe", "app", "small"});
  ASSERT_TRUE(described.status.success()) << described.err;
  EXPECT_THAT(described.out, HasSubstr("Runtime:       native\n"));
  EXPECT_THAT(described.out, HasSubstr("Sandbox:       sandboxed\n"));
  EXPECT_THAT(described.out, HasSubstr("Exec:          /bin/sh\n"));
  auto plain = ctl({"describe", "app", "plain"});
  EXPECT_THAT(plain.out, HasSubstr("Sandbox:       process\n"));
  auto listed = ctl({"get", "apps"});
  EXPECT_THAT(listed.out, HasSubstr("native"));

  // A level change is a spec change: the app is replaced, and contained gets its own network.
  apply(manifest(2, nativeApp("small", kWritesState, "    resources: {memory: 32Mi, pids: 16}\n") +
                        nativeApp("other", "sleep 1000",
                                  "    sandbox: {capabilities: [CAP_NET_BIND_SERVICE]}\n") +
                        nativeApp("plain", "sleep 1000", "    sandbox: {level: contained}\n")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return !std::filesystem::exists("/proc/" + plain_pid) &&
               waitRunning({"small", "other", "plain"}, 1s);
      },
      60s))
      << agentLog();
  const std::string contained_pid = tasks()[containerOf("plain")].first;
  std::error_code ec;
  EXPECT_NE(std::filesystem::read_symlink("/proc/" + contained_pid + "/ns/net", ec),
            std::filesystem::read_symlink("/proc/self/ns/net", ec));
  EXPECT_THAT(ctl({"describe", "app", "plain"}).out, HasSubstr("Sandbox:       contained\n"));
  // The untouched apps kept their tasks.
  EXPECT_EQ(tasks()[containerOf("small")].first, small_pid);
}

TEST_F(NativeAppsTest, KillNineOfFleetletdAdoptsTheRunningNativeTaskThenRestartAndRemoval) {
  startAgent();
  apply(manifest(1, nativeApp("steady", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"steady"})) << agentLog();
  const std::string id = containerOf("steady");
  const std::string pid = tasks()[id].first;
  ASSERT_FALSE(pid.empty());

  killAgent();
  startAgent();
  // Adopted: the same container and task, no second one, and the API reports it running.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps.contains("steady") && apps["steady"].value("state", "") == "running";
      },
      60s))
      << agentLog();
  std::this_thread::sleep_for(2s);  // time for a wrong second create to show
  EXPECT_EQ(containers(), std::set<std::string>{id});
  EXPECT_EQ(tasks().size(), 1u);
  EXPECT_EQ(tasks()[id].first, pid);
  EXPECT_EQ(apiApps()["steady"].value("restarts", -1), 0);

  // fleetletctl restart: a new task of the same container.
  ASSERT_TRUE(ctl({"restart", "steady"}).status.success());
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto t = tasks();
        return t.size() == 1 && t[id].second == "RUNNING" && t[id].first != pid;
      },
      30s))
      << agentLog();
  EXPECT_FALSE(std::filesystem::exists("/proc/" + pid));
  const std::string restarted = tasks()[id].first;

  // Removed from the manifest: task, container and cgroup go.
  apply(manifest(2, nativeApp("next", "sleep 1000")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto ids = containers();
        return ids.size() == 1 && !ids.contains(id);
      },
      60s))
      << agentLog();
  EXPECT_TRUE(
      testing::waitFor([&] { return !std::filesystem::exists("/proc/" + restarted); }, 10s));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path("/sys/fs/cgroup/memory") / ns_ / id));
}

// A port nobody listens on now (bound and closed again), for an app's listener.
uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Health checks of native apps: tcp/http probes reach a host-network app on the host's
// loopback; exec probes run inside the app's sandbox through the shim's Exec.
TEST_F(NativeAppsTest, HealthChecksProbeNativeAppsAndRestartTheUnhealthyOne) {
  const uint16_t port = freePort();
  ASSERT_NE(port, 0);
  startAgent();
  const std::string check = ", interval: 1s, failures: 2}\n";
  apply(manifest(
      1,
      nativeApp(
          "served",
          "exec /bin/busybox httpd -f -p 127.0.0.1:" + std::to_string(port) + " -h /usr/share",
          "    health: {tcp: {port: " + std::to_string(port) + "}" + check) +
          nativeApp("fine", "touch /tmp/ready; exec sleep 1000",
                    "    health: {exec: {command: [/bin/sh, -c, \"test -f /tmp/ready\"]}" + check) +
          nativeApp(
              "sick", "sleep 1000",
              "    health: {exec: {command: [/bin/sh, -c, \"echo not-ready; exit 3\"]}" + check)));
  ASSERT_TRUE(waitRunning({"served", "fine", "sick"})) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] { return agentLog().find("app sick: restarted") != std::string::npos; }, 60s))
      << agentLog();
  // Long enough for a few probes of the healthy ones after the sick one's restart.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps["served"].value("healthy", false) && apps["fine"].value("healthy", false);
      },
      30s))
      << agentLog();
  const std::string log = agentLog();
  EXPECT_NE(log.find("app sick: unhealthy: exec exited 3: not-ready"), std::string::npos) << log;
  EXPECT_EQ(log.find("app served: unhealthy"), std::string::npos) << log;
  EXPECT_EQ(log.find("app fine: unhealthy"), std::string::npos) << log;
  EXPECT_EQ(log.find("app fine: restarted"), std::string::npos) << log;
}

// A host-network native app listing services gets host listeners of its own on 127.0.0.1,
// announced in AX_*: what it publishes there is stored under its name, another app's port is
// another listener, and a fleetletd killed with -9 makes them again on the same ports.
TEST_F(NativeAppsTest, HostNetworkNativeAppsReachTheServicesThroughListenersOfTheirOwn) {
  startStreams();
  startAgent({"--streams-handoff", streamsHandoff().string()});
  // busybox wget from the host, in a loop, to the URI the app was given.
  const std::string publish =
      "echo uri=$AX_EVENT_SERVICE_URI; while true; do /bin/busybox wget -q -O /dev/null "
      "--header 'Content-Type: application/json' --post-data "
      "'{\\\"data\\\":[{\\\"semantics\\\":\\\"host\\\",\\\"name\\\":\\\"n\\\","
      "\\\"payload\\\":1}]}' ${AX_EVENT_SERVICE_URI}v1/events/publish && echo ok; sleep 0.2; "
      "done";
  apply(manifest(1, nativeApp("pub", publish, "    services: [events]\n") +
                        nativeApp("other", publish, "    services: [events]\n")));
  ASSERT_TRUE(waitRunning({"pub", "other"})) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto events = streamsEvents();
        return events.find("\"sourceApp\":\"pub\"") != std::string::npos &&
               events.find("\"sourceApp\":\"other\"") != std::string::npos;
      },
      60s))
      << streamsEvents() << agentLog();
  // Each was told a port of its own on 127.0.0.1, not the services' shared host listener.
  auto uriOf = [&](const std::string& app) {
    auto log = readFile(dataDir() / "logs" / app / "current.log");
    auto at = log.find("uri=");
    return at == std::string::npos ? std::string()
                                   : log.substr(at + 4, log.find('\n', at) - at - 4);
  };
  const std::string pub_uri = uriOf("pub");
  const std::string other_uri = uriOf("other");
  ASSERT_TRUE(pub_uri.starts_with("http://127.0.0.1:")) << pub_uri;
  EXPECT_TRUE(pub_uri.ends_with("/api/")) << pub_uri;
  EXPECT_NE(pub_uri, other_uri);
  EXPECT_EQ(pub_uri.find(":4454/"), std::string::npos) << pub_uri;
  EXPECT_EQ(pub_uri.find(":" + streams_port_ + "/"), std::string::npos) << pub_uri;
  const std::string ports = readFile(dataDir() / "host-listeners" / "pub");
  ASSERT_TRUE(ports.starts_with("events ")) << ports;
  EXPECT_EQ(pub_uri, "http://127.0.0.1:" + ports.substr(7, ports.size() - 8) + "/api/") << ports;

  // fleetletd killed with -9: the apps keep their ports, and publish on.
  const std::string pid = tasks()[containerOf("pub")].first;
  killAgent();
  startAgent({"--streams-handoff", streamsHandoff().string()});
  const auto log = dataDir() / "logs" / "pub" / "current.log";
  const size_t ok_before = countOf(readFile(log), " ok");
  ASSERT_TRUE(testing::waitFor([&] { return countOf(readFile(log), " ok") >= ok_before + 5; }, 30s))
      << readFile(log) << agentLog();
  EXPECT_EQ(tasks()[containerOf("pub")].first, pid) << "adopted, not restarted";
  EXPECT_EQ(readFile(dataDir() / "host-listeners" / "pub"), ports);

  // Removed: its listener and ports file go.
  apply(manifest(2, nativeApp("other", publish, "    services: [events]\n")));
  ASSERT_TRUE(testing::waitFor([&] { return containerOf("pub").empty(); }, 30s)) << agentLog();
  EXPECT_TRUE(testing::waitFor(
      [&] { return !std::filesystem::exists(dataDir() / "host-listeners" / "pub"); }, 30s));
  http::Client client({.total_timeout = std::chrono::seconds(5)});
  EXPECT_TRUE(testing::waitFor([&] { return !client.send({.url = pub_uri + "v1/node/id"}); }, 30s))
      << "pub's listener is closed";
}

}  // namespace
}  // namespace fleetlet
