// Kiosk benchmark: fleetlet-webview (WebKitGTK, under a private Xvfb) against Debian's Cog
// (WPE) on the same bundle in the same run. Cog has no X11 platform: it runs on its Wayland
// platform in weston, which itself runs as an X client in the same Xvfb (weston's x11
// backend, pixman renderer), and, for reference, on its headless platform.
// Per round and peer: first paint after start (the page's second animation frame calls a
// loopback beacon), recovery after SIGKILL of the web process serving the page (the
// reloaded page's beacon), and the RSS of the peer's whole process tree 2 s after the paint
// (fleetlet-webview's spare web process included; weston not counted). Then, as
// root with containerd installed, fleetletd's apply -> SPA visible: `fleetletctl apply` of a
// webview app until its page's beacon, for a new app and for a new bundle of a shown one.
// Prints medians, ratios and the engines' versions; exits 1 when a peer gave no figure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/bundle/archive_builder.h"
#include "crypto/sha256.h"
#include "kiosk_fixture.h"
#include "os/child_process.h"
#include "os/unique_fd.h"
#include "support/private_containerd.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using fleetlet::ChildProcess;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
namespace wt = fleetlet::webview::testing;

// Counts GET requests on 127.0.0.1:<port> and notes when each came.
class Beacon {
 public:
  Beacon() {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), len);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listener_.get(), 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~Beacon() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  size_t count() {
    std::lock_guard lock(mu_);
    return times_.size();
  }
  // Waits until more than `n` beacons came; returns the time of beacon n+1.
  std::optional<Clock::time_point> waitBeyond(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return times_.size() > n; })) return std::nullopt;
    return times_[n];
  }
  // Waits for a beacon GET of `path`; returns when it came.
  std::optional<Clock::time_point> waitForPath(const std::string& path,
                                               std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return paths_.contains(path); })) return std::nullopt;
    return paths_[path];
  }

 private:
  void serve() {
    for (;;) {
      fleetlet::UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      const auto at = Clock::now();
      char buf[4096];
      const ssize_t got = ::recv(conn.get(), buf, sizeof(buf), 0);
      // "GET /path HTTP/1.1"
      std::string line(buf, static_cast<size_t>(std::max<ssize_t>(got, 0)));
      line = line.substr(0, line.find('\r'));
      const auto first = line.find(' ');
      const std::string path = first == std::string::npos
                                   ? ""
                                   : line.substr(first + 1, line.find(' ', first + 1) - first - 1);
      static constexpr std::string_view kAnswer =
          "HTTP/1.0 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\n\r\n";
      (void)::send(conn.get(), kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL);
      std::lock_guard lock(mu_);
      times_.push_back(at);
      paths_.emplace(path, at);
      cv_.notify_all();
    }
  }
  fleetlet::UniqueFd listener_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Clock::time_point> times_;            // guarded by mu_
  std::map<std::string, Clock::time_point> paths_;  // first beacon per path, guarded by mu_
  std::thread thread_;
};

uint64_t rssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return 0;
}

uint64_t treeRssKiB(pid_t root) {
  uint64_t total = rssKiB(root);
  for (pid_t pid : wt::processesBelow(root, "")) total += rssKiB(pid);
  return total;
}

// CPU time (user + system) a process used so far, in ms; 0 when it is gone.
double cpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double treeCpuMs(pid_t root) {
  double total = cpuMs(root);
  for (pid_t pid : wt::processesBelow(root, "")) total += cpuMs(pid);
  return total;
}

struct Sample {
  double first_paint_ms = -1;
  double recovery_ms = -1;
  double rss_mib = -1;
  double cpu_ms = -1;  // CPU of the process tree at first paint (less load-sensitive)
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

Sample runOnce(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               Beacon& beacon, const fs::path& log) {
  Sample sample;
  const size_t before = beacon.count();
  const auto start = Clock::now();
  auto child =
      ChildProcess::spawn({.argv = argv, .env = env, .stdout_path = log, .stderr_path = log});
  if (!child) {
    std::fprintf(stderr, "start %s: %s\n", argv[0].c_str(), child.error().message().c_str());
    return sample;
  }
  auto painted = beacon.waitBeyond(before, 30s);
  if (!painted) {
    std::fprintf(stderr, "%s: no first paint within 30 s (see %s)\n", argv[0].c_str(), log.c_str());
    child->stop(SIGTERM, 3s);
    return sample;
  }
  sample.first_paint_ms = ms(*painted - start);
  sample.cpu_ms = treeCpuMs(child->pid());
  // fleetlet-webview starts its spare web process 1 s after the load: 2 s lets it settle.
  std::this_thread::sleep_for(2s);
  sample.rss_mib = static_cast<double>(treeRssKiB(child->pid())) / 1024.0;
  auto web = wt::webProcessesBelow(child->pid());  // WebKitGTK's
  for (pid_t pid : wt::processesBelow(child->pid(), "WPEWebProcess")) web.push_back(pid);  // WPE's
  // The crash: the web process that serves the page, the oldest (fleetlet-webview's spare
  // is younger; Cog has one).
  auto serving = wt::oldestProcess(web);
  const auto killed = Clock::now();
  if (serving) ::kill(*serving, SIGKILL);
  if (auto again = beacon.waitBeyond(before + 1, 30s); again && serving) {
    sample.recovery_ms = ms(*again - killed);
  }
  // WPE's helpers may outlive cog: end the whole tree this run started.
  auto tree = wt::processesBelow(child->pid(), "");
  child->stop(SIGTERM, 3s);
  for (pid_t pid : tree) ::kill(pid, SIGKILL);
  return sample;
}

double median(std::vector<double> v) {
  std::erase_if(v, [](double x) { return x < 0; });
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// weston in the benchmark's Xvfb (x11 backend, pixman): the Wayland compositor Cog's wl
// platform needs. Stopped by pid.
class Weston {
 public:
  static std::unique_ptr<Weston> start(const std::string& display, const fs::path& dir) {
    if (!fs::exists("/usr/bin/weston")) return nullptr;
    const fs::path runtime = dir / "xdg";
    fs::create_directories(runtime);
    fs::permissions(runtime, fs::perms::owner_all, fs::perm_options::replace);
    auto child = ChildProcess::spawn(
        {.argv = {"/usr/bin/weston", "--backend=x11-backend.so", "--use-pixman",
                  "--socket=fleetlet-bench", "--width=1024", "--height=600", "--idle-time=0"},
         .env = {{"DISPLAY", display}, {"XDG_RUNTIME_DIR", runtime.string()}},
         .stdout_path = dir / "weston.log",
         .stderr_path = dir / "weston.log"});
    if (!child) return nullptr;
    for (int i = 0; i < 100 && !fs::exists(runtime / "fleetlet-bench"); ++i) {
      std::this_thread::sleep_for(50ms);
    }
    if (!fs::exists(runtime / "fleetlet-bench")) {
      std::fprintf(stderr, "weston did not start (see %s)\n", (dir / "weston.log").c_str());
      child->stop(SIGTERM, 3s);
      return nullptr;
    }
    std::this_thread::sleep_for(500ms);  // its shell client
    return std::unique_ptr<Weston>(new Weston(std::move(*child), runtime));
  }
  Weston(const Weston&) = delete;
  Weston& operator=(const Weston&) = delete;
  ~Weston() {
    auto tree = wt::processesBelow(process_.pid(), "");
    process_.stop(SIGTERM, 3s);
    for (pid_t pid : tree) ::kill(pid, SIGKILL);
  }
  std::map<std::string, std::string> env() const {
    return {{"XDG_RUNTIME_DIR", runtime_.string()}, {"WAYLAND_DISPLAY", "fleetlet-bench"}};
  }

 private:
  Weston(ChildProcess process, fs::path runtime)
      : process_(std::move(process)), runtime_(std::move(runtime)) {}
  ChildProcess process_;
  fs::path runtime_;
};

// "package version" of the installed Debian packages (dpkg-query), one per line.
std::string versions(const std::vector<std::string>& packages) {
  std::vector<std::string> argv = {"dpkg-query", "-W", "-f", "${Package} ${Version}\n"};
  argv.insert(argv.end(), packages.begin(), packages.end());
  auto out = fleetlet::runCommand(argv);
  return out ? out->out : std::string("(dpkg-query failed)\n");
}

// fleetletd's apply -> SPA visible: the real fleetletd (a private containerd, --display on the
// benchmark's Xvfb); `fleetletctl apply` of a manifest whose webview app's page beacons on its
// first painted frame. "new app": an app the kiosk did not have; "new bundle": another
// bundle of the app on screen. Empty when not root or containerd is missing.
std::map<std::string, std::vector<double>> applyToVisible(const std::string& display,
                                                          Beacon& beacon, const fs::path& dir,
                                                          int rounds) {
  std::map<std::string, std::vector<double>> out;
  if (::geteuid() != 0) {
    std::printf("apply -> visible: skipped (not root)\n");
    return out;
  }
  // fleetletd runs the kiosk as a native system app: the private containerd finds the build's
  // fleetlet shim first on its PATH (PrivateContainerd::shimDir()).
  auto containerd = fleetlet::testing::PrivateContainerd::start();
  if (!containerd) {
    std::printf("apply -> visible: skipped (%s)\n", containerd.error().message().c_str());
    return out;
  }
  const fs::path work = dir / "fleetletd";
  fs::create_directories(work);
  auto agent = ChildProcess::spawn(
      {.argv = {FLEETLETD_PATH, "--containerd", containerd->socket().string(), "--namespace",
                fleetlet::testing::PrivateContainerd::uniqueId("kbench"), "--data-dir",
                (work / "data").string(), "--api-socket", (work / "api.sock").string(), "--display",
                display, "--webview", FLEETLET_WEBVIEW_PATH},
       .stdout_path = work / "fleetletd.log",
       .stderr_path = work / "fleetletd.log"});
  if (!agent) {
    std::fprintf(stderr, "fleetletd: %s\n", agent.error().message().c_str());
    return out;
  }
  for (int i = 0; i < 200 && !fs::exists(work / "data" / "webview" / "control.sock"); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  int revision = 0;
  int serial = 0;
  // Applies `apps` (name, its page's colour) and returns apply -> first beacon in ms.
  auto apply = [&](const std::vector<std::pair<std::string, int>>& apps) -> double {
    std::string manifest = fmt::format(
        "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\napps:\n", ++revision);
    for (const auto& [name, colour] : apps) {
      // Each bundle differs (a serial in the page): a new sha256, a new load.
      const std::string page = fmt::format(
          "<!doctype html><html><body style=\"margin:0;background:#{:06x}\"><h1>{} {}</h1>"
          "<script>requestAnimationFrame(() => requestAnimationFrame(() => "
          "fetch('http://127.0.0.1:{}/painted-{}').catch(() => {{}})));</script></body></html>",
          colour, name, serial + 1, beacon.port(), serial + 1);
      ++serial;
      const std::string bytes =
          fleetlet::bundle::testing::makeTar({fleetlet::bundle::testing::file("index.html", page)});
      const fs::path archive = work / fmt::format("{}-{}.tar.gz", name, serial);
      fleetlet::bundle::testing::writeFile(archive, bytes);
      manifest += fmt::format(
          "  {}:\n    runtime: webview\n    bundle: {{url: \"file://{}\", sha256: \"{}\"}}\n", name,
          archive.string(), fleetlet::sha256Hex(bytes));
    }
    const fs::path file = work / "manifest.yaml";
    std::ofstream(file) << manifest;
    const auto start = Clock::now();
    auto applied =
        fleetlet::runCommand({FLEETLETCTL_PATH, "--api-socket", (work / "api.sock").string(),
                              "apply", "-f", file.string()});
    if (!applied || !applied->status.success()) {
      std::fprintf(stderr, "fleetletctl apply failed: %s\n",
                   applied ? applied->err.c_str() : applied.error().message().c_str());
      return -1;
    }
    // The page of this apply's last bundle: its own beacon path.
    auto painted = beacon.waitForPath(fmt::format("/painted-{}", serial), 30s);
    return painted ? ms(*painted - start) : -1;
  };
  // Warm-up: the kiosk's first web context.
  (void)apply({{"warmup", 0x202020}});
  std::this_thread::sleep_for(500ms);
  for (int round = 0; round < rounds; ++round) {
    const std::string app = fmt::format("app{}", round);
    out["apply -> visible, new app"].push_back(apply({{app, 0x0080ff}}));
    std::this_thread::sleep_for(500ms);
    out["apply -> visible, new bundle"].push_back(apply({{app, 0xff8000}}));
    std::this_thread::sleep_for(500ms);
  }
  agent->stop(SIGTERM, 20s);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiosk benchmark: fleetlet-webview vs cog on one bundle"};
  int rounds = 3;
  app.add_option("--rounds", rounds, "rounds per peer (median reported)");
  bool variants = false;
  app.add_flag("--variants", variants,
               "also fleetlet-webview under start-up environment variants (experiments)");
  bool no_apply = false;
  app.add_flag("--no-apply", no_apply, "skip fleetletd's apply -> visible");
  CLI11_PARSE(app, argc, argv);

  auto& xvfb = wt::sharedXvfb();
  if (!xvfb) {
    std::printf("kiosk benchmark: skipped (Xvfb missing)\n");
    return 0;
  }
  auto dir = fleetlet::testing::TempDir::create("kiosk-bench");
  if (!dir) return 1;
  Beacon beacon;
  const fs::path bundle = dir->path() / "bundle";
  fs::create_directories(bundle);
  std::ofstream(bundle / "index.html")
      << "<!doctype html><html><body style=\"margin:0;background:#0080ff\"><h1>kiosk</h1><script>"
         "requestAnimationFrame(() => requestAnimationFrame(() => fetch('http://127.0.0.1:"
      << beacon.port() << "/painted').catch(() => {})));</script></body></html>";

  std::map<std::string, std::vector<Sample>> results;
  const bool have_cog = fs::exists("/usr/bin/cog");
  auto weston = have_cog ? Weston::start(xvfb->display(), dir->path()) : nullptr;
  for (int round = 0; round < rounds; ++round) {
    fs::remove_all(dir->path() / "state");
    results["fleetlet-webview"].push_back(runOnce(
        {FLEETLET_WEBVIEW_PATH, "--socket", (dir->path() / "ctl.sock").string(), "--state-dir",
         (dir->path() / "state").string(), "--app", "bench=" + bundle.string()},
        {{"DISPLAY", xvfb->display()}}, beacon, dir->path() / "kiosk.log"));
    fs::remove_all(dir->path() / "state");
    results["webview no-sandbox"].push_back(runOnce(
        {FLEETLET_WEBVIEW_PATH, "--socket", (dir->path() / "ctl.sock").string(), "--state-dir",
         (dir->path() / "state").string(), "--no-sandbox", "--app", "bench=" + bundle.string()},
        {{"DISPLAY", xvfb->display()}}, beacon, dir->path() / "kiosk.log"));
    // The kiosk as it was before its start-up work: GL compositing on, no spare web process.
    fs::remove_all(dir->path() / "state");
    results["webview gpu, no spare"].push_back(
        runOnce({FLEETLET_WEBVIEW_PATH, "--socket", (dir->path() / "ctl.sock").string(),
                 "--state-dir", (dir->path() / "state").string(), "--gpu", "on", "--no-spare",
                 "--app", "bench=" + bundle.string()},
                {{"DISPLAY", xvfb->display()}}, beacon, dir->path() / "kiosk.log"));
    // Start-up environment variants, each against the same bundle (--variants).
    const std::vector<std::pair<std::string, std::map<std::string, std::string>>> kVariants = {
        {"env: no a11y", {{"NO_AT_BRIDGE", "1"}, {"GTK_A11Y", "none"}}},
        {"env: no gio extras", {{"GSETTINGS_BACKEND", "memory"}, {"GIO_USE_VFS", "local"}}},
        {"env: both",
         {{"NO_AT_BRIDGE", "1"},
          {"GTK_A11Y", "none"},
          {"GSETTINGS_BACKEND", "memory"},
          {"GIO_USE_VFS", "local"}}},
    };
    for (const auto& [name, extra] : variants ? kVariants : decltype(kVariants){}) {
      auto env = extra;
      env["DISPLAY"] = xvfb->display();
      fs::remove_all(dir->path() / "state");
      results[name].push_back(runOnce(
          {FLEETLET_WEBVIEW_PATH, "--socket", (dir->path() / "ctl.sock").string(), "--state-dir",
           (dir->path() / "state").string(), "--app", "bench=" + bundle.string()},
          env, beacon, dir->path() / "kiosk.log"));
    }
    if (weston) {
      results["cog (wl, weston)"].push_back(
          runOnce({"/usr/bin/cog", "--platform=wl", "-d", "app:" + bundle.string(),
                   "--webprocess-failure=restart", "app:///index.html"},
                  weston->env(), beacon, dir->path() / "cog-wl.log"));
    }
    if (have_cog) {
      results["cog (headless)"].push_back(
          runOnce({"/usr/bin/cog", "--platform=headless", "-d", "app:" + bundle.string(),
                   "--webprocess-failure=restart", "app:///index.html"},
                  {}, beacon, dir->path() / "cog.log"));
    }
  }
  weston.reset();
  auto apply = no_apply ? std::map<std::string, std::vector<double>>{}
                        : applyToVisible(xvfb->display(), beacon, dir->path(), rounds);

  std::printf("kiosk benchmark: %d rounds, medians; one 1024x600 Xvfb (cog wl: in weston there)\n",
              rounds);
  std::printf(
      "%s",
      versions({"libwebkit2gtk-4.1-0", "libwpewebkit-1.1-0", "cog", "weston", "xvfb"}).c_str());
  std::printf("%-22s %16s %10s %12s %16s %12s\n", "peer", "first paint ms", "(min)", "CPU ms",
              "recovery ms", "RSS MiB");
  std::map<std::string, Sample> medians;
  bool missing = false;
  for (const auto& [peer, samples] : results) {
    std::vector<double> fp, rec, rss, cpu;
    for (const auto& s : samples) {
      cpu.push_back(s.cpu_ms);
      fp.push_back(s.first_paint_ms);
      rec.push_back(s.recovery_ms);
      rss.push_back(s.rss_mib);
    }
    medians[peer] = {median(fp), median(rec), median(rss)};
    if (medians[peer].first_paint_ms < 0 || medians[peer].recovery_ms < 0) missing = true;
    std::printf("%-22s %16.0f %10.0f %12.0f %16.0f %12.1f\n", peer.c_str(),
                medians[peer].first_paint_ms, *std::min_element(fp.begin(), fp.end()), median(cpu),
                medians[peer].recovery_ms, medians[peer].rss_mib);
  }
  for (const auto& [what, samples] : apply) {
    const double m = median(samples);
    if (m < 0) missing = true;
    auto sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    std::printf("fleetletd %-28s median %.0f ms (min %.0f, max %.0f, n=%zu)\n", what.c_str(), m,
                sorted.front(), sorted.back(), sorted.size());
  }
  if (!have_cog) {
    std::printf("cog not installed: no peer\n");
    return 1;
  }
  const char* reference = "cog (wl, weston)";
  if (!results.contains(reference)) {
    std::printf("cog under weston did not run (weston missing?): ratios against cog headless\n");
    reference = "cog (headless)";
  }
  const auto& b = medians[reference];
  for (const char* peer : {"fleetlet-webview", "webview no-sandbox", "webview gpu, no spare"}) {
    const auto& a = medians[peer];
    if (a.first_paint_ms < 0 || b.first_paint_ms < 0) continue;
    std::printf("ratio %s / %s: first paint %.2fx, recovery %.2fx, RSS %.2fx\n", peer, reference,
                a.first_paint_ms / b.first_paint_ms, a.recovery_ms / b.recovery_ms,
                a.rss_mib / b.rss_mib);
  }
  if (missing) {
    std::printf("FAILED: a peer gave no figure (see the logs above)\n");
    return 1;
  }
  return 0;
}
