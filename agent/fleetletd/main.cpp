// fleetletd: the fleetlet node agent. Reconciles containerd to the desired manifest.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <thread>

#include "config/daemon_config.h"
#include "containerd/events.h"
#include "core/agent.h"
#include "core/desired_source.h"
#include "log/log.h"
#include "reconcile/containerd_runtime.h"
#include "state/store.h"

namespace {

using fleetlet::config::DaemonConfig;

int fatal(const fleetlet::Error& e) {
  spdlog::critical("{}", e.message());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
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
  fleetlet::reconcile::ContainerdRuntime runtime(
      *conn, {.ns = cfg.ns,
              .data_dir = cfg.data_dir,
              .plain_http_registries = cfg.plain_http_registries,
              .task_io = {}});
  if (auto st = runtime.startup(); !st) return fatal(st.error());

  fleetlet::core::Agent agent(
      runtime, **store,
      {.parallelism = cfg.parallelism,
       .log_dir = [&runtime](const std::string& a) { return runtime.logDir(a); }});
  if (auto st = agent.load(); !st) spdlog::error("{}", st.error().message());

  auto events = fleetlet::containerd::EventSubscription::start(
      *conn, {fmt::format("namespace=={},topic~=\"^/tasks/\"", cfg.ns)},
      {.on_event = [&agent](const fleetlet::containerd::Event&) { agent.trigger(); },
       .on_subscribed = [&agent] { agent.trigger(); }});

  std::unique_ptr<fleetlet::core::DesiredSource> source;
  if (!cfg.desired.empty()) {
    source = std::make_unique<fleetlet::core::DesiredSource>(cfg.desired, agent);
  }

  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("signal {}: stopping", sig);
    agent.stop();
  });
  agent.run();
  source.reset();
  events.reset();
  signals.join();
  spdlog::info("fleetletd stopped");
  return 0;
}
