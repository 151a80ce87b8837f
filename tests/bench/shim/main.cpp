// bench_shim: what a running app costs in shim memory, containerd-shim-fleetlet-v1 (container
// mode) against containerd-shim-runc-v2, for N = 1 and 20 apps of the busybox test image (Rss
// and Pss from /proc/<shim>/smaps_rollup, averaged per app; the shim of a native app is shown
// too); and `ctr run -d` latency of a
// native app (/bin/busybox sleep on the host) against the same program as a runc container
// (the busybox image), median of --rounds. Targets in DESIGN.md: Pss ≤ 0.25× the Go shim's,
// native start ≤ 0.5× runc's. Last, apply → running through fleetletd for N = 1 and 20 apps:
// native apps (fleetlet shim) against the same program as containers (runc.v2 shim), and the
// same container apps through fleetletd with runtime.containerShim runc against fleetlet.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "containerd/connection.h"
#include "containerd/tasks.h"
#include "http/client.h"
#include "os/child_process.h"
#include "support/private_containerd.h"
#include "support/temp_dir.h"
#include "support/test_images.h"
#include "support/test_node_network.h"

namespace {

using namespace fleetlet;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr const char* kNs = "shimbench";

// The binaries under test (--fleetletd, --shim-dir: e.g. an older build's, for a before/after)
// and how "running" is seen (--poll).
struct Binaries {
  std::string fleetletd = FLEETLETD_PATH;
  std::string shim_dir = FLEETLET_SHIM_DIR;
};
Binaries binaries;
// grpc: containerd's Tasks.List through fleetlet's client every millisecond (a poll costs well
// under a millisecond); ctr: `ctr tasks ls` every 10 ms as before (each ctr run takes 10-40 ms
// on a loaded machine, which adds that much to every figure).
bool poll_with_ctr = false;

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "bench_shim: {}\n", what);
  std::exit(1);
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

long smapsKiB(pid_t pid, std::string_view field) {
  std::istringstream in(readFile(fmt::format("/proc/{}/smaps_rollup", pid)));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(std::string(field) + ":")) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// The shim serving task `id` of this containerd, found through /proc: the server leads its
// own process group (the transient `start` process, whose command line it may share, does not).
pid_t shimPid(const testing::PrivateContainerd& c, const std::string& binary,
              const std::string& id) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = readFile(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    const pid_t pid = std::stoi(name);
    if (cmdline.find(binary) != std::string::npos &&
        cmdline.find(" -id " + id + " ") != std::string::npos &&
        cmdline.find(c.socket().string()) != std::string::npos && ::getpgid(pid) == pid) {
      return pid;
    }
  }
  return -1;
}

void ctrOk(const testing::PrivateContainerd& c, std::vector<std::string> args) {
  auto out = c.ctrOk(std::move(args), kNs);
  if (!out) die(out.error().message());
}

void removeTask(const testing::PrivateContainerd& c, const std::string& id) {
  (void)c.ctr({"task", "kill", "-s", "SIGKILL", id}, kNs);
  for (int i = 0; i < 100; ++i) {
    auto out = c.ctr({"task", "delete", id}, kNs);
    if (out && out->status.success()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (void)c.ctr({"container", "rm", id}, kNs);
}

struct Memory {
  double rss_kib = 0, pss_kib = 0;
};

Memory measureShims(const testing::PrivateContainerd& c, const std::string& runtime,
                    const std::string& binary, const std::string& image, int n, int round) {
  // image "/" runs the host's sleep as a native app.
  const bool native = image == "/";
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(fmt::format("mem-{}-{}-{}-{}", binary.back() == '1' ? "fl" : "rc",
                              native ? "n" : "c", round, i));
    std::vector<std::string> args = {"run", "-d", "--runtime", runtime};
    if (native) args.emplace_back("--rootfs");
    args.insert(args.end(), {image, ids.back(), "/bin/sleep", "1000"});
    ctrOk(c, args);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let start-up allocations settle
  Memory total;
  for (const auto& id : ids) {
    pid_t pid = shimPid(c, binary, id);
    if (pid < 0) die("no shim process for " + id);
    total.rss_kib += static_cast<double>(smapsKiB(pid, "Rss"));
    total.pss_kib += static_cast<double>(smapsKiB(pid, "Pss"));
  }
  for (const auto& id : ids) removeTask(c, id);
  return {total.rss_kib / n, total.pss_kib / n};
}

double medianMs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double startMs(const testing::PrivateContainerd& c, std::vector<std::string> args,
               const std::string& id) {
  auto t0 = Clock::now();
  ctrOk(c, std::move(args));
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  removeTask(c, id);
  return ms;
}

// Apply → running through fleetletd: one fleetletd (namespace `ns`, its node network its own)
// gets manifests through its local API; each round applies n apps — native (/bin/busybox sleep
// through containerd-shim-fleetlet-v1, sandboxed) or containers of the imported busybox image
// (io.containerd.runc.v2, network mode host like the native apps) — and times the apply until
// containerd lists n running tasks, then removes them all again.
class FleetletdApply {
 public:
  // `container_shim`: fleetletd's --container-shim (runc or fleetlet) for the container apps.
  FleetletdApply(const testing::PrivateContainerd& c, const fs::path& dir, std::string ns,
                 const std::string& image_tar, const std::string& container_shim = "runc")
      : c_(c), dir_(dir), ns_(std::move(ns)) {
    auto connection =
        containerd::Connection::connect(c_.socket().string(), std::chrono::seconds(10));
    if (!connection) die(connection.error().message());
    connection_ = std::move(*connection);
    fs::create_directories(dir_ / "desired");
    auto net = testing::TestNodeNetwork::create(dir_);
    if (!net) die(net.error().message());
    net_.emplace(std::move(*net));
    if (auto r = c_.ctrOk({"images", "import", image_tar}, ns_); !r) die(r.error().message());
    std::vector<std::string> argv = {binaries.fleetletd,
                                     "--containerd",
                                     c_.socket().string(),
                                     "--namespace",
                                     ns_,
                                     "--data-dir",
                                     (dir_ / "data").string(),
                                     "--api-socket",
                                     (dir_ / "api.sock").string(),
                                     "--desired",
                                     (dir_ / "desired").string(),
                                     "--log-level",
                                     "warn",
                                     "--container-shim",
                                     container_shim};
    for (const auto& f : net_->flags()) argv.push_back(f);
    auto agent = ChildProcess::spawn({.argv = argv,
                                      .stdout_path = dir_ / "fleetletd.log",
                                      .stderr_path = dir_ / "fleetletd.log"});
    if (!agent) die(agent.error().message());
    agent_.emplace(std::move(*agent));
    for (int i = 0; i < 200 && !fs::exists(dir_ / "api.sock"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!fs::exists(dir_ / "api.sock"))
      die("fleetletd did not start: " + (dir_ / "fleetletd.log").string());
  }

  // Milliseconds from the apply until n tasks run.
  double applyMs(int n, bool native) {
    auto t0 = Clock::now();
    apply(manifest(n, native));
    while (running() < n) {
      if (Clock::now() - t0 > std::chrono::minutes(5)) die("fleetletd did not converge in 5 min");
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_with_ctr ? 10 : 1));
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    apply(manifest(0, native));
    while (!c_.ctrOk({"containers", "ls", "-q"}, ns_).value_or("x").empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return ms;
  }

 private:
  std::string manifest(int n, bool native) {
    std::string out =
        fmt::format("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\napps:{}\n",
                    ++revision_, n == 0 ? " {}" : "");
    for (int i = 0; i < n; ++i) {
      if (native) {
        out += fmt::format(
            "  app{}:\n    runtime: native\n    exec: {{path: /bin/busybox, args: [sleep, "
            "\"100000\"]}}\n    stopGracePeriod: 1s\n",
            i);
      } else {
        out += fmt::format(
            "  app{}:\n    image: {}\n    args: [/bin/busybox, sleep, \"100000\"]\n"
            "    network: {{mode: host}}\n    stopGracePeriod: 1s\n",
            i, testing::TestImages::kBusyboxTarRef);
      }
    }
    return out;
  }
  void apply(const std::string& text) {
    http::Client api({.unix_socket = (dir_ / "api.sock").string()});
    auto r = api.send({.method = "POST", .url = "http://fleetletd/v1/apply", .body = text});
    if (!r || r->status != 201) die("apply: " + (r ? r->body : r.error().message()));
  }
  int running() {
    if (!poll_with_ctr) {
      auto tasks = containerd::TaskService(connection_, {ns_, {}}).list();
      if (!tasks) return 0;
      return static_cast<int>(std::count_if(tasks->begin(), tasks->end(), [](const auto& t) {
        return t.state == containerd::TaskInfo::State::kRunning;
      }));
    }
    auto out = c_.ctrOk({"tasks", "ls"}, ns_);
    if (!out) return 0;
    int n = 0;
    for (std::size_t at = out->find("RUNNING"); at != std::string::npos;
         at = out->find("RUNNING", at + 1)) {
      ++n;
    }
    return n;
  }

  const testing::PrivateContainerd& c_;
  std::shared_ptr<containerd::Connection> connection_;
  fs::path dir_;
  std::string ns_;
  std::optional<testing::TestNodeNetwork> net_;
  std::optional<ChildProcess> agent_;
  int revision_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("containerd-shim-fleetlet-v1 memory and start latency");
  int rounds = 7;
  bool apply_only = false;
  std::string poll = "grpc";
  app.add_option("--rounds", rounds, "start-latency samples per runtime");
  app.add_option("--fleetletd", binaries.fleetletd, "the fleetletd to run [this build's]");
  app.add_option("--shim-dir", binaries.shim_dir,
                 "directory of the containerd-shim-fleetlet-v1 to run [this build's]");
  app.add_option("--poll", poll,
                 "how apply -> running sees the tasks run: grpc (Tasks.List every 1 ms) or ctr "
                 "(`ctr tasks ls` every 10 ms, the measurement before grpc)")
      ->check(CLI::IsMember({"grpc", "ctr"}));
  app.add_flag("--apply-only", apply_only, "only the apply -> running figures");
  CLI11_PARSE(app, argc, argv);
  poll_with_ctr = poll == "ctr";
  if (::geteuid() != 0) die("run as root (starts a private containerd)");

  fmt::print("fleetletd {}\nshim {}/containerd-shim-fleetlet-v1\napply -> running seen by {}\n\n",
             binaries.fleetletd, binaries.shim_dir, poll);
  std::string path = binaries.shim_dir + ":" + std::getenv("PATH");
  ::setenv("PATH", path.c_str(), 1);
  auto containerd = testing::PrivateContainerd::startWithShimsFrom(binaries.shim_dir);
  if (!containerd) die(containerd.error().message());
  auto images = testing::TestImages::build();
  if (!images) die(images.error().message());
  ctrOk(*containerd, {"images", "import", images->busyboxOciTar().string()});
  const std::string image(testing::TestImages::kBusyboxTarRef);

  if (!apply_only) {
    fmt::print("shim memory per running app (busybox sleep), averaged over the shims:\n");
    fmt::print("{:>4}  {:>26}  {:>10}  {:>10}\n", "N", "shim", "Rss KiB", "Pss KiB");
    for (int n : {1, 20}) {
      Memory go = measureShims(*containerd, "io.containerd.runc.v2", "containerd-shim-runc-v2",
                               image, n, n);
      Memory ours = measureShims(*containerd, "io.containerd.fleetlet.v1",
                                 "containerd-shim-fleetlet-v1", image, n, n);
      fmt::print("{:>4}  {:>26}  {:>10.0f}  {:>10.0f}\n", n, "containerd-shim-runc-v2", go.rss_kib,
                 go.pss_kib);
      fmt::print("{:>4}  {:>26}  {:>10.0f}  {:>10.0f}   Pss ratio {:.2f}x (target <= 0.25x)\n", n,
                 "containerd-shim-fleetlet-v1", ours.rss_kib, ours.pss_kib,
                 ours.pss_kib / go.pss_kib);
      Memory native = measureShims(*containerd, "io.containerd.fleetlet.v1",
                                   "containerd-shim-fleetlet-v1", "/", n, n);
      fmt::print("{:>4}  {:>26}  {:>10.0f}  {:>10.0f}   (native app, for reference)\n", n,
                 "containerd-shim-fleetlet-v1", native.rss_kib, native.pss_kib);
    }

    std::vector<double> native, container;
    for (int i = 0; i < rounds; ++i) {
      std::string nid = fmt::format("start-native-{}", i), cid = fmt::format("start-runc-{}", i);
      native.push_back(startMs(*containerd,
                               {"run", "-d", "--runtime", "io.containerd.fleetlet.v1", "--rootfs",
                                "/", nid, "/bin/busybox", "sleep", "1000"},
                               nid));
      container.push_back(
          startMs(*containerd, {"run", "-d", image, cid, "/bin/busybox", "sleep", "1000"}, cid));
    }
    double n_ms = medianMs(native), c_ms = medianMs(container);
    fmt::print("\nstart (ctr run -d until running), median of {}:\n", rounds);
    fmt::print("  native (fleetlet shim, sandboxed)  {:7.1f} ms\n", n_ms);
    fmt::print("  runc container (runc.v2 shim)      {:7.1f} ms\n", c_ms);
    fmt::print("  ratio {:.2f}x (target <= 0.5x)\n", n_ms / c_ms);
  }
  // Apply -> running for N = 1 and 20: `ours(n)` and `theirs(n)` time one apply each, rounds
  // interleaved (fewer at N = 20); prints the medians and their ratio.
  auto compareApply = [&](const std::string& title, const std::string& ours_label,
                          const std::string& theirs_label, const std::function<double(int)>& ours,
                          const std::function<double(int)>& theirs) {
    fmt::print("\n{}, median of {}:\n", title, rounds);
    fmt::print("{:>4}  {:>30}  {:>30}  {:>6}\n", "N", ours_label, theirs_label, "ratio");
    for (int n : {1, 20}) {
      std::vector<double> a, b;
      const int samples = n == 1 ? rounds : std::max(1, rounds / 2);
      for (int i = 0; i < samples; ++i) {
        a.push_back(ours(n));
        b.push_back(theirs(n));
      }
      fmt::print("{:>4}  {:>30.1f}  {:>30.1f}  {:>5.2f}x\n", n, medianMs(a), medianMs(b),
                 medianMs(a) / medianMs(b));
    }
  };
  {
    auto dir = testing::TempDir::create("bench-shim-apply");
    if (!dir) die(dir.error().message());
    FleetletdApply fleetletd(*containerd, dir->path(), "shimbench-apply",
                             images->busyboxOciTar().string());
    compareApply(
        "apply -> running through fleetletd (local API apply until containerd lists N running "
        "tasks)",
        "native (fleetlet shim) ms", "container (runc.v2 shim) ms",
        [&](int n) { return fleetletd.applyMs(n, true); },
        [&](int n) { return fleetletd.applyMs(n, false); });
  }
  {
    // The same container apps through two fleetletds: --container-shim fleetlet (our shim in
    // container mode) and --container-shim runc (runc.v2).
    auto dir_runc = testing::TempDir::create("bench-shim-apply-runc");
    auto dir_ours = testing::TempDir::create("bench-shim-apply-fleetlet");
    if (!dir_runc || !dir_ours) die("temp dir");
    FleetletdApply with_runc(*containerd, dir_runc->path(), "shimbench-runc",
                             images->busyboxOciTar().string(), "runc");
    FleetletdApply with_ours(*containerd, dir_ours->path(), "shimbench-fleetlet",
                             images->busyboxOciTar().string(), "fleetlet");
    compareApply(
        "apply -> running of container apps through fleetletd, containerShim fleetlet "
        "vs runc",
        "containerShim fleetlet ms", "containerShim runc ms",
        [&](int n) { return with_ours.applyMs(n, false); },
        [&](int n) { return with_runc.applyMs(n, false); });
  }
  // The tasks' cgroups went with them; their namespace's parents stay (as runc's do).
  std::error_code ec;
  for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    ::rmdir((hierarchy.path() / kNs).c_str());
  }
  return 0;
}
