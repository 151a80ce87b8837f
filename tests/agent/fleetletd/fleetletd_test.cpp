// fleetletd end to end: the real binary against a private containerd and a loopback
// registry, fed through its --desired directory and checked through containerd's own listings
// (ctr) and the kernel's cgroup files.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "http/client.h"
#include "json/json.h"
#include "os/child_process.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/shared_images.h"
#include "support/system_state.h"
#include "support/temp_dir.h"
#include "support/test_images.h"

namespace fleetlet {
namespace {

using testing::LocalRegistry;
using testing::PrivateContainerd;
using testing::TempDir;
using testing::TestImages;
using namespace std::chrono_literals;

std::string readFile(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.insert(l);
  }
  return out;
}

class FleetletdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    auto shared = testing::SharedImages::get({.include_big = false});
    ASSERT_TRUE(shared) << shared.error().message();
    registry_ = &(*shared)->registry();
    images_ = &(*shared)->images();
    auto ctrd = PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    auto dir = TempDir::create("fleetletd-test");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    std::filesystem::create_directories(desiredDir());
    // runc keeps state per namespace and id in a directory every containerd shares: a
    // namespace of its own keeps parallel tests apart.
    ns_ = PrivateContainerd::uniqueId("fltest");
  }

  void TearDown() override {
    if (agent_) stopAgent();
  }

  std::filesystem::path desiredDir() const { return dir_->path() / "desired"; }
  std::filesystem::path dataDir() const { return dir_->path() / "data"; }
  std::filesystem::path logPath() const { return dir_->path() / "fleetletd.log"; }

  void startAgent() {
    auto child = ChildProcess::spawn(
        {.argv = {FLEETLETD_PATH, "--containerd", containerd_->socket().string(), "--namespace",
                  ns_, "--data-dir", dataDir().string(), "--api-socket",
                  (dir_->path() / "api.sock").string(), "--desired", desiredDir().string(),
                  "--plain-http-registry", registry_->address(), "--log-level", "debug"},
         .stdout_path = logPath(),
         .stderr_path = logPath()});
    ASSERT_TRUE(child) << child.error().message();
    agent_.emplace(std::move(*child));
  }

  void stopAgent() {
    auto status = agent_->stop(SIGTERM, 20s);
    EXPECT_EQ(status.term_signal, 0) << "fleetletd did not stop on SIGTERM\n" << agentLog();
    agent_.reset();
  }

  void killAgent() {
    agent_->signal(SIGKILL);
    agent_->wait();
    agent_.reset();
  }

  std::string agentLog() const { return readFile(logPath()); }

  // Writes the manifest atomically into the watched directory.
  void apply(const std::string& yaml, const std::string& file = "node.yaml") {
    auto tmp = desiredDir() / (".tmp-" + file);
    std::ofstream(tmp) << yaml;
    std::filesystem::rename(tmp, desiredDir() / file);
  }

  std::string manifest(int revision, const std::string& apps) const {
    return "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: " + std::to_string(revision) +
           "\napps:\n" + apps;
  }

  // A busybox app; `body` is extra YAML at the app's indentation.
  std::string busyboxApp(const std::string& name, const std::string& command,
                         const std::string& body = "") const {
    return "  " + name + ":\n    runtime: container\n    image: " + images_->busybox() +
           "\n    args: [\"sh\", \"-c\", \"" + command + "\"]\n    stopGracePeriod: 1s\n" + body;
  }

  std::set<std::string> containers() {
    return lines(containerd_->ctrOk({"containers", "ls", "-q"}, ns_).value_or(""));
  }
  std::set<std::string> snapshots() {
    auto out = containerd_->ctrOk({"snapshots", "ls"}, ns_).value_or("");
    std::set<std::string> keys;
    std::istringstream in(out);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string key, parent, kind;
      fields >> key >> parent >> kind;
      if (kind == "Active") keys.insert(key);
    }
    return keys;
  }
  // Running task ids.
  std::set<std::string> runningTasks() {
    std::set<std::string> ids;
    for (const auto& [id, task] : tasks()) {
      if (task.second == "RUNNING") ids.insert(id);
    }
    return ids;
  }
  std::string containerOf(const std::string& app) {
    for (const auto& id : containers()) {
      if (id.starts_with(app + "-")) return id;
    }
    return "";
  }
  bool waitRunning(const std::set<std::string>& apps, std::chrono::milliseconds timeout = 60s) {
    return testing::waitFor(
        [&] {
          auto running = runningTasks();
          size_t n = 0;
          for (const auto& id : running) {
            for (const auto& a : apps) n += id.starts_with(a + "-") ? 1 : 0;
          }
          return n == apps.size() && running.size() == apps.size();
        },
        timeout);
  }

  // The apps as the local API reports them, by name; empty when it does not answer.
  std::map<std::string, Json> apiApps() {
    http::Client api({.unix_socket = (dir_->path() / "api.sock").string()});
    auto r = api.send({.url = "http://fleetletd/v1/apps"});
    std::map<std::string, Json> out;
    if (!r || r->status != 200) return out;
    auto body = parseJson(r->body, "apps");
    if (!body || !(*body)["apps"].is_array()) return out;
    for (const auto& a : (*body)["apps"]) out[a.value("name", "")] = a;
    return out;
  }
  // GET `path` on the local API: the status (0 when it does not answer) and the body.
  std::pair<long, std::string> apiGet(const std::string& path) {
    http::Client api({.unix_socket = (dir_->path() / "api.sock").string()});
    auto r = api.send({.url = "http://fleetletd" + path});
    if (!r) return {0, r.error().message()};
    return {r->status, r->body};
  }
  // The node events with seq > after (empty when the API does not answer).
  std::vector<Json> apiEvents(int64_t after) {
    auto [status, body] = apiGet("/v1/events?after=" + std::to_string(after));
    std::vector<Json> out;
    if (status != 200) return out;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (auto e = parseJson(line, "event")) out.push_back(std::move(*e));
    }
    return out;
  }
  // (pid, status) by container id, from containerd's task listing.
  std::map<std::string, std::pair<std::string, std::string>> tasks() {
    auto out = containerd_->ctrOk({"tasks", "ls"}, ns_).value_or("");
    std::map<std::string, std::pair<std::string, std::string>> result;
    std::istringstream in(out);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, pid, status;
      fields >> id >> pid >> status;
      result[id] = {pid, status};
    }
    return result;
  }

  const LocalRegistry* registry_ = nullptr;
  const TestImages* images_ = nullptr;
  std::optional<PrivateContainerd> containerd_;
  std::optional<TempDir> dir_;
  std::optional<ChildProcess> agent_;
  std::string ns_;
};

TEST_F(FleetletdTest, ThreeAppsConvergeWithTheirCgroupLimits) {
  startAgent();
  apply(manifest(1, busyboxApp("web", "sleep 1000", "    resources: {memory: 64Mi, pids: 32}\n") +
                        busyboxApp("worker", "sleep 1000",
                                   "    resources: {memory: 32Mi, pids: 16, cpu: 0.5}\n"
                                   "    dependsOn: [web]\n") +
                        busyboxApp("tick", "while true; do echo tick; sleep 1; done")));
  ASSERT_TRUE(waitRunning({"web", "worker", "tick"})) << agentLog();
  auto cgroup = [&](const std::string& controller, const std::string& app,
                    const std::string& file) {
    return readFile(std::filesystem::path("/sys/fs/cgroup") / controller / ns_ / containerOf(app) /
                    file);
  };
  EXPECT_EQ(cgroup("memory", "web", "memory.limit_in_bytes"), "67108864\n");
  EXPECT_EQ(cgroup("pids", "web", "pids.max"), "32\n");
  EXPECT_EQ(cgroup("memory", "worker", "memory.limit_in_bytes"), "33554432\n");
  EXPECT_EQ(cgroup("pids", "worker", "pids.max"), "16\n");
  EXPECT_EQ(cgroup("cpu", "worker", "cpu.cfs_quota_us"), "50000\n");
  // Labels tie each container to its app, spec and revision.
  auto info = containerd_->ctrOk({"containers", "info", containerOf("web")}, ns_);
  ASSERT_TRUE(info);
  auto json = parseJson(*info, "ctr containers info").value();
  EXPECT_EQ(json["Labels"]["fleetlet.io/app"], "web");
  EXPECT_EQ(json["Labels"]["fleetlet.io/revision"], "1");
  EXPECT_EQ(json["Labels"]["fleetlet.io/spec-hash"].get<std::string>().size(), 64u);
}

TEST_F(FleetletdTest, ChangingOneAppReplacesOnlyThatApp) {
  startAgent();
  apply(manifest(1, busyboxApp("a", "sleep 1000") + busyboxApp("b", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"a", "b"})) << agentLog();
  auto a_before = containerOf("a");
  auto b_before = containerOf("b");
  apply(manifest(2, busyboxApp("a", "sleep 1000") +
                        busyboxApp("b", "sleep 1000", "    env: {COLOUR: blue}\n")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return containerOf("b") != b_before && waitRunning({"a", "b"}, 1s);
      },
      60s))
      << agentLog();
  EXPECT_EQ(containerOf("a"), a_before);
  EXPECT_EQ(containers().size(), 2u);
  auto env = containerd_->ctrOk(
      {"tasks", "exec", "--exec-id", "env-check", containerOf("b"), "sh", "-c", "echo $COLOUR"},
      ns_);
  ASSERT_TRUE(env) << env.error().message();
  EXPECT_EQ(*env, "blue\n");
}

TEST_F(FleetletdTest, RemovedAppLosesItsContainerAndSnapshot) {
  startAgent();
  apply(manifest(1, busyboxApp("keep", "sleep 1000") + busyboxApp("drop", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"keep", "drop"})) << agentLog();
  auto dropped = containerOf("drop");
  apply(manifest(2, busyboxApp("keep", "sleep 1000")));
  ASSERT_TRUE(testing::waitFor([&] { return containers().size() == 1; }, 60s)) << agentLog();
  EXPECT_FALSE(containers().contains(dropped));
  EXPECT_FALSE(snapshots().contains(dropped));
  EXPECT_EQ(snapshots().size(), 1u);
}

TEST_F(FleetletdTest, CrashingAppIsRestartedAndNeverStaysDown) {
  startAgent();
  apply(manifest(1, busyboxApp("crash", "echo started; exit 3") +
                        busyboxApp("once", "exit 3", "    restart: {policy: never}\n")));
  // The crashing app's log shows it being started again and again with growing pauses.
  auto log = dataDir() / "logs" / "crash" / "current.log";
  ASSERT_TRUE(testing::waitFor(
      [&] {
        // CRI format: "<time> stdout F started", one per start.
        return countOf(readFile(log), " stdout F started") >= 3;
      },
      30s))
      << agentLog();
  // "never" started exactly once: one container, its task stopped, not restarted.
  std::string agent_log = agentLog();
  EXPECT_EQ(agent_log.find("app once: restarted"), std::string::npos);
  EXPECT_NE(agent_log.find("app crash: restarted"), std::string::npos) << agent_log;
}

TEST_F(FleetletdTest, UnhealthyAppIsRestarted) {
  startAgent();
  // Both serve /srv/app over HTTP; "sick" is checked on a path that does not exist.
  const std::string serve = "busybox httpd -f -p 8080 -h /srv/app";
  apply(manifest(1, busyboxApp("well", serve,
                               "    health: {http: {port: 8080, path: /hello.txt}, interval: 1s, "
                               "failures: 2}\n") +
                        busyboxApp("sick", serve,
                                   "    health: {http: {port: 8080, path: /missing}, interval: 1s, "
                                   "failures: 2}\n")));
  ASSERT_TRUE(waitRunning({"well", "sick"})) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] { return agentLog().find("app sick: restarted") != std::string::npos; }, 30s))
      << agentLog();
  auto log = agentLog();
  EXPECT_NE(log.find("app sick: unhealthy: http 404"), std::string::npos) << log;
  EXPECT_EQ(log.find("app well: unhealthy"), std::string::npos) << log;
  EXPECT_EQ(log.find("app well: restarted"), std::string::npos) << log;
}

TEST_F(FleetletdTest, BadManifestsLeaveRunningAppsUntouched) {
  startAgent();
  apply(manifest(1, busyboxApp("steady", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"steady"})) << agentLog();
  auto before = containers();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"unknown-field", manifest(2, busyboxApp("steady", "sleep 1000", "    colour: red\n"))},
      {"bad-quantity",
       manifest(3, busyboxApp("steady", "sleep 1000", "    resources: {memory: 64Q}\n"))},
      {"cycle", manifest(4, busyboxApp("x", "true", "    dependsOn: [y]\n") +
                                busyboxApp("y", "true", "    dependsOn: [x]\n"))},
      {"runtime", manifest(5, "  z:\n    runtime: vm\n")},
      {"not-yaml", "apps: [: ::"},
  };
  for (const auto& [name, text] : bad) apply(text, name + ".yaml");
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto log = agentLog();
        return log.find("cycle") != std::string::npos && log.find("64Q") != std::string::npos &&
               log.find("colour") != std::string::npos;
      },
      20s))
      << agentLog();
  EXPECT_EQ(containers(), before);
  EXPECT_TRUE(waitRunning({"steady"}, 1s));
}

TEST_F(FleetletdTest, KillDuringApplyThenRestartConvergesWithoutLeaks) {
  startAgent();
  std::string apps;
  std::set<std::string> names;
  for (int i = 0; i < 20; ++i) {
    std::string name = "app" + std::to_string(i);
    names.insert(name);
    apps += busyboxApp(name, "sleep 1000");
  }
  apply(manifest(1, apps));
  // Kill it while it is creating containers.
  ASSERT_TRUE(testing::waitFor([&] { return containers().size() >= 3; }, 60s)) << agentLog();
  killAgent();
  startAgent();
  ASSERT_TRUE(waitRunning(names, 120s)) << agentLog();
  // Exactly one container, one task and one active snapshot per app; no creation lease left.
  EXPECT_EQ(containers().size(), 20u);
  EXPECT_EQ(snapshots().size(), 20u);
  auto leases = containerd_->ctrOk({"leases", "ls", "-q"}, ns_);
  ASSERT_TRUE(leases);
  EXPECT_EQ(lines(*leases).size(), 0u) << *leases;
}

TEST_F(FleetletdTest, StopsOnSigtermAndResumesWhereItWas) {
  startAgent();
  apply(manifest(1, busyboxApp("a", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  auto id = containerOf("a");
  stopAgent();
  // The app keeps running without the agent, and a new agent adopts it rather than
  // replacing it.
  EXPECT_TRUE(runningTasks().contains(id));
  startAgent();
  // The new agent's first pass is over once its local API reports the app (its status comes
  // from a pass), and it must name the same container.
  Json reported;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        if (!apps.contains("a")) return false;
        reported = apps["a"];
        return reported.value("state", "") == "running";
      },
      30s))
      << reported.dump() << agentLog();
  EXPECT_EQ(reported.value("containerId", ""), id) << reported.dump();
  EXPECT_EQ(containers(), std::set<std::string>{id});
  EXPECT_TRUE(runningTasks().contains(id));
}

// Issue 17, D13: node event seqs continue above the previous run's after a restart, so a
// client that resumes with after=<the last seq it saw> gets the new run's events.
TEST_F(FleetletdTest, EventSeqsContinueAcrossRestarts) {
  startAgent();
  apply("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 1\napps: {}\n");
  std::vector<Json> first;
  auto has_kind = [](const std::vector<Json>& events, const std::string& kind) {
    return std::any_of(events.begin(), events.end(),
                       [&](const Json& e) { return e.value("kind", "") == kind; });
  };
  ASSERT_TRUE(testing::waitFor(
      [&] {
        first = apiEvents(0);
        return has_kind(first, "applied");
      },
      30s))
      << agentLog();
  int64_t last = first.back().value("seq", int64_t{0});
  ASSERT_GT(last, 0);
  stopAgent();
  startAgent();
  std::vector<Json> resumed;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        resumed = apiEvents(last);
        return has_kind(resumed, "loaded");
      },
      30s))
      << "after=" << last << " did not return the restarted agent's events\n"
      << apiGet("/v1/events").second << agentLog();
  // Every event of the new run is numbered above the old run's.
  auto all = apiEvents(0);
  ASSERT_FALSE(all.empty());
  EXPECT_GT(all.front().value("seq", int64_t{0}), last) << all.front().dump();
  // D8 on the real agent: a name that climbs out of the log directory is refused.
  auto [status, body] = apiGet("/v1/apps/..%2F..%2Fdata/logs");
  EXPECT_EQ(status, 400) << body;
}

TEST_F(FleetletdTest, ContainerdRestartUnderTheAgentIsRidden) {
  startAgent();
  apply(manifest(1, busyboxApp("steady", "sleep 1000") + busyboxApp("dies", "sleep 1000") +
                        busyboxApp("once", "sleep 1000", "    restart: {policy: never}\n")));
  ASSERT_TRUE(waitRunning({"steady", "dies", "once"})) << agentLog();
  const auto before = containers();
  const auto tasks_before = tasks();
  const std::string steady = containerOf("steady"), dies = containerOf("dies"),
                    once = containerOf("once");

  // containerd crashes; while it is down two apps' processes die. Their shims reap them and
  // keep the exit for containerd.
  containerd_->stopDaemon(SIGKILL);
  for (const auto& id : {dies, once}) {
    ASSERT_EQ(::kill(std::stoi(tasks_before.at(id).first), SIGKILL), 0) << id;
  }
  // The agent stays up and keeps answering from what it last saw.
  EXPECT_EQ(apiApps().size(), 3u) << agentLog();

  ASSERT_TRUE(containerd_->startDaemon());
  // It reconnects and handles the deaths per restart policy: "dies" (always) runs again in
  // the same container with a new pid and one restart counted; "once" (never) stays down;
  // "steady" was never touched.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps.contains("dies") && apps["dies"].value("state", "") == "running" &&
               apps["dies"].value("restarts", 0) == 1 && apps.contains("once") &&
               apps["once"].value("state", "") == "exited";
      },
      60s))
      << agentLog();
  auto after = tasks();
  EXPECT_NE(after.at(dies).first, tasks_before.at(dies).first);
  EXPECT_EQ(after.at(dies).second, "RUNNING");
  EXPECT_EQ(after.at(once).second, "STOPPED");
  EXPECT_EQ(after.at(steady), tasks_before.at(steady));
  EXPECT_EQ(containers(), before) << "no container was added or replaced";
  EXPECT_EQ(snapshots().size(), 3u);
  auto apps = apiApps();
  ASSERT_TRUE(apps.contains("steady") && apps.contains("once"));
  EXPECT_EQ(apps["steady"].value("restarts", -1), 0);
  EXPECT_EQ(apps["once"].value("restarts", -1), 0);
  auto log = agentLog();
  EXPECT_NE(log.find("app dies: restarted"), std::string::npos) << log;
  EXPECT_EQ(log.find("app once: restarted"), std::string::npos) << log;
}

TEST_F(FleetletdTest, StopsPromptlyOnSigtermWhileContainerdIsDown) {
  startAgent();
  apply(manifest(1, busyboxApp("a", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  containerd_->stopDaemon();
  // A new revision starts a pass, which then waits for containerd (up to a minute per call).
  apply(manifest(2, busyboxApp("a", "sleep 1000") + busyboxApp("b", "sleep 1000")));
  ASSERT_TRUE(
      testing::waitFor([&] { return countOf(agentLog(), "reconcile pass: revision 2") > 0; }, 20s))
      << agentLog();
  // SIGTERM cancels the waiting calls instead of sitting the minute out: fleetletd exits on
  // its own well within the 15 s it is given here.
  auto status = agent_->stop(SIGTERM, 15s);
  agent_.reset();
  EXPECT_EQ(status.term_signal, 0) << "fleetletd had to be killed\n" << agentLog();
  EXPECT_EQ(status.exit_code, 0) << agentLog();
  EXPECT_NE(agentLog().find("fleetletd stopped"), std::string::npos) << agentLog();
}

}  // namespace
}  // namespace fleetlet
