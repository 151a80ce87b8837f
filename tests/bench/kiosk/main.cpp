// Kiosk benchmark: fleetlet-webview (WebKitGTK, under a private Xvfb) against Debian's Cog
// (WPE, its headless platform: Cog has no X11 platform) on the same bundle in the same run.
// Per round and peer: first paint after start (the page's second animation frame calls a
// loopback beacon), recovery after SIGKILL of the web process (the reloaded page's beacon),
// and the RSS of the peer's whole process tree once painted. Prints medians and ratios.
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
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "kiosk_fixture.h"
#include "os/child_process.h"
#include "os/unique_fd.h"
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

 private:
  void serve() {
    for (;;) {
      fleetlet::UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      const auto at = Clock::now();
      char buf[4096];
      (void)::recv(conn.get(), buf, sizeof(buf), 0);
      static constexpr std::string_view kAnswer =
          "HTTP/1.0 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\n\r\n";
      (void)::send(conn.get(), kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL);
      std::lock_guard lock(mu_);
      times_.push_back(at);
      cv_.notify_all();
    }
  }
  fleetlet::UniqueFd listener_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Clock::time_point> times_;  // guarded by mu_
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

struct Sample {
  double first_paint_ms = -1;
  double recovery_ms = -1;
  double rss_mib = -1;
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
  std::this_thread::sleep_for(1s);
  sample.rss_mib = static_cast<double>(treeRssKiB(child->pid())) / 1024.0;
  auto web = wt::webProcessesBelow(child->pid());  // WebKitGTK's
  for (pid_t pid : wt::processesBelow(child->pid(), "WPEWebProcess")) web.push_back(pid);  // WPE's
  const auto killed = Clock::now();
  for (pid_t pid : web) ::kill(pid, SIGKILL);
  if (auto again = beacon.waitBeyond(before + 1, 30s); again && !web.empty()) {
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiosk benchmark: fleetlet-webview vs cog on one bundle"};
  int rounds = 3;
  app.add_option("--rounds", rounds, "rounds per peer (median reported)");
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
    if (have_cog) {
      results["cog (headless)"].push_back(
          runOnce({"/usr/bin/cog", "--platform=headless", "-d", "app:" + bundle.string(),
                   "--webprocess-failure=restart", "app:///index.html"},
                  {}, beacon, dir->path() / "cog.log"));
    }
  }
  std::printf("kiosk benchmark: %d rounds, medians; 1024x600 Xvfb for fleetlet-webview\n", rounds);
  std::printf("%-18s %16s %16s %12s\n", "peer", "first paint ms", "recovery ms", "RSS MiB");
  std::map<std::string, Sample> medians;
  for (const auto& [peer, samples] : results) {
    std::vector<double> fp, rec, rss;
    for (const auto& s : samples) {
      fp.push_back(s.first_paint_ms);
      rec.push_back(s.recovery_ms);
      rss.push_back(s.rss_mib);
    }
    medians[peer] = {median(fp), median(rec), median(rss)};
    std::printf("%-18s %16.0f %16.0f %12.1f\n", peer.c_str(), medians[peer].first_paint_ms,
                medians[peer].recovery_ms, medians[peer].rss_mib);
  }
  if (!have_cog) {
    std::printf("cog not installed: no peer\n");
  } else {
    const auto& b = medians["cog (headless)"];
    for (const char* peer : {"fleetlet-webview", "webview no-sandbox"}) {
      const auto& a = medians[peer];
      std::printf("ratio %s / cog: first paint %.2fx, recovery %.2fx, RSS %.2fx\n", peer,
                  a.first_paint_ms / b.first_paint_ms, a.recovery_ms / b.recovery_ms,
                  a.rss_mib / b.rss_mib);
    }
  }
  return 0;
}
