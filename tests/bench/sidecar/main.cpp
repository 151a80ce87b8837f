// bench_sidecar: fleetlet-streams and fleetlet-blobs serving N apps (default 20) through socket
// handoff, as fleetletd runs them (docs/services.md):
//   RSS      - each service's VmRSS once the N apps' listeners are handed over (attached), its
//              peak while every app publishes an event every 20 ms and uploads a 64 KiB blob
//              every second (publishing), and VmHWM at the end. Target (DESIGN.md): < 10 MiB.
//   latency  - one client publishing one event per request, sequentially: through app-00's
//              handed-off listener (a client in its namespace, 127.0.0.1:4454 there) against
//              the service's own host listener; a new connection per request (as `wget` does)
//              and one kept-alive connection; p50/p99 and the ratio handed-off / host.
// The services run as processes with fresh data dirs; the listeners are made and handed over by
// fleetletd's own services::ServiceLinks in namespaces of the benchmark's own. Needs root.
// Not a test: nothing is asserted.
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "netns/netns.h"
#include "os/child_process.h"
#include "os/unique_fd.h"
#include "services/service_links.h"
#include "support/temp_dir.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using fleetlet::UniqueFd;

std::string readFile(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

// kB of `field` (VmRSS, VmHWM) in /proc/<pid>/status; 0 when unreadable.
double statusMib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field + ":")) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  return 0;
}

// Waits for "<marker><port>" in `log`; 0 on timeout.
uint16_t portFromLog(const std::filesystem::path& log, const std::string& marker) {
  const std::regex re(marker + "([0-9]+)");
  for (int i = 0; i < 400; ++i) {
    std::smatch m;
    const std::string text = readFile(log);
    if (std::regex_search(text, m, re)) return static_cast<uint16_t>(std::stoi(m[1].str()));
    std::this_thread::sleep_for(25ms);
  }
  return 0;
}

// A TCP connection to 127.0.0.1:port from the calling thread's namespace; invalid on failure.
UniqueFd connectLoopback(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  return fd;
}

// A connection made inside `netns` (the socket stays in that namespace whichever thread uses
// it); from this namespace when `netns` is empty.
UniqueFd connectIn(const std::filesystem::path& netns, uint16_t port) {
  if (netns.empty()) return connectLoopback(port);
  UniqueFd fd;
  auto st = fleetlet::netns::runInNetns(netns, [&] { fd = connectLoopback(port); });
  if (!st)
    (void)std::fprintf(stderr, "connect in %s: %s\n", netns.c_str(), st.error().message().c_str());
  return fd;
}

// Sends one HTTP/1.1 request and reads the response (Content-Length bodies only); the status,
// or 0 when the connection failed.
int roundTrip(int fd, const std::string& request, std::string* body = nullptr) {
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return 0;
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[4096];
  size_t header_end = std::string::npos;
  size_t length = 0;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      std::string lower = in.substr(0, header_end);
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      auto at = lower.find("content-length:");
      if (at != std::string::npos) length = std::stoul(lower.substr(at + 15));
    }
    if (in.size() >= header_end + 4 + length) break;
  }
  if (body != nullptr) *body = in.substr(header_end + 4);
  return std::stoi(in.substr(9, 3));
}

std::string publishRequest(int i, bool keep_alive) {
  const std::string body =
      R"({"data":[{"semantics":"bench","name":"n","payload":{"i":)" + std::to_string(i) + "}}]}";
  return "POST /api/v1/events/publish HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
         "application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") +
         "\r\n\r\n" + body;
}

std::string uploadRequest(const std::string& blob) {
  const std::string boundary = "benchboundary";
  const auto until = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() +
                     3600;
  const std::string body =
      "--" + boundary +
      "\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: "
      "application/json\r\n\r\n"
      R"({"semantics":"bench","retentionPolicy":{"policy":"keepUntilTime","until":)" +
      std::to_string(until) + "}}\r\n--" + boundary +
      "\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"b.bin\"\r\nContent-Type: "
      "application/octet-stream\r\n\r\n" +
      blob + "\r\n--" + boundary + "--\r\n";
  return "POST /api/v1/blobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; "
         "boundary=" +
         boundary + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
  size_t failures = 0;
};

Latency percentiles(std::vector<double> us, size_t failures) {
  Latency out{.failures = failures};
  if (us.empty()) return out;
  std::sort(us.begin(), us.end());
  out.p50_us = us[us.size() / 2];
  out.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  return out;
}

// `count` sequential publishes to `port` from the calling thread's namespace.
Latency measureHere(uint16_t port, int count, bool keep_alive) {
  std::vector<double> us;
  size_t failures = 0;
  UniqueFd kept;
  for (int i = 0; i < count; ++i) {
    const auto start = Clock::now();
    if (!keep_alive || !kept.valid()) kept = connectLoopback(port);
    int status = kept.valid() ? roundTrip(kept.get(), publishRequest(i, keep_alive)) : 0;
    const auto took = Clock::now() - start;
    if (status != 201 && status != 200) {
      ++failures;
      kept = UniqueFd();
      continue;
    }
    if (!keep_alive) kept = UniqueFd();
    us.push_back(std::chrono::duration<double, std::micro>(took).count());
  }
  return percentiles(std::move(us), failures);
}

// The same from inside `netns` (empty: this namespace): the whole loop runs on one thread in
// that namespace, so that entering it is not part of any request's time.
Latency measure(const std::filesystem::path& netns, uint16_t port, int count, bool keep_alive) {
  if (netns.empty()) return measureHere(port, count, keep_alive);
  Latency out{.failures = static_cast<size_t>(count)};
  auto st = fleetlet::netns::runInNetns(netns, [&] { out = measureHere(port, count, keep_alive); });
  if (!st)
    (void)std::fprintf(stderr, "measure in %s: %s\n", netns.c_str(), st.error().message().c_str());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"bench_sidecar: the node services with apps attached through socket handoff"};
  int apps = 20;
  int seconds = 10;
  int samples = 2000;
  int upload_ms = 1000;
  cli.add_option("--apps", apps, "apps attached")->capture_default_str();
  cli.add_option("--seconds", seconds, "how long every app publishes")->capture_default_str();
  cli.add_option("--samples", samples, "publishes per latency figure")->capture_default_str();
  cli.add_option("--upload-ms", upload_ms,
                 "every app uploads a 64 KiB blob this often (0: events only)")
      ->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  if (::geteuid() != 0) {
    (void)std::fprintf(stderr, "bench_sidecar: needs root (network namespaces)\n");
    return 2;
  }

  auto dir = fleetlet::testing::TempDir::create("bench-sidecar");
  if (!dir) return 1;
  const auto d = dir->path();
  // NamedNetns::create makes d/netns a mount point (bound onto itself, as `ip netns` does to
  // /run/netns); unmounted on every way out, after the namespaces and before the directory goes.
  struct NetnsDirMount {
    std::filesystem::path dir;
    ~NetnsDirMount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } const netns_dir_mount{d / "netns"};
  const auto streams_log = d / "streams.log";
  const auto blobs_log = d / "blobs.log";
  auto streams = fleetlet::ChildProcess::spawn(
      {.argv = {STREAMS_PATH, "--data-dir", (d / "streams").string(), "--listen", "127.0.0.1:0",
                "--console-listen", "127.0.0.1:0", "--handoff-socket",
                (d / "streams.sock").string()},
       .stdout_path = streams_log,
       .stderr_path = streams_log});
  if (!streams) return (void)std::fprintf(stderr, "%s\n", streams.error().message().c_str()), 1;
  const uint16_t events_port = portFromLog(streams_log, "events listening on 127.0.0.1:");
  if (events_port == 0) return (void)std::fprintf(stderr, "%s", readFile(streams_log).c_str()), 1;
  auto blobs = fleetlet::ChildProcess::spawn(
      {.argv = {BLOBS_PATH, "--data-dir", (d / "blobs").string(), "--listen", "127.0.0.1:0",
                "--events-url", "http://127.0.0.1:" + std::to_string(events_port),
                "--handoff-socket", (d / "blobs.sock").string()},
       .stdout_path = blobs_log,
       .stderr_path = blobs_log});
  if (!blobs) return (void)std::fprintf(stderr, "%s\n", blobs.error().message().c_str()), 1;
  if (portFromLog(blobs_log, "listening on 127.0.0.1:") == 0) {
    return (void)std::fprintf(stderr, "%s", readFile(blobs_log).c_str()), 1;
  }
  const double streams_idle = statusMib(streams->pid(), "VmRSS");
  const double blobs_idle = statusMib(blobs->pid(), "VmRSS");

  // N apps' namespaces, their listeners made and handed over by fleetletd's ServiceLinks.
  std::vector<fleetlet::netns::NamedNetns> namespaces;
  fleetlet::services::ServiceLinks links(
      {.streams_socket = d / "streams.sock", .blobs_socket = d / "blobs.sock"});
  links.start();
  for (int i = 0; i < apps; ++i) {
    char name[16];
    (void)std::snprintf(name, sizeof(name), "app-%02d", i);
    auto ns = fleetlet::netns::NamedNetns::create(name, d / "netns");
    if (!ns) return (void)std::fprintf(stderr, "%s\n", ns.error().message().c_str()), 1;
    if (auto st = links.link(name, {"events", "blobs"}, ns->path()); !st) {
      return (void)std::fprintf(stderr, "%s\n", st.error().message().c_str()), 1;
    }
    namespaces.push_back(std::move(*ns));
  }
  // Handed over: every app's 4454 answers.
  for (const auto& ns : namespaces) {
    if (measure(ns.path(), 4454, 1, false).failures != 0) {
      return (void)std::fprintf(stderr, "%s: no answer on 4454\n", ns.path().c_str()), 1;
    }
  }
  std::this_thread::sleep_for(500ms);
  const double streams_attached = statusMib(streams->pid(), "VmRSS");
  const double blobs_attached = statusMib(blobs->pid(), "VmRSS");

  // Every app publishes (an event per 20 ms, a 64 KiB blob per second) for `seconds`.
  std::atomic<bool> running{true};
  std::atomic<size_t> events{0}, uploads{0}, event_failures{0}, upload_failures{0};
  std::vector<std::jthread> publishers;
  publishers.reserve(namespaces.size());
  const std::string blob(size_t{64} * 1024, 'x');
  for (const auto& ns : namespaces) {
    publishers.emplace_back([&, path = ns.path()] {
      UniqueFd conn;
      int i = 0;
      auto next_upload = Clock::now();
      while (running) {
        // A kept-alive connection the server closed meanwhile is made again once.
        int status = 0;
        for (int attempt = 0; attempt < 2 && status == 0; ++attempt) {
          if (!conn.valid()) conn = connectIn(path, 4454);
          status = conn.valid() ? roundTrip(conn.get(), publishRequest(i, true)) : 0;
          if (status == 0) conn = UniqueFd();
        }
        ++i;
        if (status == 201) {
          ++events;
        } else {
          ++event_failures;
          if (event_failures == 1) (void)std::fprintf(stderr, "publish: status %d\n", status);
        }
        if (upload_ms > 0 && Clock::now() >= next_upload) {
          next_upload += std::chrono::milliseconds(upload_ms);
          UniqueFd up = connectIn(path, 4455);
          std::string reply;
          status = up.valid() ? roundTrip(up.get(), uploadRequest(blob), &reply) : 0;
          if (status == 201) {
            ++uploads;
          } else {
            ++upload_failures;
            if (upload_failures == 1) {
              (void)std::fprintf(stderr, "upload: status %d: %s\n", status, reply.c_str());
            }
          }
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  double streams_peak = 0, blobs_peak = 0;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    streams_peak = std::max(streams_peak, statusMib(streams->pid(), "VmRSS"));
    blobs_peak = std::max(blobs_peak, statusMib(blobs->pid(), "VmRSS"));
    std::this_thread::sleep_for(100ms);
  }
  running = false;
  publishers.clear();
  const double streams_hwm = statusMib(streams->pid(), "VmHWM");
  const double blobs_hwm = statusMib(blobs->pid(), "VmHWM");

  (void)std::printf("bench_sidecar: %d apps attached (events + blobs listeners handed over)\n",
                    apps);
  (void)std::printf(
      "  load: %zu events (%zu failed) and %zu 64 KiB blob uploads (%zu failed) in %d s\n",
      events.load(), event_failures.load(), uploads.load(), upload_failures.load(), seconds);
  (void)std::printf("  %-18s %10s %10s %12s %10s %s\n", "VmRSS MiB", "idle", "attached",
                    "publishing", "VmHWM", "target < 10 MiB");
  (void)std::printf("  %-18s %10.1f %10.1f %12.1f %10.1f %s\n", "fleetlet-streams", streams_idle,
                    streams_attached, streams_peak, streams_hwm,
                    streams_hwm < 10 ? "met" : "MISSED");
  (void)std::printf("  %-18s %10.1f %10.1f %12.1f %10.1f %s\n", "fleetlet-blobs", blobs_idle,
                    blobs_attached, blobs_peak, blobs_hwm, blobs_hwm < 10 ? "met" : "MISSED");

  // Latency, alternating blocks so that drift hits both alike.
  const auto& app0 = namespaces.front().path();
  for (bool keep_alive : {false, true}) {
    std::vector<double> handed_us, host_us;
    size_t handed_fail = 0, host_fail = 0;
    Latency handed, host;
    const int rounds = 5;
    for (int r = 0; r < rounds; ++r) {
      auto a = measure(app0, 4454, samples / rounds, keep_alive);
      auto b = measure({}, events_port, samples / rounds, keep_alive);
      handed_us.push_back(a.p50_us);
      host_us.push_back(b.p50_us);
      handed_fail += a.failures;
      host_fail += b.failures;
      handed.p99_us = std::max(handed.p99_us, a.p99_us);
      host.p99_us = std::max(host.p99_us, b.p99_us);
    }
    std::sort(handed_us.begin(), handed_us.end());
    std::sort(host_us.begin(), host_us.end());
    handed.p50_us = handed_us[rounds / 2];
    host.p50_us = host_us[rounds / 2];
    (void)std::printf(
        "publish latency, %s (%d requests each, median of %d blocks' p50, worst p99):\n",
        keep_alive ? "one kept-alive connection" : "a new connection per request", samples, rounds);
    (void)std::printf(
        "  handed-off listener (app-00's 127.0.0.1:4454): p50 %7.0f us  p99 %7.0f us  "
        "(%zu failed)\n",
        handed.p50_us, handed.p99_us, handed_fail);
    (void)std::printf(
        "  host listener (127.0.0.1:%u):              p50 %7.0f us  p99 %7.0f us  "
        "(%zu failed)\n",
        events_port, host.p50_us, host.p99_us, host_fail);
    (void)std::printf("  ratio handed-off / host: p50 %.2f  p99 %.2f\n",
                      handed.p50_us / host.p50_us, handed.p99_us / host.p99_us);
  }
  return 0;
}
