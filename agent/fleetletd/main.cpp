// fleetletd: the fleetlet node agent. Reconciles containerd to the desired manifest.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <future>
#include <thread>

#include "api/api_server.h"
#include "config/daemon_config.h"
#include "containerd/events.h"
#include "core/agent.h"
#include "core/desired_source.h"
#include "health/clock.h"
#include "health/container_prober.h"
#include "health/health_monitor.h"
#include "log/log.h"
#include "logs/task_io.h"
#include "reconcile/containerd_runtime.h"
#include "state/store.h"

namespace {

using fleetlet::config::DaemonConfig;

// How long steps in flight may take to finish after SIGTERM before their calls are cancelled.
constexpr std::chrono::seconds kStopGrace{2};

// fleetlet-logger sits next to fleetletd when installed, in a sibling folder in the build tree.
std::filesystem::path defaultLogger() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate :
       {self / "fleetlet-logger", self.parent_path() / "fleetlet-logger" / "fleetlet-logger"}) {
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return "/usr/libexec/fleetlet/fleetlet-logger";
}

int fatal(const fleetlet::Error& e) {
  spdlog::critical("{}", e.message());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each thread that allocates concurrently its own arena, up to 8 per core; with
  // fleetletd's ~20 threads each keeps its own free pages. Two arenas are plenty for a daemon
  // that mostly waits (docs/fleetletd.md, Memory). Before any thread starts.
  mallopt(M_ARENA_MAX, 2);

  CLI::App app{
      "fleetletd — the fleetlet node agent: reconciles containerd to a desired-state manifest.\n\n"
      "Examples:\n"
      "  fleetletd --containerd /tmp/fleetlet-dev/containerd.sock --data-dir /tmp/fl \\\n"
      "            --api-socket /tmp/fl/fleetletd.sock --desired manifests/examples/demo.yaml \\\n"
      "            --plain-http-registry 127.0.0.1:5000\n"
      "  fleetletd --config /etc/fleetlet/fleetletd.yaml\n"};
  DaemonConfig defaults;
  std::string config_file;
  std::string containerd, ns, data_dir, api_socket, desired, log_level;
  std::vector<std::string> plain_http;
  size_t parallelism = 0;
  std::string logger;
  app.add_option("--config", config_file, "YAML config file (flags override it)");
  app.add_option("--containerd", containerd,
                 "containerd's gRPC socket [" + defaults.containerd + "]");
  app.add_option("--namespace", ns, "containerd namespace [" + defaults.ns + "]");
  app.add_option("--data-dir", data_dir,
                 "state, volumes and logs [" + defaults.data_dir.string() + "]");
  app.add_option("--api-socket", api_socket,
                 "local API socket for fleetletctl [" + defaults.api_socket.string() + "]");
  app.add_option("--desired", desired, "a manifest file or a directory of them, watched");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error [info]");
  app.add_option("--plain-http-registry", plain_http,
                 "registry HOST:PORT reached over plain HTTP (repeatable)");
  app.add_option("--parallelism", parallelism, "apps created/started at once [4]");
  app.add_option("--logger", logger,
                 "the fleetlet-logger binary that writes apps' stdout/stderr [next to fleetletd]");
  CLI11_PARSE(app, argc, argv);

  DaemonConfig cfg = defaults;
  if (!config_file.empty()) {
    auto loaded = fleetlet::config::loadConfigFile(config_file, cfg);
    if (!loaded) {
      fmt::print(stderr, "fleetletd: {}\n", loaded.error().message());
      return 2;
    }
    cfg = *loaded;
  }
  if (!containerd.empty()) cfg.containerd = containerd;
  if (!ns.empty()) cfg.ns = ns;
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  if (!api_socket.empty()) cfg.api_socket = api_socket;
  if (!desired.empty()) cfg.desired = desired;
  if (!log_level.empty()) cfg.log_level = log_level;
  if (parallelism > 0) cfg.parallelism = parallelism;
  cfg.plain_http_registries.insert(plain_http.begin(), plain_http.end());
  if (auto st = fleetlet::setupLogging("fleetletd", cfg.log_level); !st) {
    fmt::print(stderr, "fleetletd: {}\n", st.error().message());
    return 2;
  }

  // Signals go to one thread that asks everything to stop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  spdlog::info("fleetletd starting: containerd {}, namespace {}, data {}", cfg.containerd, cfg.ns,
               cfg.data_dir.string());
  auto conn = fleetlet::containerd::Connection::connect(cfg.containerd, std::chrono::seconds(30));
  if (!conn) return fatal(conn.error());
  auto store = fleetlet::state::StateStore::open(cfg.data_dir);
  if (!store) return fatal(store.error());
  const std::filesystem::path logger_binary =
      logger.empty() ? defaultLogger() : std::filesystem::path(logger);
  std::error_code ec;
  if (!std::filesystem::exists(logger_binary, ec)) {
    spdlog::critical("fleetlet-logger not found at {} (set --logger)", logger_binary.string());
    return 1;
  }
  const std::filesystem::path logs_root = cfg.data_dir / "logs";
  fleetlet::reconcile::ContainerdRuntime runtime(
      *conn, {.ns = cfg.ns,
              .data_dir = cfg.data_dir,
              .plain_http_registries = cfg.plain_http_registries,
              .task_io = [&](const std::string& app_name) {
                return fleetlet::logs::loggerIo(logger_binary, logs_root / app_name);
              }});
  if (auto st = runtime.startup(); !st) return fatal(st.error());

  // Health checks: targets follow each reconcile pass; a failing app is restarted.
  fleetlet::health::ContainerProber prober(*conn, cfg.ns, cfg.data_dir / "health");
  fleetlet::health::SteadyClock health_clock;
  fleetlet::core::Agent* agent_ptr = nullptr;
  fleetlet::health::HealthMonitor monitor(
      prober, health_clock,
      {.on_unhealthy =
           [&agent_ptr](const std::string& a, const fleetlet::Error& why) {
             if (agent_ptr != nullptr) agent_ptr->unhealthy(a, why.message());
           },
       .on_healthy = {}});

  fleetlet::core::Agent agent(
      runtime, **store,
      {.parallelism = cfg.parallelism,
       .log_dir = [&runtime](const std::string& a) { return runtime.logDir(a); },
       .on_pass =
           [&monitor, &agent_ptr](const std::vector<fleetlet::reconcile::AppSnapshot>& apps) {
             if (agent_ptr == nullptr) return;
             auto wanted = agent_ptr->reconciler().desired();
             std::vector<fleetlet::health::Target> targets;
             for (const auto& a : apps) {
               if (!wanted || a.state != "running" || a.pid == 0) continue;
               auto it = wanted->apps.find(a.name);
               if (it == wanted->apps.end() || !it->second.health) continue;
               targets.push_back({.app = a.name,
                                  .container_id = a.container_id,
                                  .pid = a.pid,
                                  .check = *it->second.health});
             }
             spdlog::debug("health checks for {} apps", targets.size());
             monitor.setTargets(std::move(targets));
           }});
  agent_ptr = &agent;
  if (auto st = agent.load(); !st) spdlog::error("{}", st.error().message());

  auto api = fleetlet::api::ApiServer::start(agent, {.socket_path = cfg.api_socket});
  if (!api) return fatal(api.error().wrap("local API on {}", cfg.api_socket.string()));
  spdlog::info("local API on {}", cfg.api_socket.string());

  auto events = fleetlet::containerd::EventSubscription::start(
      *conn, {fmt::format("namespace=={},topic~=\"^/tasks/\"", cfg.ns)},
      {.on_event = [&agent](const fleetlet::containerd::Event&) { agent.trigger(); },
       .on_subscribed = [&agent] { agent.trigger(); }});

  std::unique_ptr<fleetlet::core::DesiredSource> source;
  if (!cfg.desired.empty()) {
    source = std::make_unique<fleetlet::core::DesiredSource>(cfg.desired, agent);
  }

  // On SIGTERM no new step starts; steps in flight get a moment to finish, then every call
  // still waiting on containerd (gone, or restarting) is cancelled, so that the stop is prompt.
  // Whatever a cancelled step left half done, the next start converges, as after kill -9.
  std::promise<void> run_returned;
  std::thread signals([&, done = run_returned.get_future()] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("signal {}: stopping", sig);
    agent.stop();
    if (done.wait_for(kStopGrace) == std::future_status::timeout) {
      spdlog::info("cancelling calls to containerd still in flight");
      (*conn)->shutdown();
    }
  });
  agent.run();
  run_returned.set_value();
  (*conn)->shutdown();  // health probes and anything else still waiting
  (*api)->stop();
  monitor.stop();
  source.reset();
  events.reset();
  signals.join();
  spdlog::info("fleetletd stopped");
  return 0;
}
