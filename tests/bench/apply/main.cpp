// bench_apply: time from applying a manifest of N apps (pre-pulled image) until every task
// runs, fleetletd against a shell loop of `ctr run -d` in the same run, for N = 1, 10, 50, 500
// (apps in `network: {mode: host}` against `ctr run -d --net-host`: no network set up on
// either side); plus fleetletd's resident memory idle and at its peak (targets in DESIGN.md);
// then
// - 50 networked apps (each its own namespace on the bridge, through the CNI plugins and
//   fleetlet-firewall) against a shell loop doing the same by hand: `ip netns add`, the same
//   conflist's plugins run with the spec's environment and stdin (prevResult chained with jq),
//   `ctr run -d --with-ns network:<netns>`;
// - 50 apps of which one has its image on a registry that never answers: the time until the
//   other 49 run, against the same 50 without it;
// - the metrics sampler's CPU per scrape and RSS growth with 50 apps running;
// - fleetletd's thread count and CPU seconds while it applies 1,000 apps.
#include <arpa/inet.h>
#include <dirent.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "containerd/containers.h"
#include "containerd/tasks.h"
#include "executor/network_config.h"
#include "http/client.h"
#include "os/child_process.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/temp_dir.h"
#include "support/test_images.h"
#include "support/test_node_network.h"

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

// N apps of `image`; with `stuck_image`, app0 uses that one instead. `networked`: each in its
// own network namespace (the default); else `mode: host`.
std::string manifest(int revision, int n, const std::string& image,
                     const std::string& stuck_image = "", bool networked = false) {
  std::string out =
      fmt::format("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\napps:{}\n", revision,
                  n == 0 ? " {}" : "");
  for (int i = 0; i < n; ++i) {
    out += fmt::format(
        "  app{}:\n    image: {}\n    args: [sleep, \"100000\"]\n    stopGracePeriod: 1s\n{}", i,
        i == 0 && !stuck_image.empty() ? stuck_image : image,
        networked ? "" : "    network: {mode: host}\n");
  }
  return out;
}

// The by-hand peer of fleetletd's networked apply: for each of N apps a pinned namespace with
// lo up, the conflist's plugins' ADD in order (the spec's environment, the plugin's config with
// name, cniVersion and prevResult on stdin), then `ctr run -d` in that namespace. Run inside the
// peer's node namespace (nsenter), so its bridge and rules are its own.
constexpr const char* kPeerScript = R"(#!/bin/bash
set -euo pipefail
n=$1 prefix=$2
name=$(jq -r .name "$CONFLIST")
version=$(jq -r .cniVersion "$CONFLIST")
mapfile -t plugins < <(jq -c '.plugins[]' "$CONFLIST")
for ((i = 0; i < n; i++)); do
  id=$prefix-$i
  ip netns add "$id"
  ip -n "$id" link set lo up
  prev=null
  for plugin in "${plugins[@]}"; do
    type=$(jq -r .type <<<"$plugin")
    for dir in ${CNI_PATH//:/ }; do [[ -x $dir/$type ]] && binary=$dir/$type && break; done
    config=$(jq -c --arg name "$name" --arg version "$version" --argjson prev "$prev"       '. + {name: $name, cniVersion: $version} + (if $prev == null then {} else {prevResult: $prev} end)'       <<<"$plugin")
    prev=$(CNI_COMMAND=ADD CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$id CNI_IFNAME=eth0       "$binary" <<<"$config")
  done
  ctr --address "$CONTAINERD" -n "$NAMESPACE" run -d --with-ns "network:/run/netns/$id"     "$IMAGE" "$id" sleep 100000 >/dev/null
done
)";

int threadCount(pid_t pid) {
  int n = 0;
  if (DIR* d = opendir(fmt::format("/proc/{}/task", pid).c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// utime + stime of a process, in seconds.
double cpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  long utime = 0;
  long stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A TCP listener that accepts connections and never answers: an unreachable registry that
// does not even refuse.
class SilentRegistry {
 public:
  SilentRegistry() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 64) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      die("silent registry: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentRegistry() { close(fd_); }
  std::string address() const { return fmt::format("127.0.0.1:{}", port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Where an idle fleetletd's resident memory goes: smaps_rollup, then the mappings by Rss
// (anonymous ones summed as "[anon]": thread stacks and malloc arenas), and its threads.
void printIdleMemory(pid_t pid) {
  const auto proc = std::filesystem::path("/proc") / std::to_string(pid);
  std::ifstream rollup(proc / "smaps_rollup");
  fmt::print("fleetletd idle, no apps: /proc/{}/smaps_rollup\n", pid);
  for (std::string line; std::getline(rollup, line);) {
    if (line.starts_with("Rss") || line.starts_with("Pss") || line.starts_with("Private") ||
        line.starts_with("Anonymous")) {
      fmt::print("  {}\n", line);
    }
  }
  std::map<std::string, long> by_name;
  std::ifstream smaps(proc / "smaps");
  std::string name;
  int anon_maps = 0;
  for (std::string line; std::getline(smaps, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) != 0 &&
        line.find('-') < line.find(' ')) {
      std::istringstream fields(line);
      std::string range, perms, offset, dev, inode;
      fields >> range >> perms >> offset >> dev >> inode;
      std::getline(fields, name);
      name.erase(0, name.find_first_not_of(' '));
      if (name.empty()) {
        name = "[anon]";
        ++anon_maps;
      }
    } else if (line.starts_with("Rss:")) {
      by_name[name] += std::stol(line.substr(4));
    }
  }
  std::vector<std::pair<long, std::string>> sorted;
  for (const auto& [n, kib] : by_name) sorted.emplace_back(kib, n);
  std::sort(sorted.rbegin(), sorted.rend());
  fmt::print("  Rss by mapping (KiB; {} anonymous mappings):\n", anon_maps);
  for (size_t i = 0; i < std::min<size_t>(12, sorted.size()); ++i) {
    fmt::print("  {:>7}  {}\n", sorted[i].first, sorted[i].second);
  }
  int threads = 0;
  for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator(proc / "task")) {
    ++threads;
  }
  fmt::print("  threads: {}\n", threads);
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
  std::vector<int> sizes = {1, 10, 50, 500};
  int big = 1000;
  app.add_option("-n,--apps", sizes, "App counts")->capture_default_str();
  app.add_option("--big", big, "apps in the thread/CPU run (0: skip)")->capture_default_str();
  bool idle_only = false;
  app.add_flag("--idle-only", idle_only,
               "only measure idle fleetletd (no apps) and print where its memory goes");
  CLI11_PARSE(app, argc, argv);

  auto registry = testing::LocalRegistry::start();
  if (!registry) die(registry.error().message());
  auto images = testing::TestImages::push(*registry, {.include_big = false});
  if (!images) die(images.error().message());
  auto ctrd = testing::PrivateContainerd::start();
  if (!ctrd) die(ctrd.error().message());
  auto dir = testing::TempDir::create("bench-apply");
  if (!dir) die(dir.error().message());
  // fleetletd's apps' networks and the by-hand peer's each live in a node namespace of their
  // own: the benchmark leaves the machine's network alone.
  std::filesystem::create_directories(dir->path() / "ours");
  std::filesystem::create_directories(dir->path() / "peer");
  auto our_net = testing::TestNodeNetwork::create(dir->path() / "ours");
  if (!our_net) die(our_net.error().message());
  auto peer_net = testing::TestNodeNetwork::create(dir->path() / "peer");
  if (!peer_net) die(peer_net.error().message());
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
  SilentRegistry silent;
  const std::string stuck_image = silent.address() + "/acme/stuck:1";
  std::vector<std::string> agent_argv = {FLEETLETD_PATH,
                                         "--containerd",
                                         ctrd->socket().string(),
                                         "--namespace",
                                         ours_ns,
                                         "--data-dir",
                                         (dir->path() / "data").string(),
                                         "--api-socket",
                                         (dir->path() / "api.sock").string(),
                                         "--desired",
                                         desired.string(),
                                         "--log-level",
                                         "warn",
                                         "--plain-http-registry",
                                         silent.address()};
  for (const auto& f : our_net->flags()) agent_argv.push_back(f);
  auto agent = ChildProcess::spawn({.argv = agent_argv,
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
  if (idle_only) {
    std::this_thread::sleep_for(std::chrono::seconds(5));  // past start-up work
    printIdleMemory(agent->pid());
    agent->stop(SIGTERM, std::chrono::seconds(10));
    return 0;
  }

  fmt::print("apply benchmark: {} apps of {} (pre-pulled), until every task runs\n",
             fmt::join(sizes, "/"), image);
  fmt::print("{:>4}  {:>12}  {:>12}  {:>6}  {:>16}  {:>14}\n", "N", "fleetletd s", "ctr loop s",
             "ratio", "p99 per app s", "fleetletd RSS");
  int revision = 0;
  // Applies n apps (app0 stuck when asked) and waits until `expect` of them run; returns the
  // time each came up, in seconds since the apply.
  auto applyAndWait = [&](int n, int expect, const std::string& stuck, bool networked = false) {
    auto start = Clock::now();
    write(manifest(++revision, n, image, stuck, networked));
    std::map<std::string, double> up;
    while (static_cast<int>(up.size()) < expect) {
      auto list = our_tasks.list();
      if (!list) die(list.error().message());
      double t = std::chrono::duration<double>(Clock::now() - start).count();
      for (const auto& task : *list) {
        if (task.state == containerd::TaskInfo::State::kRunning) up.emplace(task.id, t);
      }
      if (t > 600) die("fleetletd did not converge within 600 s; see its log");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::vector<double> times;
    for (const auto& [id, t] : up) times.push_back(t);
    std::sort(times.begin(), times.end());
    return times;
  };
  auto removeAll = [&] {
    write(manifest(++revision, 0, image));
    while (runningTasks(our_tasks) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    containerd::ContainerService containers(*conn, {ours_ns, {}});
    for (;;) {
      auto left = containers.list({});
      if (left && left->empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  // Kills and removes the peer's containers `<prefix>-0` .. `<prefix>-<n-1>`.
  auto ctrClean = [&](int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      (void)ctrd->ctr({"tasks", "kill", "-s", "SIGKILL", fmt::format("{}-{}", prefix, i)}, ctr_ns);
    }
    for (int i = 0; i < n; ++i) {
      std::string id = fmt::format("{}-{}", prefix, i);
      for (int k = 0; k < 100; ++k) {
        auto r = ctrd->ctr({"tasks", "rm", id}, ctr_ns);
        if (r && r->status.success()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      (void)ctrd->ctr({"containers", "rm", id}, ctr_ns);
    }
  };
  long peak = 0;     // VmHWM after each size, as printed
  long peak_50 = 0;  // VmHWM once the sizes up to 50 are applied (the target's measure)
  for (int n : sizes) {
    auto times = applyAndWait(n, n, "");
    double ours = times.back();
    peak = memoryKiB(agent->pid(), "VmHWM");
    if (n <= 50) peak_50 = peak;
    // Per app: from the previous app coming up (or the apply) to this one, i.e. the time the
    // agent spent on each app.
    std::vector<double> per_app;
    double prev = 0;
    for (double t : times) {
      per_app.push_back(t - prev);
      prev = t;
    }

    // ctr: the loop a user would write.
    auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto r = ctrd->ctr(
          {"run", "-d", "--net-host", image, fmt::format("r{}-{}", revision, i), "sleep", "100000"},
          ctr_ns);
      if (!r || !r->status.success()) die("ctr run failed: " + (r ? r->err : r.error().message()));
    }
    while (runningTasks(ctr_tasks) < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double theirs = std::chrono::duration<double>(Clock::now() - start).count();

    fmt::print("{:>4}  {:>12.3f}  {:>12.3f}  {:>6.2f}  {:>16.3f}  {:>11} KiB\n", n, ours, theirs,
               ours / theirs, percentile(per_app, 0.99), peak);

    // Clean both sides before the next size.
    removeAll();
    ctrClean(n, fmt::format("r{}", revision - 1));
  }

  // One app of 50 whose registry never answers: the other 49 do not wait for it.
  {
    auto without = applyAndWait(50, 50, "");
    removeAll();
    auto with = applyAndWait(50, 49, stuck_image);
    fmt::print(
        "50 apps, one image on a registry that never answers: the other 49 run after {:.3f} s; "
        "without it, 49 of 50 after {:.3f} s (ratio {:.2f})\n",
        with.back(), without[48], with.back() / without[48]);
    removeAll();
  }

  // The metrics sampler (docs/observability.md) with 50 running apps: fleetletd's CPU per
  // scrape of GET /metrics, less what it spends idle over the same time, and its RSS growth.
  // Nothing is sampled between scrapes, so its cost is this per scrape (or alert evaluation).
  {
    applyAndWait(50, 50, "");
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the last steps settle
    auto scrape = [&] {
      auto r = api.send({.url = "http://fleetletd/metrics"});
      if (!r || r->status != 200) die("GET /metrics: " + (r ? r->body : r.error().message()));
      if (r->body.find("fleetlet_app_memory_bytes{app=\"app49\"}") == std::string::npos) {
        die("GET /metrics misses app49's usage");
      }
      return r->body.size();
    };
    scrape();  // the first one's allocations are not the steady cost
    constexpr int kScrapes = 200;
    const long rss_before = memoryKiB(agent->pid(), "VmRSS");
    const long anon_before = memoryKiB(agent->pid(), "RssAnon");
    const double cpu_start = cpuSeconds(agent->pid());
    const auto wall_start = Clock::now();
    size_t bytes = 0;
    for (int i = 0; i < kScrapes; ++i) bytes = scrape();
    const double wall = std::chrono::duration<double>(Clock::now() - wall_start).count();
    const double cpu_scraping = cpuSeconds(agent->pid()) - cpu_start;
    const long rss_after = memoryKiB(agent->pid(), "VmRSS");
    const long anon_after = memoryKiB(agent->pid(), "RssAnon");
    const double idle_start = cpuSeconds(agent->pid());
    std::this_thread::sleep_for(std::chrono::duration<double>(wall));
    const double cpu_idle = cpuSeconds(agent->pid()) - idle_start;
    const double per_scrape = std::max(0.0, cpu_scraping - cpu_idle) / kScrapes;
    fmt::print(
        "metrics sampler, 50 apps running: {:.2f} ms of fleetletd CPU per scrape ({} bytes, "
        "{:.2f} ms wall; {} scrapes, idle CPU over the same {:.2f} s subtracted); at one scrape "
        "per 15 s: {:.4f}% of one core, per 1 s: {:.3f}% (target < 1%); RSS after the scrapes "
        "{:+} KiB, anonymous {:+} KiB (target < 1 MiB)\n",
        per_scrape * 1000, bytes, wall * 1000 / kScrapes, kScrapes, wall, per_scrape / 15 * 100,
        per_scrape * 100, rss_after - rss_before, anon_after - anon_before);
    removeAll();
  }

  // 50 networked apps: fleetletd against the by-hand loop.
  {
    auto times = applyAndWait(50, 50, "", /*networked=*/true);
    double ours = times.back();
    std::vector<double> per_app;
    double prev = 0;
    for (double t : times) {
      per_app.push_back(t - prev);
      prev = t;
    }
    removeAll();

    // The peer uses the same network as fleetletd: the built-in conflist, written out.
    const auto conflist = dir->path() / "peer" / "fleetlet.conflist";
    auto network = cni::defaultNetwork({.ipam_data_dir = dir->path() / "peer" / "ipam"});
    if (!network) die(network.error().message());
    std::ofstream(conflist) << network->raw.dump();
    const auto script = dir->path() / "peer" / "apply.sh";
    std::ofstream(script) << kPeerScript;
    const std::string prefix = testing::PrivateContainerd::uniqueId("flb");
    auto start = Clock::now();
    auto r = runCommand({.argv = {"nsenter", "--net=" + peer_net->node().string(), "bash",
                                  script.string(), "50", prefix},
                         .env = {{"CONFLIST", conflist.string()},
                                 {"CNI_PATH", std::string("/usr/lib/cni:") + FLEETLET_FIREWALL_DIR},
                                 {"CONTAINERD", ctrd->socket().string()},
                                 {"NAMESPACE", ctr_ns},
                                 {"IMAGE", image}}});
    if (!r || !r->status.success())
      die("the by-hand loop failed: " + (r ? r->err : r.error().message()));
    while (runningTasks(ctr_tasks) < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double theirs = std::chrono::duration<double>(Clock::now() - start).count();
    fmt::print(
        "50 networked apps (own netns, bridge, host-local, portmap, fleetlet-firewall): fleetletd "
        "{:.3f} s, by-hand loop (ip netns + plugins from shell + ctr run -d) {:.3f} s, ratio "
        "{:.2f}; p99 per app {:.3f} s\n",
        ours, theirs, ours / theirs, percentile(per_app, 0.99));
    ctrClean(50, prefix);
    for (int i = 0; i < 50; ++i)
      (void)runCommand({"ip", "netns", "del", fmt::format("{}-{}", prefix, i)});
  }

  if (big > 0) {
    int threads_idle = threadCount(agent->pid());
    double cpu_before = cpuSeconds(agent->pid());
    int most = threads_idle;
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
      while (sampling) {
        most = std::max(most, threadCount(agent->pid()));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    auto times = applyAndWait(big, big, "");
    sampling = false;
    sampler.join();
    double cpu = cpuSeconds(agent->pid()) - cpu_before;
    fmt::print(
        "{} apps: all running after {:.3f} s; fleetletd threads {} idle, {} at most (parallelism "
        "4, pull threads 2); CPU {:.2f} s ({:.2f} ms per app); RSS peak {} KiB\n",
        big, times.back(), threads_idle, most, cpu, cpu * 1000 / big,
        memoryKiB(agent->pid(), "VmHWM"));
    removeAll();
  }
  fmt::print(
      "fleetletd RSS idle: {} KiB, of which anonymous {} KiB (target < 15 MiB); peak: {} KiB "
      "(target < 40 MiB) up to {} apps; now, all removed: {} KiB, of which anonymous {} KiB\n",
      idle_rss, idle_anon, peak_50, 50, memoryKiB(agent->pid(), "VmRSS"),
      memoryKiB(agent->pid(), "RssAnon"));
  agent->stop(SIGTERM, std::chrono::seconds(30));
  return 0;
}
