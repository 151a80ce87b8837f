#pragma once
// The fleetletd integration fixture: the real binary against a private containerd (a namespace
// of its own) and the shared loopback registry with the test images, fed through its --desired
// directory and checked through containerd's listings (ctr) and the local API. Shared by
// fleetletd_test and fleetletd_cloud_test.

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

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
#include "support/test_node_network.h"

namespace fleetlet::fleetletd_testing {

using testing::LocalRegistry;
using testing::PrivateContainerd;
using testing::TempDir;
using testing::TestImages;
using namespace std::chrono_literals;

inline std::string readFile(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

inline size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

inline std::set<std::string> lines(const std::string& text) {
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
    ASSERT_NO_FATAL_FAILURE(useContainerShimFromEnvironment());
    auto dir = TempDir::create("fleetletd-test");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    const auto shim_dir = shimDirectory();
    ASSERT_TRUE(!shim_dir.empty() || container_shim_ == "runc")
        << "containerd-shim-fleetlet-v1 is not built (nor in $FLEETLET_TEST_SHIM_DIR)";
    auto ctrd = PrivateContainerd::startWithShimsFrom(shim_dir);
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_ = std::make_unique<PrivateContainerd>(std::move(*ctrd));
    std::filesystem::create_directories(desiredDir());
    // runc keeps state per namespace and id in a directory every containerd shares: a
    // namespace of its own keeps parallel tests apart.
    ns_ = PrivateContainerd::uniqueId("fltest");
    // Apps' networks live in a node namespace of the test's own.
    auto net = testing::TestNodeNetwork::create(dir_->path());
    ASSERT_TRUE(net) << net.error().message();
    net_ = std::make_unique<testing::TestNodeNetwork>(std::move(*net));
  }

  void TearDown() override {
    if (agent_) stopAgent();
  }

  // The fleetletd that startAgent() runs: the build's, or one installed from the package.
  std::string agent_binary_ = FLEETLETD_PATH;
  // The shim of container apps in this run: FLEETLET_TEST_CONTAINER_SHIM=runc passes
  // `--container-shim runc` (containerd's Go shim, io.containerd.runc.v2), =fleetlet passes
  // `--container-shim fleetlet`; unset, fleetletd runs with its default (fleetlet). Either way
  // the private containerd has containerd-shim-fleetlet-v1 on its PATH (native apps need it):
  // shimDirectory().
  std::string container_shim_ = "fleetlet";
  std::string container_shim_flag_;  // empty: fleetletd's default

  void useContainerShimFromEnvironment() {
    const char* shim = std::getenv("FLEETLET_TEST_CONTAINER_SHIM");
    if (shim == nullptr || *shim == '\0') return;
    ASSERT_TRUE(std::string_view(shim) == "runc" || std::string_view(shim) == "fleetlet")
        << "FLEETLET_TEST_CONTAINER_SHIM: \"" << shim << "\" (expected runc or fleetlet)";
    container_shim_ = container_shim_flag_ = shim;
  }
  // Where the private containerd finds containerd-shim-fleetlet-v1 (the build's, or
  // $FLEETLET_TEST_SHIM_DIR). A subclass may name another (an installed package's).
  virtual std::filesystem::path shimDirectory() const { return PrivateContainerd::shimDir(); }
  // The containerd runtime fleetletd gives container apps in this run.
  std::string containerRuntime() const {
    return container_shim_ == "fleetlet" ? "io.containerd.fleetlet.v1" : "io.containerd.runc.v2";
  }

  std::filesystem::path desiredDir() const { return dir_->path() / "desired"; }
  std::filesystem::path dataDir() const { return dir_->path() / "data"; }
  std::filesystem::path logPath() const { return dir_->path() / "fleetletd.log"; }

  // `extra` flags follow the usual ones; `wrapper` runs before fleetletd (e.g. a shell that
  // moves itself into a cgroup, then execs "$@").
  void startAgent(const std::vector<std::string>& extra = {},
                  const std::vector<std::string>& wrapper = {}) {
    std::vector<std::string> argv = wrapper;
    for (const auto& a :
         {agent_binary_, std::string("--containerd"), containerd_->socket().string(),
          std::string("--namespace"), ns_, std::string("--data-dir"), dataDir().string(),
          std::string("--api-socket"), (dir_->path() / "api.sock").string(),
          std::string("--desired"), desiredDir().string(), std::string("--plain-http-registry"),
          registry_->address(), std::string("--log-level"), std::string("debug")}) {
      argv.push_back(a);
    }
    auto net_flags = net_->flags();
    argv.insert(argv.end(), net_flags.begin(), net_flags.end());
    if (!container_shim_flag_.empty()) {
      argv.push_back("--container-shim");
      argv.push_back(container_shim_flag_);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child =
        ChildProcess::spawn({.argv = argv, .stdout_path = logPath(), .stderr_path = logPath()});
    ASSERT_TRUE(child) << child.error().message();
    agent_ = std::make_unique<ChildProcess>(std::move(*child));
  }

  void stopAgent() {
    auto status = agent_->stop(SIGTERM, 20s);
    EXPECT_EQ(status.term_signal, 0) << "fleetletd did not stop on SIGTERM\n" << agentLog();
    agent_.reset();
  }

  void killAgent() {
    ASSERT_TRUE(agent_->signal(SIGKILL));
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
  // The containerd runtime a container was created with ("" when containerd does not know it).
  std::string runtimeOf(const std::string& id) {
    auto info = containerd_->ctrOk({"containers", "info", id}, ns_);
    if (!info) return "";
    auto json = parseJson(*info, "ctr containers info");
    return json ? (*json)["Runtime"].value("Name", "") : "";
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
    http::Client api({.unix_socket = (dir_->path() / "api.sock").string(),
                      .total_timeout = std::chrono::seconds(30)});
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

  // fleetlet-streams as a host process with a handoff socket (streamsHandoff()); its host
  // listener's port in streams_port_. Started again on the same data after a stop.
  std::filesystem::path streamsHandoff() const { return dir_->path() / "streams-handoff.sock"; }
  void startStreams() {
    const auto log = dir_->path() / "streams.log";
    const size_t before = readFile(log).size();
    auto child = ChildProcess::spawn(
        {.argv = {FLEETLET_STREAMS_PATH, "--data-dir", (dir_->path() / "streams").string(),
                  "--listen", "127.0.0.1:0", "--console-listen", "127.0.0.1:0", "--handoff-socket",
                  streamsHandoff().string()},
         .stdout_path = log,
         .stderr_path = log});
    ASSERT_TRUE(child) << child.error().message();
    streams_ = std::make_unique<ChildProcess>(std::move(*child));
    const std::string marker = "events listening on 127.0.0.1:";
    ASSERT_TRUE(testing::waitFor(
        [&] {
          auto text = readFile(log);
          auto at = text.find(marker, before);
          if (at == std::string::npos) return false;
          at += marker.size();
          streams_port_ = text.substr(at, text.find_first_not_of("0123456789", at) - at);
          const std::string console = "console listening on 127.0.0.1:";
          auto c = text.find(console, before);
          if (c == std::string::npos) return false;
          c += console.size();
          console_port_ = text.substr(c, text.find_first_not_of("0123456789", c) - c);
          return !streams_port_.empty() && !console_port_.empty() &&
                 std::filesystem::exists(streamsHandoff());
        },
        20s))
        << readFile(log);
  }
  // Every event in fleetlet-streams (NDJSON), through its host listener; empty on failure.
  std::string streamsEvents() {
    http::Client host;
    const std::string base = "http://127.0.0.1:" + streams_port_ + "/api/v1/events/";
    auto offsets = host.send({.url = base + "offsets"});
    if (!offsets || offsets->status != 200) return {};
    http::ClientRequest query{.method = "POST", .url = base + "query"};
    query.headers.add("Content-Type", "application/json");
    query.body = R"({"subscriptions":[{}],"order":"lamport","upperBound":)" + offsets->body + "}";
    auto r = host.send(query);
    return r && r->status == 200 ? r->body : std::string();
  }

  // The console service's entries of `app` (GET /api/v1/logs?app=), through its host
  // listener; empty on failure.
  std::vector<Json> consoleLogs(const std::string& app) {
    http::Client host({.total_timeout = std::chrono::seconds(30)});
    auto r = host.send({.url = "http://127.0.0.1:" + console_port_ + "/api/v1/logs?app=" + app});
    std::vector<Json> out;
    if (!r || r->status != 200) return out;
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);) {
      if (auto e = parseJson(line, "log entry")) out.push_back(std::move(*e));
    }
    return out;
  }

  const LocalRegistry* registry_ = nullptr;
  const TestImages* images_ = nullptr;
  std::unique_ptr<PrivateContainerd> containerd_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ChildProcess> agent_;
  std::unique_ptr<ChildProcess> streams_;
  std::string streams_port_;
  std::string console_port_;
  std::string ns_;
  // Declared after dir_: destroyed first (it unmounts a directory inside dir_).
  std::unique_ptr<testing::TestNodeNetwork> net_;
};

}  // namespace fleetlet::fleetletd_testing
