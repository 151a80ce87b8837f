// fleetletd end to end: the real binary against a private containerd and a loopback
// registry, fed through its --desired directory and checked through containerd's own listings
// (ctr) and the kernel's cgroup files.
#include <arpa/inet.h>
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "fleetletd_fixture.h"

namespace fleetlet {
namespace {

using namespace fleetletd_testing;

// A registry that answers every request with a 200 whose body drips in at 2 bytes a second,
// for ever: the slowest registry a pull can meet.
class DrippingRegistry {
 public:
  DrippingRegistry() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      ADD_FAILURE() << "dripping registry: socket: " << std::strerror(errno);
      return;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "dripping registry: " << std::strerror(errno);
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::jthread([this](const std::stop_token& stop) { serve(stop); });
  }
  ~DrippingRegistry() {
    thread_.request_stop();
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

 private:
  void serve(const std::stop_token& stop) {
    std::vector<std::jthread> connections;
    while (!stop.stop_requested()) {
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++requests_;
      connections.emplace_back([c](const std::stop_token& s) {
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          request.append(buf, static_cast<size_t>(n));
        }
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
            "Content-Length: 1000000\r\n\r\n";
        ::send(c, head.data(), head.size(), MSG_NOSIGNAL);
        while (!s.stop_requested() && ::send(c, "{ ", 2, MSG_NOSIGNAL) == 2) {
          for (int i = 0; i < 10 && !s.stop_requested(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }
        ::close(c);
      });
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::jthread thread_;
};

// A pids cgroup (v1) of the test's own, removed when the test ends.
class PidsCgroup {
 public:
  explicit PidsCgroup(int max) {
    path_ = std::filesystem::path("/sys/fs/cgroup/pids") /
            testing::PrivateContainerd::uniqueId("fleetlet-pids");
    std::filesystem::create_directories(path_);
    std::ofstream(path_ / "pids.max") << max;
  }
  ~PidsCgroup() { ::rmdir(path_.c_str()); }
  // Runs the command inside the cgroup.
  std::vector<std::string> wrapper() const {
    return {"/bin/sh", "-c", "echo $$ > " + (path_ / "cgroup.procs").string() + " && exec \"$@\"",
            "sh"};
  }
  std::string read(const std::string& file) const {
    std::string v;
    std::ifstream(path_ / file) >> v;
    return v;
  }

 private:
  std::filesystem::path path_;
};

int threadCount(pid_t pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

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
  // The shim this run chose (runtime.containerShim; FLEETLET_TEST_CONTAINER_SHIM).
  EXPECT_EQ(json["Runtime"]["Name"], containerRuntime());
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
        // The old b stays until the new one runs (download-then-kill): wait for it to go.
        auto ids = containers();
        return ids.size() == 2 && !ids.contains(b_before) && waitRunning({"a", "b"}, 1s);
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

// Exec health probes run in the container (the shim's Exec); a container's OOM kill is told
// apart from other exits (the shim's /tasks/oom event and the cgroup's count).
TEST_F(FleetletdTest, ExecProbesRunInTheContainerAndOomKillsAreReported) {
  startAgent();
  apply(manifest(
      1,
      busyboxApp("ready", "touch /ready; sleep 1000",
                 "    health: {exec: {command: [test, -f, /ready]}, interval: 1s, failures: 2}\n") +
          busyboxApp("sick", "sleep 1000",
                     "    health: {exec: {command: [sh, -c, \"echo not-ready; exit 3\"]}, "
                     "interval: 1s, failures: 2}\n") +
          busyboxApp("hog", "exec tail /dev/zero", "    resources: {memory: 16Mi}\n")));
  ASSERT_TRUE(testing::waitFor(
      [&] { return agentLog().find("app sick: restarted") != std::string::npos; }, 60s))
      << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return agentLog().find("app hog: exited: exit code 137 (OOM killed)") != std::string::npos;
      },
      60s))
      << agentLog();
  auto log = agentLog();
  EXPECT_NE(log.find("app sick: unhealthy: exec exited 3: not-ready"), std::string::npos) << log;
  EXPECT_EQ(log.find("app ready: unhealthy"), std::string::npos) << log;
  EXPECT_EQ(log.find("app ready: restarted"), std::string::npos) << log;
}

// A containerd without containerd-shim-fleetlet-v1 on its PATH (nor beside it).
class FleetletdWithoutShimTest : public FleetletdTest {
 protected:
  std::filesystem::path shimDirectory() const override { return dir_->path() / "no-shim-here"; }
};

// Apps on a shim containerd cannot find fail naming the binary and where it goes (the package's
// /usr/bin), not with containerd's bare "binary not installed"; nothing runs, the agent stays up.
TEST_F(FleetletdWithoutShimTest, AppsOnAShimContainerdCannotFindFailNamingIt) {
  startAgent();
  std::string apps = "  n:\n    runtime: native\n    exec: {path: /bin/sleep, args: [\"1000\"]}\n";
  const bool containers_on_fleetlet = containerRuntime() == "io.containerd.fleetlet.v1";
  if (containers_on_fleetlet) apps += busyboxApp("c", "sleep 1000");
  apply(manifest(1, apps));
  std::map<std::string, Json> listed;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        listed = apiApps();
        for (const auto* app : {"n", "c"}) {
          if (std::string_view(app) == "c" && !containers_on_fleetlet) continue;
          if (!listed.contains(app)) return false;
          if (listed[app].value("message", "").find("containerd-shim-fleetlet-v1") ==
              std::string::npos) {
            return false;
          }
        }
        return true;
      },
      60s))
      << agentLog();
  const auto native = listed["n"].value("message", "");
  EXPECT_THAT(native, ::testing::HasSubstr("containerd cannot find the shim "
                                           "containerd-shim-fleetlet-v1 (runtime "
                                           "io.containerd.fleetlet.v1) on its PATH"));
  EXPECT_THAT(native, ::testing::HasSubstr("/usr/bin"));
  // Only container apps can move to the other shim.
  EXPECT_THAT(native, ::testing::Not(::testing::HasSubstr("runtime.containerShim")));
  if (containers_on_fleetlet) {
    EXPECT_THAT(listed["c"].value("message", ""),
                ::testing::HasSubstr("or set runtime.containerShim: runc"));
  }
  EXPECT_TRUE(runningTasks().empty());
  EXPECT_FALSE(agent_->poll().has_value()) << "fleetletd died\n" << agentLog();
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

// A node whose fleetletd data directory was lost while containerd kept the containers, their
// tasks gone (what `hack/demo.sh` met on its second run): the next fleetletd starts the
// containers it finds again, making the volume directory and /etc/hosts they bind anew,
// instead of leaving the app in backoff on "stat …/volumes/…: no such file or directory".
TEST_F(FleetletdTest, ContainersOutlivingALostDataDirectoryStartAgain) {
  startAgent();
  apply(manifest(1, busyboxApp("a", "echo kept > /data/x; sleep 1000",
                               "    volumes:\n      - {name: data, path: /data}\n")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  const auto id = containerOf("a");
  killAgent();
  ASSERT_TRUE(containerd_->ctrOk({"tasks", "kill", "-s", "SIGKILL", id}, ns_));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return containerd_->ctrOk({"tasks", "delete", id}, ns_).has_value();
      },
      30s));
  std::error_code ec;
  std::filesystem::remove_all(dataDir(), ec);
  ASSERT_FALSE(ec) << ec.message();

  startAgent();
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  EXPECT_EQ(containerOf("a"), id) << "the container found was replaced";
  EXPECT_TRUE(runningTasks().contains(id));
  EXPECT_TRUE(testing::waitFor(
      [&] { return std::filesystem::exists(dataDir() / "volumes" / "a" / "data" / "x"); }, 30s));
}

// A node that lost its state (data directory gone) and has no desired state yet keeps the apps
// it finds running, instead of removing them as undesired before any source has answered; the
// desired state, once it comes, adopts them as they run, and one without them removes them.
TEST_F(FleetletdTest, ANodeThatLostItsStateKeepsItsAppsUntilADesiredStateSaysOtherwise) {
  startAgent();
  apply(manifest(1, busyboxApp("a", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  const auto id = containerOf("a");
  const auto pid = tasks().at(id).first;
  killAgent();
  std::error_code ec;
  std::filesystem::remove_all(dataDir(), ec);
  ASSERT_FALSE(ec) << ec.message();
  std::filesystem::remove(desiredDir() / "node.yaml", ec);
  ASSERT_FALSE(ec) << ec.message();

  startAgent();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return agentLog().find("app a: left running until a desired state says") !=
               std::string::npos;
      },
      30s))
      << agentLog();
  EXPECT_EQ(tasks().at(id).first, pid) << "the app was stopped before any desired state";

  apply(manifest(1, busyboxApp("a", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  EXPECT_EQ(tasks().at(id).first, pid) << "the desired state restarted the app it adopts";

  apply("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 2\napps: {}\n");
  EXPECT_TRUE(testing::waitFor([&] { return !containers().contains(id); }, 30s)) << agentLog();
}

// A volume directory removed while its task keeps running (by hand, or with the whole data
// directory as in the demo's second run, where the node services kept their database and blob
// store in deleted directories and uploads failed): the task starts again, onto a new one.
TEST_F(FleetletdTest, RunningAppsWhoseVolumeWasLostStartAgainOntoANewOne) {
  startAgent();
  apply(manifest(1, busyboxApp("a", "while true; do date > /data/x; sleep 0.2; done",
                               "    volumes:\n      - {name: data, path: /data}\n")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  const auto id = containerOf("a");
  const auto pid_before = tasks().at(id).first;
  killAgent();
  std::error_code ec;
  std::filesystem::remove_all(dataDir() / "volumes", ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(runningTasks().contains(id)) << "the task should outlive the agent";

  startAgent();
  ASSERT_TRUE(testing::waitFor(
      [&] { return std::filesystem::exists(dataDir() / "volumes" / "a" / "data" / "x"); }, 60s))
      << "the task still writes into the deleted directory\n"
      << agentLog();
  EXPECT_EQ(containerOf("a"), id) << "the container was replaced, not restarted";
  EXPECT_NE(tasks().at(id).first, pid_before);
  EXPECT_EQ(agentLog().find("app a: removed"), std::string::npos) << agentLog();
  EXPECT_NE(agentLog().find("app a: volume lost: " +
                            (dataDir() / "volumes" / "a" / "data").string() + " is gone"),
            std::string::npos)
      << agentLog();
}

// An app's log directory removed while its task runs (with the data directory, as in the demo's
// second run): its logger makes the directory and current.log again at its next write, so
// `fleetletctl logs` shows the app's later lines instead of "has no logs on this node".
TEST_F(FleetletdTest, ARunningAppsLogIsWrittenAgainAfterItsDirectoryWasRemoved) {
  startAgent();
  apply(manifest(1,
                 busyboxApp("a", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done")));
  ASSERT_TRUE(waitRunning({"a"})) << agentLog();
  const auto log = dataDir() / "logs" / "a" / "current.log";
  ASSERT_TRUE(
      testing::waitFor([&] { return readFile(log).find("line 2") != std::string::npos; }, 30s));
  const auto pid = tasks().at(containerOf("a")).first;
  std::error_code ec;
  std::filesystem::remove_all(dataDir() / "logs", ec);
  ASSERT_FALSE(ec) << ec.message();

  EXPECT_TRUE(
      testing::waitFor([&] { return readFile(log).find("line ") != std::string::npos; }, 30s))
      << "the app's lines still go into the deleted file";
  EXPECT_EQ(readFile(log).find("line 1\n"), std::string::npos) << "only later lines";
  EXPECT_EQ(tasks().at(containerOf("a")).first, pid) << "the app was not restarted for it";
}

// A device upgraded from a fleetletd whose container shim was containerd's Go shim (the default
// before the fleetlet shim became it): the new agent adopts the running containers as they
// are, creates only new and changed apps on the fleetlet shim, and still restarts and removes
// the old ones.
TEST_F(FleetletdTest, AppsCreatedOnTheGoShimAreAdoptedAfterTheDefaultBecameTheFleetletShim) {
  container_shim_flag_ = "runc";
  startAgent();
  apply(manifest(1, busyboxApp("keep", "sleep 1000") + busyboxApp("change", "sleep 1000") +
                        busyboxApp("drop", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"keep", "change", "drop"})) << agentLog();
  const auto before = tasks();
  const std::string keep = containerOf("keep");
  const std::string change = containerOf("change");
  const std::string drop = containerOf("drop");
  for (const auto& id : {keep, change, drop}) ASSERT_EQ(runtimeOf(id), "io.containerd.runc.v2");
  stopAgent();

  container_shim_flag_.clear();  // the upgraded agent: its default shim
  startAgent();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps.size() == 3 && std::all_of(apps.begin(), apps.end(), [](const auto& a) {
                 return a.second.value("state", "") == "running";
               });
      },
      30s))
      << agentLog();
  EXPECT_EQ(containers(), (std::set<std::string>{keep, change, drop}));
  EXPECT_EQ(tasks(), before) << "an adopted task was restarted";

  apply(manifest(2, busyboxApp("keep", "sleep 1000") +
                        busyboxApp("change", "sleep 1000", "    env: {COLOUR: blue}\n")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto ids = containers();
        return ids.size() == 2 && ids.contains(keep) && !ids.contains(change) &&
               waitRunning({"keep", "change"}, 1s);
      },
      60s))
      << agentLog();
  EXPECT_EQ(runtimeOf(containerOf("change")), "io.containerd.fleetlet.v1");
  EXPECT_EQ(runtimeOf(keep), "io.containerd.runc.v2");
  EXPECT_FALSE(snapshots().contains(drop));

  // The adopted Go-shim app still gets its restart policy from the new agent.
  const std::string old_pid = tasks().at(keep).first;
  ASSERT_EQ(::kill(std::stoi(old_pid), SIGKILL), 0);
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto running = tasks();
        auto it = running.find(containerOf("keep"));
        return it != running.end() && it->second.second == "RUNNING" && it->second.first != old_pid;
      },
      60s))
      << agentLog();
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
      testing::waitFor([&] { return countOf(agentLog(), "reconcile b: revision 2") > 0; }, 20s))
      << agentLog();
  // SIGTERM cancels the waiting calls instead of sitting the minute out: fleetletd exits on
  // its own well within the 15 s it is given here.
  auto status = agent_->stop(SIGTERM, 15s);
  agent_.reset();
  EXPECT_EQ(status.term_signal, 0) << "fleetletd had to be killed\n" << agentLog();
  EXPECT_EQ(status.exit_code, 0) << agentLog();
  EXPECT_NE(agentLog().find("fleetletd stopped"), std::string::npos) << agentLog();
}

// D1: a manifest with more apps than the agent could have threads once crash-looped it. Now
// workers are bounded, whatever the manifest: the agent runs 300 unrunnable apps inside a pids
// limit of 120 and stays up.
TEST_F(FleetletdTest, ManyAppsUnderATightPidsLimitDoNotCrashTheAgent) {
  PidsCgroup cgroup(120);
  startAgent({}, cgroup.wrapper());
  std::string apps;
  for (int i = 0; i < 300; ++i) {
    apps += "  app" + std::to_string(i) + ":\n    image: " + registry_->address() +
            "/fleetlet-test/missing:" + std::to_string(i % 7) + "\n";
  }
  apply(manifest(1, apps));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto listed = apiApps();
        return listed.size() == 300 && std::all_of(listed.begin(), listed.end(), [](const auto& a) {
                 return a.second.value("state", "") == "backoff";
               });
      },
      120s))
      << agentLog();
  EXPECT_FALSE(agent_->poll().has_value()) << "fleetletd died\n" << agentLog();
  EXPECT_LE(std::stoi(cgroup.read("pids.current")), 60);
  EXPECT_EQ(agentLog().find("terminate called"), std::string::npos) << agentLog();
  auto app0 = apiApps()["app0"];
  EXPECT_NE(app0.value("message", "").find("retry in"), std::string::npos) << app0.dump();
}

// D2: ten thousand apps whose image cannot be pulled cost the workers and pull threads, not a
// thread each; their retries back off.
TEST_F(FleetletdTest, TenThousandFailingAppsUseBoundedThreads) {
  startAgent({"--parallelism", "4", "--pull-parallelism", "2"});
  ASSERT_TRUE(testing::waitFor([&] { return countOf(agentLog(), "local API on") > 0; }, 20s));
  std::this_thread::sleep_for(500ms);
  const int idle = threadCount(agent_->pid());
  std::string apps;
  for (int i = 0; i < 10000; ++i) {
    apps += "  app" + std::to_string(i) + ": {image: " + registry_->address() +
            "/fleetlet-test/missing:1}\n";
  }
  apply(manifest(1, apps));
  int most = idle;
  size_t backoff = 0;
  testing::waitFor(
      [&] {
        most = std::max(most, threadCount(agent_->pid()));
        auto listed = apiApps();
        backoff = std::count_if(listed.begin(), listed.end(), [](const auto& a) {
          return a.second.value("state", "") == "backoff";
        });
        return backoff == 10000;
      },
      300s);
  EXPECT_EQ(backoff, 10000u) << agentLog().substr(0, 4000);
  // The threads a pull or a request to the API may add come and go; none is per app.
  EXPECT_LE(most, idle + 8) << "idle " << idle;
  EXPECT_FALSE(agent_->poll().has_value()) << "fleetletd died";
}

// D3: a registry that drips two bytes a second holds up only the app whose image it serves.
// Meanwhile a crashing app is restarted by its policy and a changed app is replaced; then the
// drip is cut off by the minimum transfer rate, and the app backs off.
TEST_F(FleetletdTest, ADrippingRegistryHoldsUpOnlyItsOwnApp) {
  DrippingRegistry drip;
  startAgent({"--plain-http-registry", drip.address(), "--pull-stall-timeout", "20s",
              "--pull-min-speed", "1024"});
  auto slow = "  slow:\n    image: " + drip.address() + "/acme/slow:1\n";
  apply(manifest(
      1, slow + busyboxApp("crash", "sleep 1; exit 3") + busyboxApp("steady", "sleep 1000")));
  ASSERT_TRUE(testing::waitFor([&] { return drip.requests() > 0; }, 30s)) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps["crash"].value("restarts", 0) >= 2 &&
               apps["steady"].value("state", "") == "running";
      },
      30s))
      << agentLog();
  EXPECT_EQ(apiApps()["slow"].value("state", ""), "pulling");
  // A changed app is applied while the pull still drips.
  apply(manifest(
      2, slow + busyboxApp("crash", "sleep 1; exit 3") + busyboxApp("steady", "sleep 999")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto steady = apiApps()["steady"];
        return steady.value("state", "") == "running" &&
               countOf(agentLog(), "app steady: removed") == 1;
      },
      30s))
      << agentLog();
  EXPECT_EQ(apiApps()["slow"].value("state", ""), "pulling");
  // After 20 s under 1 KiB/s the pull fails and the app backs off.
  ASSERT_TRUE(
      testing::waitFor([&] { return apiApps()["slow"].value("state", "") == "backoff"; }, 60s))
      << agentLog();
  EXPECT_NE(apiApps()["slow"].value("message", "").find("too slow"), std::string::npos)
      << apiApps()["slow"].dump();
}

// D9: a container stops with the grace of the spec it runs — when it is replaced by a spec
// with a shorter one, and when its app is removed (not a default of 10 s).
TEST_F(FleetletdTest, StopsUseTheGraceTheContainerWasCreatedWith) {
  startAgent();
  auto stubborn = [&](const std::string& grace, const std::string& command) {
    return "  stubborn:\n    image: " + images_->busybox() +
           "\n    args: [\"sh\", \"-c\", \"trap '' TERM; " + command +
           "\"]\n    stopGracePeriod: " + grace + "\n";
  };
  apply(manifest(1, stubborn("3s", "sleep 1000")));
  ASSERT_TRUE(waitRunning({"stubborn"})) << agentLog();
  const std::string first = containerOf("stubborn");
  apply(manifest(2, stubborn("1s", "sleep 999")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto ids = containers();
        return ids.size() == 1 && !ids.contains(first) && waitRunning({"stubborn"}, 1s);
      },
      60s))
      << agentLog();
  EXPECT_NE(agentLog().find(first + " did not stop within 3000 ms of SIGTERM"), std::string::npos)
      << agentLog();
  const std::string second = containerOf("stubborn");
  apply(manifest(3, busyboxApp("other", "sleep 1000")));
  ASSERT_TRUE(testing::waitFor([&] { return containerOf("stubborn").empty(); }, 60s)) << agentLog();
  EXPECT_NE(agentLog().find(second + " did not stop within 1000 ms of SIGTERM"), std::string::npos)
      << agentLog();
}

// D21: the logs of a removed app go with it once their retention has passed.
TEST_F(FleetletdTest, LogsOfARemovedAppAreDeleted) {
  startAgent({"--removed-log-retention", "0s"});
  apply(manifest(1, busyboxApp("chatty", "echo hello; sleep 1000") +
                        busyboxApp("quiet", "echo still here; sleep 1000")));
  ASSERT_TRUE(waitRunning({"chatty", "quiet"})) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] { return std::filesystem::exists(dataDir() / "logs" / "chatty" / "current.log"); }, 20s));
  apply(manifest(2, busyboxApp("quiet", "echo still here; sleep 1000")));
  ASSERT_TRUE(testing::waitFor(
      [&] { return !std::filesystem::exists(dataDir() / "logs" / "chatty"); }, 30s))
      << agentLog();
  EXPECT_TRUE(std::filesystem::exists(dataDir() / "logs" / "quiet"));
}

// The inode of a network namespace (a pin or /proc/<pid>/ns/net): equal inodes, one namespace.
ino_t netnsInode(const std::filesystem::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::set<std::string> appChains(const std::set<std::string>& chains) {
  std::set<std::string> out;
  for (const auto& c : chains) {
    if (c.starts_with("app:")) out.insert(c);
  }
  return out;
}

std::set<std::string> veths(const std::set<std::string>& links) {
  std::set<std::string> out;
  for (const auto& l : links) {
    if (l.starts_with("veth")) out.insert(l);
  }
  return out;
}

// Issue 9: each container app in a namespace of its own on the bridge, with its policy, its
// exposed port and its counters; `mode: host` keeps the node's network.
TEST_F(FleetletdTest, AppsGetTheirOwnNetworksPoliciesAndExposedPorts) {
  startAgent();
  const std::string httpd = "httpd -f -p 8080 -h /";
  apply(manifest(
      1, busyboxApp("web", httpd,
                    "    network: {egress: none, expose: [{port: 8080, hostPort: 18080}]}\n") +
             busyboxApp("client", httpd, "    network: {egress: all}\n") +
             busyboxApp("locked", "sleep 1000", "    network: {egress: none, allow: [web]}\n") +
             busyboxApp("hosted", "sleep 1000", "    network: {mode: host}\n")));
  ASSERT_TRUE(waitRunning({"web", "client", "locked", "hosted"})) << agentLog();
  EXPECT_EQ(net_->pinnedApps(), (std::set<std::string>{"client", "locked", "web"}));
  auto pin = [&](const std::string& app) { return net_->netnsDir() / ("fleetlet-" + app); };
  auto pidOf = [&](const std::string& app) { return tasks()[containerOf(app)].first; };
  for (const std::string app : {"web", "client", "locked"}) {
    EXPECT_EQ(netnsInode("/proc/" + pidOf(app) + "/ns/net"), netnsInode(pin(app)))
        << app << " runs in its own pinned namespace";
  }
  EXPECT_EQ(netnsInode("/proc/" + pidOf("hosted") + "/ns/net"), netnsInode("/proc/self/ns/net"))
      << "mode host: the node's network namespace";

  const std::string web = net_->appAddress("web");
  const std::string client = net_->appAddress("client");
  const std::string locked = net_->appAddress("locked");
  EXPECT_TRUE(web.starts_with("10.90.")) << web;
  EXPECT_EQ((std::set<std::string>{web, client, locked}).size(), 3u) << "distinct addresses";

  using testing::TestNodeNetwork;
  ASSERT_TRUE(
      testing::waitFor([&] { return TestNodeNetwork::canConnect(pin("client"), web, 8080); }, 20s))
      << "egress all reaches another app\n"
      << agentLog();
  EXPECT_TRUE(TestNodeNetwork::canConnect(pin("locked"), web, 8080)) << "allow: [web]";
  EXPECT_FALSE(TestNodeNetwork::canConnect(pin("locked"), client, 8080)) << "egress none";
  EXPECT_FALSE(TestNodeNetwork::canConnect(pin("web"), client, 8080)) << "egress none";
  EXPECT_TRUE(TestNodeNetwork::canConnect(net_->node(), "10.90.0.1", 18080))
      << "the exposed port answers on the node's address";

  // describe app: the namespace, the address and counters that grew with that traffic.
  auto [status, body] = apiGet("/v1/apps/web");
  ASSERT_EQ(status, 200) << body;
  auto detail = Json::parse(body);
  EXPECT_EQ(detail["network"]["netns"], pin("web").string());
  EXPECT_TRUE(detail["network"]["addresses"][0].get<std::string>().starts_with(web + "/")) << body;
  EXPECT_GT(detail["network"]["ingress"]["packets"].get<uint64_t>(), 0u) << body;
  auto locked_detail = Json::parse(apiGet("/v1/apps/locked").second);
  EXPECT_GT(locked_detail["network"]["dropped"]["packets"].get<uint64_t>(), 0u)
      << locked_detail.dump();
  EXPECT_FALSE(Json::parse(apiGet("/v1/apps/hosted").second).contains("network"));

  // Removing web takes its namespace, veth and chain; the others keep theirs, also locked,
  // which is replaced (its policy changed) in the same namespace.
  apply(manifest(2, busyboxApp("client", httpd, "    network: {egress: all}\n") +
                        busyboxApp("locked", "sleep 1000", "    network: {egress: none}\n")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return net_->pinnedApps() == std::set<std::string>{"client", "locked"};
      },
      30s))
      << agentLog();
  EXPECT_EQ(appChains(net_->nftChains()),
            (std::set<std::string>{"app:client:eth0", "app:locked:eth0"}));
  EXPECT_EQ(veths(net_->nodeLinks()).size(), 2u);
  EXPECT_EQ(TestNodeNetwork::leases(dataDir() / "cni" / "networks").size(), 2u);
  EXPECT_EQ(net_->appAddress("client"), client) << "the others keep their addresses";
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return apiApps()["locked"].value("specHash", "") !=
               Json::parse(locked_detail.dump())["status"].value("specHash", "");
      },
      30s));
  EXPECT_EQ(net_->appAddress("locked"), locked);
}

// The node lost its data directory — the CNI cache and host-local's leases in it — while its
// networked apps ran in their namespaces, which live elsewhere. The next fleetletd removes the
// interfaces nobody has a record of before any ADD, and attaches the running apps again in
// place: they keep running, every address is known to IPAM and unique, and a new app cannot be
// given one a running app still holds.
TEST_F(FleetletdTest, RunningAppsWhoseNetworkRecordsWereLostAreAttachedAgainInPlace) {
  startAgent();
  const std::string httpd = "httpd -f -p 8080 -h /";
  apply(manifest(1, busyboxApp("a", httpd, "    network: {egress: all}\n") +
                        busyboxApp("b", httpd, "    network: {egress: all}\n")));
  ASSERT_TRUE(waitRunning({"a", "b"})) << agentLog();
  auto pidOf = [&](const std::string& app) { return tasks()[containerOf(app)].first; };
  const auto pid_a = pidOf("a");
  const auto pid_b = pidOf("b");
  killAgent();
  std::error_code ec;
  std::filesystem::remove_all(dataDir(), ec);
  ASSERT_FALSE(ec) << ec.message();

  startAgent();
  const auto ipam = dataDir() / "cni" / "networks";
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return testing::TestNodeNetwork::leases(ipam).size() == 2 &&
               veths(net_->nodeLinks()).size() == 2 && appChains(net_->nftChains()).size() == 2;
      },
      60s))
      << "leases " << testing::TestNodeNetwork::leases(ipam).size() << ", veths "
      << veths(net_->nodeLinks()).size() << ", chains " << appChains(net_->nftChains()).size()
      << "\n"
      << agentLog();
  EXPECT_EQ(pidOf("a"), pid_a) << "attached again without a restart";
  EXPECT_EQ(pidOf("b"), pid_b) << "attached again without a restart";

  // A new app: its address is none of theirs.
  apply(manifest(2, busyboxApp("a", httpd, "    network: {egress: all}\n") +
                        busyboxApp("b", httpd, "    network: {egress: all}\n") +
                        busyboxApp("c", httpd, "    network: {egress: all}\n")));
  ASSERT_TRUE(waitRunning({"a", "b", "c"})) << agentLog();
  const std::set<std::string> addresses = {net_->appAddress("a"), net_->appAddress("b"),
                                           net_->appAddress("c")};
  EXPECT_EQ(addresses.size(), 3u) << fmt::format("{}", fmt::join(addresses, " "));
  EXPECT_EQ(testing::TestNodeNetwork::leases(ipam).size(), 3u);
  auto pin = [&](const std::string& app) { return net_->netnsDir() / ("fleetlet-" + app); };
  EXPECT_TRUE(testing::waitFor(
      [&] {
        return testing::TestNodeNetwork::canConnect(pin("c"), net_->appAddress("a"), 8080) &&
               testing::TestNodeNetwork::canConnect(pin("a"), net_->appAddress("b"), 8080);
      },
      20s))
      << agentLog();
}

// Issue 9: kill -9 in the middle of applying ten networked apps; the next start converges with
// one namespace, veth, lease and chain per app, keeps them across a restart, and removing the
// apps leaves none.
TEST_F(FleetletdTest, KillDuringNetworkedApplyLeaksNoNetwork) {
  startAgent();
  std::string apps;
  std::set<std::string> names;
  for (int i = 0; i < 10; ++i) {
    std::string name = "net" + std::to_string(i);
    names.insert(name);
    apps += busyboxApp(name, "sleep 1000", i % 2 == 0 ? "    network: {egress: none}\n" : "");
  }
  apply(manifest(1, apps));
  ASSERT_TRUE(testing::waitFor([&] { return net_->pinnedApps().size() >= 3; }, 60s)) << agentLog();
  killAgent();
  startAgent();
  ASSERT_TRUE(waitRunning(names, 120s)) << agentLog();
  const auto ipam = dataDir() / "cni" / "networks";
  auto converged = [&] {
    return net_->pinnedApps() == names &&
           testing::TestNodeNetwork::leases(ipam).size() == names.size() &&
           veths(net_->nodeLinks()).size() == names.size() &&
           appChains(net_->nftChains()).size() == names.size();
  };
  ASSERT_TRUE(testing::waitFor(converged, 30s))
      << "pins " << net_->pinnedApps().size() << ", leases "
      << testing::TestNodeNetwork::leases(ipam).size() << ", veths "
      << veths(net_->nodeLinks()).size() << ", chains " << appChains(net_->nftChains()).size()
      << "\n"
      << agentLog();
  std::map<std::string, std::string> addresses;
  for (const auto& n : names) addresses[n] = net_->appAddress(n);

  // A restarted agent adopts the networks: same addresses, nothing added.
  stopAgent();
  startAgent();
  ASSERT_TRUE(testing::waitFor([&] { return apiApps().size() == names.size(); }, 30s));
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(converged());
  for (const auto& n : names) EXPECT_EQ(net_->appAddress(n), addresses[n]) << n;

  apply(manifest(2, "  {}\n"));
  ASSERT_TRUE(
      testing::waitFor([&] { return containers().empty() && net_->pinnedApps().empty(); }, 60s))
      << agentLog();
  ASSERT_TRUE(
      testing::waitFor([&] { return testing::TestNodeNetwork::leases(ipam).empty(); }, 10s));
  EXPECT_TRUE(veths(net_->nodeLinks()).empty())
      << fmt::format("{}", fmt::join(net_->nodeLinks(), " "));
  EXPECT_TRUE(appChains(net_->nftChains()).empty());
  std::error_code ec;
  std::vector<std::string> left;
  for (const auto& f : std::filesystem::directory_iterator(dataDir() / "cni" / "attachments", ec)) {
    left.push_back(f.path().filename().string() + ": " + readFile(f.path()));
  }
  EXPECT_TRUE(left.empty()) << fmt::format("{}", fmt::join(left, "\n")) << "\n" << agentLog();
}

// Issue 10 item 3: every line an app prints is readable in the console service under the
// app's name, once and in order, although the service is stopped while the app prints (lines
// wait in the log files) and fleetletd is killed with -9 while it ships (lines it sent again
// are recognized by their keys).
TEST_F(FleetletdTest, AppOutputReachesTheConsoleServiceOnceAndInOrderAcrossOutages) {
  startStreams();
  startAgent({"--streams-handoff", streamsHandoff().string()});
  const int kLines = 1200;
  apply(manifest(
      1, busyboxApp("talker", "i=1; while [ $i -le " + std::to_string(kLines) +
                                  " ]; do echo line $i; if [ $((i % 10)) -eq 0 ]; then echo "
                                  "err $i >&2; fi; i=$((i+1)); sleep 0.01; done; sleep 1000")));
  ASSERT_TRUE(waitRunning({"talker"})) << agentLog();
  auto count = [&] { return consoleLogs("talker").size(); };
  ASSERT_TRUE(testing::waitFor([&] { return count() >= 50; }, 60s))
      << agentLog() << readFile(dir_->path() / "streams.log");

  // The service goes away while the app prints, and comes back.
  streams_->stop(SIGTERM, 10s);
  std::this_thread::sleep_for(2s);
  startStreams();
  const size_t after_outage = count();
  ASSERT_TRUE(testing::waitFor([&] { return count() >= after_outage + 100; }, 60s)) << agentLog();

  // fleetletd dies mid-shipping and starts again.
  const size_t total = kLines + kLines / 10;
  EXPECT_LT(count(), total) << "the app had printed everything: the kill tests less";
  killAgent();
  // As if the crash had also lost the last cursor saves (they are not fsynced): the restarted
  // fleetletd sends every line again from the oldest file, and the service stores none twice.
  for (const char* f : {"cursors.db", "cursors.db-wal", "cursors.db-shm"}) {
    std::filesystem::remove(dataDir() / "logship" / f);
  }
  std::this_thread::sleep_for(1s);
  startAgent({"--streams-handoff", streamsHandoff().string()});
  ASSERT_TRUE(testing::waitFor([&] { return count() >= total; }, 120s))
      << count() << " of " << total << "\n"
      << agentLog();
  std::this_thread::sleep_for(1s);  // nothing more may come

  auto entries = consoleLogs("talker");
  std::vector<std::string> out, err;
  for (const auto& e : entries) {
    EXPECT_EQ(e.value("app", ""), "talker");
    EXPECT_TRUE(e.contains("logTimestamp")) << e.dump();
    (e.value("logName", "") == "stderr" ? err : out).push_back(e.value("message", ""));
  }
  std::vector<std::string> want_out, want_err;
  for (int i = 1; i <= kLines; ++i) {
    want_out.push_back("line " + std::to_string(i));
    if (i % 10 == 0) want_err.push_back("err " + std::to_string(i));
  }
  EXPECT_EQ(out, want_out);
  EXPECT_EQ(err, want_err);
  EXPECT_EQ(entries.size(), total);
  // And fleetletctl logs still reads the same lines from the files.
  EXPECT_EQ(countOf(readFile(dataDir() / "logs" / "talker" / "current.log"), " line "),
            size_t(kLines));
  // The restarted fleetletd did send lines again (the service recognized them).
  stopAgent();
  const std::string log = agentLog();
  const auto at = log.find("log shipping stopped");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string stopped = log.substr(at, log.find('\n', at) - at);
  std::cout << stopped << "\n";
  EXPECT_EQ(stopped.find(", 0 already stored"), std::string::npos) << stopped;
}

// Hostile output: a line longer than the shipped message size is cut into parts (labels
// part/lastPart) that join to the line; bytes that are not UTF-8 arrive as U+FFFD.
TEST_F(FleetletdTest, OversizedAndNonUtf8LinesAreCutAndReplacedAsDocumented) {
  startStreams();
  startAgent({"--streams-handoff", streamsHandoff().string()});
  apply(manifest(1, busyboxApp("noisy",
                               "head -c 100000 /dev/zero | tr '\\\\0' x; echo; printf 'bad \\\\377 "
                               "byte\\\\n'; echo end; sleep 1000")));
  ASSERT_TRUE(waitRunning({"noisy"})) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto e = consoleLogs("noisy");
        return !e.empty() && e.back().value("message", "") == "end";
      },
      60s))
      << agentLog() << readFile(dataDir() / "logs" / "noisy" / "current.log").substr(0, 2000);
  auto entries = consoleLogs("noisy");
  ASSERT_EQ(entries.size(), 4u);
  std::string joined;
  for (int i = 0; i < 2; ++i) {
    const auto& labels = entries[i]["labels"];
    EXPECT_EQ(labels.value("part", ""), std::to_string(i + 1)) << labels.dump();
    EXPECT_EQ(labels.value("lastPart", ""), i == 1 ? "true" : "false");
    EXPECT_LE(entries[i].value("message", "").size(), 64u * 1024);
    joined += entries[i].value("message", "");
  }
  EXPECT_EQ(joined, std::string(100000, 'x'));
  EXPECT_EQ(entries[2].value("message", ""), "bad \xef\xbf\xbd byte");
}

}  // namespace
}  // namespace fleetlet
