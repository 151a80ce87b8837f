// bench_apply: time from applying a manifest of N apps (pre-pulled image) until every task
// runs, fleetletd against a shell loop of `ctr run -d` in the same run, for N = 1, 10, 50;
// plus fleetletd's resident memory idle and at its peak (targets in DESIGN.md).
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "containerd/containers.h"
#include "containerd/tasks.h"
#include "http/client.h"
#include "os/child_process.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/temp_dir.h"
#include "support/test_images.h"

namespace {

using namespace fleetlet;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "bench_apply: {}\n", what);
  std::exit(1);
}

// VmRSS or VmHWM of a process, in KiB.
long memoryKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field + ":")) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

int runningTasks(const containerd::TaskService& tasks) {
  auto list = tasks.list();
  if (!list) return -1;
  return static_cast<int>(std::count_if(list->begin(), list->end(), [](const auto& t) {
    return t.state == containerd::TaskInfo::State::kRunning;
  }));
}

std::string manifest(int revision, int n, const std::string& image) {
  std::string out =
      fmt::format("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\napps:{}\n", revision,
                  n == 0 ? " {}" : "");
  for (int i = 0; i < n; ++i) {
    out += fmt::format(
        "  app{}:\n    image: {}\n    args: [sleep, \"100000\"]\n    stopGracePeriod: 1s\n", i,
        image);
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx =
      std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[idx];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Apply benchmark: fleetletd vs a `ctr run -d` loop (pre-pulled image)"};
  std::vector<int> sizes = {1, 10, 50};
  app.add_option("-n,--apps", sizes, "App counts")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto registry = testing::LocalRegistry::start();
  if (!registry) die(registry.error().message());
  auto images = testing::TestImages::push(*registry, {.include_big = false});
  if (!images) die(images.error().message());
  auto ctrd = testing::PrivateContainerd::start();
  if (!ctrd) die(ctrd.error().message());
  auto dir = testing::TempDir::create("bench-apply");
  if (!dir) die(dir.error().message());
  auto conn = containerd::Connection::connect(ctrd->socket().string(), std::chrono::seconds(10));
  if (!conn) die(conn.error().message());
  const std::string image = images->busybox();
  const std::string ours_ns = testing::PrivateContainerd::uniqueId("bench-fl");
  const std::string ctr_ns = testing::PrivateContainerd::uniqueId("bench-ctr");
  for (const auto& ns : {ours_ns, ctr_ns}) {
    if (auto r = ctrd->ctrOk({"images", "pull", "--plain-http", image}, ns); !r) {
      die(r.error().message());
    }
  }
  containerd::TaskService our_tasks(*conn, {ours_ns, {}});
  containerd::TaskService ctr_tasks(*conn, {ctr_ns, {}});

  // fleetletd, fed through its --desired directory.
  auto desired = dir->path() / "desired";
  std::filesystem::create_directories(desired);
  // Manifests go through the local API, as `fleetletctl apply` sends them.
  http::Client api({.unix_socket = (dir->path() / "api.sock").string()});
  auto write = [&](const std::string& text) {
    auto r = api.send({.method = "POST", .url = "http://fleetletd/v1/apply", .body = text});
    if (!r || r->status != 201) die("apply: " + (r ? r->body : r.error().message()));
  };
  auto agent = ChildProcess::spawn(
      {.argv = {FLEETLETD_PATH, "--containerd", ctrd->socket().string(), "--namespace", ours_ns,
                "--data-dir", (dir->path() / "data").string(), "--api-socket",
                (dir->path() / "api.sock").string(), "--desired", desired.string(), "--log-level",
                "warn"},
       .stdout_path = dir->path() / "fleetletd.log",
       .stderr_path = dir->path() / "fleetletd.log"});
  if (!agent) die(agent.error().message());
  for (int i = 0; i < 100 && !std::filesystem::exists(dir->path() / "api.sock"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  long idle_rss = memoryKiB(agent->pid(), "VmRSS");
  // RSS counts the shared libraries' mapped pages too; RssAnon is the agent's own memory.
  long idle_anon = memoryKiB(agent->pid(), "RssAnon");

  fmt::print("apply benchmark: {} apps of {} (pre-pulled), until every task runs\n",
             fmt::join(sizes, "/"), image);
  fmt::print("{:>4}  {:>12}  {:>12}  {:>6}  {:>16}  {:>14}\n", "N", "fleetletd s", "ctr loop s",
             "ratio", "p99 per app s", "fleetletd RSS");
  int revision = 0;
  for (int n : sizes) {
    // fleetletd: apply, then poll containerd until all N run; note when each app came up.
    auto start = Clock::now();
    write(manifest(++revision, n, image));
    std::map<std::string, double> up;
    while (static_cast<int>(up.size()) < n) {
      auto list = our_tasks.list();
      if (!list) die(list.error().message());
      double t = std::chrono::duration<double>(Clock::now() - start).count();
      for (const auto& task : *list) {
        if (task.state == containerd::TaskInfo::State::kRunning) up.emplace(task.id, t);
      }
      if (t > 300) die("fleetletd did not converge within 300 s; see its log");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    double ours = std::chrono::duration<double>(Clock::now() - start).count();
    long peak = memoryKiB(agent->pid(), "VmHWM");
    // Per app: from the previous app coming up (or the apply) to this one, i.e. the time the
    // agent spent on each app.
    std::vector<double> times;
    for (const auto& [id, t] : up) times.push_back(t);
    std::sort(times.begin(), times.end());
    std::vector<double> per_app;
    double prev = 0;
    for (double t : times) {
      per_app.push_back(t - prev);
      prev = t;
    }

    // ctr: the loop a user would write.
    start = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto r = ctrd->ctr(
          {"run", "-d", image, fmt::format("r{}-{}", revision, i), "sleep", "100000"}, ctr_ns);
      if (!r || !r->status.success()) die("ctr run failed: " + (r ? r->err : r.error().message()));
    }
    while (runningTasks(ctr_tasks) < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double theirs = std::chrono::duration<double>(Clock::now() - start).count();

    fmt::print("{:>4}  {:>12.3f}  {:>12.3f}  {:>6.2f}  {:>16.3f}  {:>11} KiB\n", n, ours, theirs,
               ours / theirs, percentile(per_app, 0.99), peak);

    if (n == sizes.back()) break;
    // Clean both sides before the next size.
    write(manifest(++revision, 0, image));
    while (runningTasks(our_tasks) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (int i = 0; i < n; ++i) {
      std::string id = fmt::format("r{}-{}", revision - 1, i);
      (void)ctrd->ctr({"tasks", "kill", "-s", "SIGKILL", id}, ctr_ns);
    }
    for (int i = 0; i < n; ++i) {
      std::string id = fmt::format("r{}-{}", revision - 1, i);
      for (int k = 0; k < 100; ++k) {
        auto r = ctrd->ctr({"tasks", "rm", id}, ctr_ns);
        if (r && r->status.success()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      (void)ctrd->ctr({"containers", "rm", id}, ctr_ns);
    }
  }
  fmt::print(
      "fleetletd RSS idle: {} KiB, of which anonymous {} KiB (target < 15 MiB); peak: {} KiB "
      "(target < 40 MiB); now, {} apps running: {} KiB, of which anonymous {} KiB\n",
      idle_rss, idle_anon, memoryKiB(agent->pid(), "VmHWM"), sizes.back(),
      memoryKiB(agent->pid(), "VmRSS"), memoryKiB(agent->pid(), "RssAnon"));
  agent->stop(SIGTERM, std::chrono::seconds(30));
  return 0;
}
