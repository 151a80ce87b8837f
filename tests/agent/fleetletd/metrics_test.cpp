// fleetletd's metrics on real containerd (docs/observability.md): an app that holds a known
// amount of memory and burns CPU under a quota shows both in /metrics; the exposition passes
// promtool; Debian's Prometheus scrapes --metrics-listen and answers queries on what it got.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include "fleetletd_fixture.h"
#include "os/child_process.h"
#include "os/unique_fd.h"
#include "support/promtool.h"

namespace fleetlet::fleetletd_testing {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// A TCP port free on 127.0.0.1 a moment ago, for Prometheus, which cannot report a port it
// chose itself.
uint16_t freePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

class MetricsTest : public FleetletdTest {
 protected:
  // GET /metrics on the API socket; empty while fleetletd does not answer yet.
  std::string scrape() {
    auto [status, body] = apiGet("/metrics");
    return status == 200 ? body : std::string();
  }
  // The port of --metrics-listen 127.0.0.1:0, from fleetletd's log.
  std::string metricsPort() {
    const std::string marker = "metrics listening on 127.0.0.1:";
    std::string port;
    testing::waitFor(
        [&] {
          auto log = agentLog();
          auto at = log.find(marker);
          if (at == std::string::npos) return false;
          at += marker.size();
          port = log.substr(at, log.find_first_not_of("0123456789", at) - at);
          return !port.empty();
        },
        30s);
    return port;
  }
};

TEST_F(MetricsTest, AnAppsMemoryCpuLimitsAndRestartsShowInMetrics) {
  startAgent();
  // hog fills 16 MiB of its /dev/shm (tmpfs, charged to its memory cgroup), then spins under a
  // quota of half a CPU; crash exits at once and is restarted.
  apply(manifest(1, busyboxApp("hog",
                               "head -c 16777216 /dev/zero > /dev/shm/fill && echo filled && "
                               "while :; do :; done",
                               "    resources: {memory: 64Mi, cpu: 0.5, pids: 32}\n") +
                        busyboxApp("crash", "sleep 0.2; exit 3")));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto m = scrape();
        return testing::sampleValue(m, "fleetlet_app_memory_bytes{app=\"hog\"}").value_or(0) >=
                   16 * kMiB &&
               testing::sampleValue(m, "fleetlet_app_restarts_total{app=\"crash\",reason=\"exit\"}")
                       .value_or(0) >= 1;
      },
      90s))
      << scrape() << agentLog();

  const auto t0 = std::chrono::steady_clock::now();
  const auto first = scrape();
  ASSERT_FALSE(first.empty());
  std::this_thread::sleep_for(4s);
  const auto second = scrape();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const double memory =
      testing::sampleValue(second, "fleetlet_app_memory_bytes{app=\"hog\"}").value_or(-1);
  EXPECT_GE(memory, 16 * kMiB) << second;
  EXPECT_LT(memory, 16 * kMiB + 8 * kMiB) << second;  // the shell and its page tables
  EXPECT_GE(testing::sampleValue(second, "fleetlet_app_memory_max_bytes{app=\"hog\"}").value_or(-1),
            memory);
  EXPECT_EQ(testing::sampleValue(second, "fleetlet_app_memory_limit_bytes{app=\"hog\"}"),
            64 * kMiB);
  EXPECT_EQ(testing::sampleValue(second, "fleetlet_app_pids_limit{app=\"hog\"}"), 32);
  const double pids = testing::sampleValue(second, "fleetlet_app_pids{app=\"hog\"}").value_or(-1);
  EXPECT_GE(pids, 1);
  EXPECT_LE(pids, 2);
  // CPU: the spinning shell gets at most its quota of half a CPU; it gets some of it even on a
  // busy machine. The bounds are loose on the low side only.
  const double burned =
      testing::sampleValue(second, "fleetlet_app_cpu_seconds_total{app=\"hog\"}").value_or(0) -
      testing::sampleValue(first, "fleetlet_app_cpu_seconds_total{app=\"hog\"}").value_or(0);
  EXPECT_GT(burned / wall, 0.05) << burned << " s of CPU in " << wall << " s";
  EXPECT_LT(burned / wall, 0.5 * 1.15) << burned << " s of CPU in " << wall << " s";
  EXPECT_EQ(testing::sampleValue(second, "fleetlet_app_state{app=\"hog\",state=\"running\"}"), 1)
      << second;
  EXPECT_EQ(testing::sampleValue(second, "fleetlet_app_healthy{app=\"hog\"}"), 1);
  EXPECT_EQ(testing::sampleValue(second, "fleetlet_containerd_up"), 1);
  // fleetletd's own work: the busybox image was pulled into this test's fresh containerd.
  EXPECT_GE(testing::sampleValue(second, "fleetlet_image_pulls_total{result=\"ok\"}").value_or(0),
            1);
  EXPECT_GT(testing::sampleValue(second, "fleetlet_image_pull_bytes_total").value_or(0), 0);
  EXPECT_GE(
      testing::sampleValue(second, "fleetlet_reconcile_passes_total{kind=\"app\"}").value_or(0), 2);
  EXPECT_TRUE(testing::sampleValue(
      second, "fleetlet_node_disk_free_bytes{path=\"" + dataDir().string() + "\"}"))
      << second;

  // fleetletctl top against the same node: hog's CPU share (under its quota) and memory
  // against its limit.
  auto top = runCommand({FLEETLETCTL_PATH, "--api-socket", (dir_->path() / "api.sock").string(),
                         "top", "--interval", "1"});
  ASSERT_TRUE(top) << top.error().message();
  EXPECT_TRUE(top->status.success()) << top->err;
  std::string hog_row;
  std::istringstream rows(top->out);
  for (std::string row; std::getline(rows, row);) {
    if (row.starts_with("hog ")) hog_row = row;
  }
  EXPECT_NE(hog_row.find(" running "), std::string::npos) << top->out;
  EXPECT_NE(hog_row.find("MiB/64.0MiB"), std::string::npos) << top->out;
  EXPECT_NE(hog_row.find('%'), std::string::npos) << top->out;

  EXPECT_EQ(testing::promtoolProblems(second), "") << second;
}

TEST_F(MetricsTest, PrometheusScrapesTheMetricsListener) {
  startAgent({"--metrics-listen", "127.0.0.1:0"});
  apply(manifest(1, busyboxApp("sleeper", "sleep 1000", "    resources: {memory: 32Mi}\n")));
  ASSERT_TRUE(waitRunning({"sleeper"})) << agentLog();
  const std::string port = metricsPort();
  ASSERT_FALSE(port.empty()) << agentLog();

  // The listener serves the metrics and nothing else of the local API.
  http::Client client({.total_timeout = std::chrono::seconds(30)});
  auto direct = client.send({.url = "http://127.0.0.1:" + port + "/metrics"});
  ASSERT_TRUE(direct) << direct.error().message();
  EXPECT_EQ(direct->status, 200);
  auto apps = client.send({.url = "http://127.0.0.1:" + port + "/v1/apps"});
  ASSERT_TRUE(apps) << apps.error().message();
  EXPECT_EQ(apps->status, 404);

  const auto prom_dir = dir_->path() / "prometheus";
  std::filesystem::create_directories(prom_dir / "data");
  std::ofstream(prom_dir / "prometheus.yml")
      << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         "scrape_configs:\n"
         "  - job_name: fleetletd\n"
         "    static_configs: [{targets: ['127.0.0.1:"
      << port << "']}]\n";
  const uint16_t prom_port = freePort();
  ASSERT_NE(prom_port, 0);
  auto prometheus = ChildProcess::spawn(
      {.argv = {"prometheus", "--config.file=" + (prom_dir / "prometheus.yml").string(),
                "--storage.tsdb.path=" + (prom_dir / "data").string(),
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
       .stdout_path = prom_dir / "prometheus.log",
       .stderr_path = prom_dir / "prometheus.log"});
  ASSERT_TRUE(prometheus) << "prometheus (Debian package prometheus): "
                          << prometheus.error().message();

  const std::string api = "http://127.0.0.1:" + std::to_string(prom_port) + "/api/v1/query?query=";
  // The first value of the query's result vector, once Prometheus has one.
  auto query = [&](const std::string& promql) -> std::optional<std::string> {
    auto r = client.send({.url = api + promql});
    if (!r || r->status != 200) return std::nullopt;
    auto j = parseJson(r->body, "query");
    if (!j || (*j)["data"]["result"].empty()) return std::nullopt;
    return (*j)["data"]["result"][0]["value"][1].get<std::string>();
  };
  std::optional<std::string> state;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        state = query("fleetlet_app_state%7Bapp%3D%22sleeper%22%2Cstate%3D%22running%22%7D");
        return state.has_value();
      },
      60s))
      << readFile(prom_dir / "prometheus.log");
  EXPECT_EQ(state.value_or(""), "1");
  EXPECT_EQ(query("up%7Bjob%3D%22fleetletd%22%7D").value_or(""), "1");
  EXPECT_EQ(query("fleetlet_app_memory_limit_bytes%7Bapp%3D%22sleeper%22%7D").value_or(""),
            std::to_string(32 * 1024 * 1024));
  EXPECT_EQ(query("fleetlet_containerd_up").value_or(""), "1");
  auto stopped = prometheus->stop(SIGTERM, 20s);
  EXPECT_EQ(stopped.term_signal, 0) << readFile(prom_dir / "prometheus.log");
}

TEST_F(MetricsTest, AlertsRaiseContinueAndFallAsNodeEvents) {
  // fleetlet-streams on the host: alerts are published to its event service too.
  startStreams();
  const auto config = dir_->path() / "fleetletd.yaml";
  std::ofstream(config) << "alerts:\n  interval: 1s\n  continueEvery: 2s\n"
                           "  rules: [\"app memory > 10% of limit\"]\n"
                           "  eventsUrl: http://127.0.0.1:"
                        << streams_port_ << "\n";
  startAgent({"--config", config.string()});
  // 16 MiB of a 64 MiB limit: 25%, above the rule's 10%.
  apply(manifest(1, busyboxApp("hog", "head -c 16777216 /dev/zero > /dev/shm/fill && sleep 1000",
                               "    resources: {memory: 64Mi}\n")));
  auto alerts = [&](const std::string& phase) {
    size_t n = 0;
    for (const auto& e : apiEvents(0)) {
      if (e.value("kind", "") == "alert" && e.value("app", "") == "hog" &&
          e.value("message", "").starts_with(phase + " app memory > 10% of limit: hog at ")) {
        ++n;
      }
    }
    return n;
  };
  ASSERT_TRUE(testing::waitFor([&] { return alerts("continue") >= 1; }, 90s)) << agentLog();
  // The app goes: its alert falls.
  apply(manifest(2, busyboxApp("idle", "sleep 1000")));
  ASSERT_TRUE(testing::waitFor([&] { return alerts("fall") == 1; }, 60s)) << agentLog();
  std::this_thread::sleep_for(3s);  // more evaluations: nothing more about hog
  EXPECT_EQ(alerts("raise"), 1U);
  EXPECT_EQ(alerts("fall"), 1U);
  // The event service got each of them as a fleetlet.alert event.
  const std::string published = streamsEvents();
  EXPECT_EQ(countOf(published, "\"semantics\":\"fleetlet.alert\""),
            alerts("raise") + alerts("continue") + alerts("fall"))
      << published;
  EXPECT_EQ(countOf(published, "\"phase\":\"raise\""), 1U) << published;
  EXPECT_EQ(countOf(published, "\"phase\":\"fall\""), 1U) << published;
  // fleetletctl events shows them.
  auto events = runCommand(
      {FLEETLETCTL_PATH, "--api-socket", (dir_->path() / "api.sock").string(), "events"});
  ASSERT_TRUE(events) << events.error().message();
  bool listed = false;
  std::istringstream lines_of(events->out);
  for (std::string line; std::getline(lines_of, line);) {
    listed = listed || (line.find(" hog ") != std::string::npos &&
                        line.find(" alert ") != std::string::npos &&
                        line.find("raise app memory > 10% of limit: hog at") != std::string::npos);
  }
  EXPECT_TRUE(listed) << events->out;
}

}  // namespace
}  // namespace fleetlet::fleetletd_testing
