// fleetletd: the fleetlet node agent. Reconciles containerd to the desired manifest.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "api/api_server.h"
#include "cloud/manifest_source.h"
#include "cloud/status_reporter.h"
#include "config/daemon_config.h"
#include "containerd/events.h"
#include "core/agent.h"
#include "core/desired_source.h"
#include "executor/executor.h"
#include "executor/plugin_runner.h"
#include "health/clock.h"
#include "health/container_prober.h"
#include "health/health_monitor.h"
#include "http/client.h"
#include "log/log.h"
#include "logs/task_io.h"
#include "logship/console_sink.h"
#include "logship/cursor_store.h"
#include "logship/ingest_listener.h"
#include "logship/shipper.h"
#include "monitoring/agent_metrics.h"
#include "monitoring/alerts.h"
#include "network/app_networks.h"
#include "reconcile/containerd_runtime.h"
#include "services/service_links.h"
#include "state/store.h"
#include "system_apps/system_apps.h"
#include "system_apps/system_images.h"
#include "webview/webview_runtime.h"

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

// Plugin directories: the configured ones, then fleetlet-firewall's folder in the build tree
// when fleetletd runs from there.
std::vector<std::filesystem::path> cniBinDirs(std::vector<std::filesystem::path> dirs) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  auto built = self.parent_path().parent_path() / "cni";
  if (!ec && std::filesystem::exists(built / "fleetlet-firewall", ec)) dirs.push_back(built);
  return dirs;
}

// The firewall's counters of one app (netns and addresses left empty).
fleetlet::core::AppNetworkStatus trafficOf(const fleetlet::cni::firewall::AttachmentCounters& c) {
  auto copy = [](const fleetlet::cni::firewall::Counter& x) {
    return fleetlet::core::AppNetworkStatus::Counter{.packets = x.packets, .bytes = x.bytes};
  };
  return {.egress = copy(c.egress), .ingress = copy(c.ingress), .dropped = copy(c.dropped)};
}

// What `describe app` shows of an app's network; nullopt when it is not attached.
std::optional<fleetlet::core::AppNetworkStatus> networkStatus(
    const fleetlet::network::AppNetworks& networks, const std::string& app) {
  auto addresses = networks.addresses(app);
  if (addresses.empty()) return std::nullopt;
  fleetlet::core::AppNetworkStatus out{.netns = networks.netnsPath(app).string(),
                                       .addresses = std::move(addresses)};
  auto counters = networks.counters();
  if (!counters) {
    spdlog::warn("app {}: firewall counters: {}", app, counters.error().message());
    return out;
  }
  if (auto it = counters->find(app); it != counters->end()) {
    auto traffic = trafficOf(it->second);
    out.egress = traffic.egress;
    out.ingress = traffic.ingress;
    out.dropped = traffic.dropped;
  }
  return out;
}

// Every attached app's firewall counters (for metrics).
fleetlet::Result<std::map<std::string, fleetlet::core::AppNetworkStatus>> allTraffic(
    const fleetlet::network::AppNetworks& networks) {
  auto counters = networks.counters();
  if (!counters) return std::unexpected(counters.error());
  std::map<std::string, fleetlet::core::AppNetworkStatus> out;
  for (const auto& [app, c] : *counters) out[app] = trafficOf(c);
  return out;
}

// Health checks follow the apps that run: one target per running app that has a check.
class HealthTargets {
 public:
  explicit HealthTargets(fleetlet::health::HealthMonitor& monitor) : monitor_(monitor) {}

  void update(const fleetlet::reconcile::AppSnapshot& app,
              const std::shared_ptr<const fleetlet::manifest::NodeState>& desired) {
    std::optional<fleetlet::health::Target> target;
    if (app.state == "running" && app.pid != 0 && desired) {
      auto it = desired->apps.find(app.name);
      if (it != desired->apps.end()) {
        if (const auto& check = it->second.health) {
          target = fleetlet::health::Target{
              .app = app.name, .container_id = app.container_id, .pid = app.pid, .check = *check};
        }
      }
    }
    std::lock_guard lock(mu_);
    auto existing = targets_.find(app.name);
    if (existing == targets_.end() && !target) return;
    if (existing != targets_.end() && target && existing->second.pid == target->pid &&
        existing->second.container_id == target->container_id) {
      return;
    }
    if (target) {
      targets_.insert_or_assign(app.name, *target);
    } else {
      targets_.erase(existing);
    }
    std::vector<fleetlet::health::Target> all;
    all.reserve(targets_.size());
    for (const auto& [name, t] : targets_) all.push_back(t);
    spdlog::debug("health checks for {} apps", all.size());
    monitor_.setTargets(std::move(all));
  }

 private:
  fleetlet::health::HealthMonitor& monitor_;
  std::mutex mu_;
  std::map<std::string, fleetlet::health::Target> targets_;  // guarded by mu_
};

// The cloud source's counters as fleetlet_cloud_polls_total's results.
std::map<std::string, int64_t> cloudPolls(const fleetlet::cloud::SourceCounters& c) {
  const int64_t unchanged =
      std::max<int64_t>(0, c.polls - c.not_modified - c.applied - c.refused - c.failures);
  return {{"not_modified", c.not_modified},
          {"applied", c.applied},
          {"unchanged", unchanged},
          {"refused", c.refused},
          {"failed", c.failures}};
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
  size_t pull_parallelism = 0;
  std::string pull_timeout, pull_stall_timeout, removed_log_retention;
  int64_t pull_min_speed = 0;
  std::string logger;
  std::string cni_conf_dir, netns_dir, cni_netns, streams_handoff, blobs_handoff;
  std::string system_manifest, system_images, handoff_dir;
  std::vector<std::string> cni_bin_dirs;
  std::string display, webview_binary;
  std::optional<bool> ship_logs;
  std::string metrics_listen;
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
  app.add_option("--parallelism", parallelism,
                 "reconcile workers: apps worked on at once (pulls do not hold one) [4]")
      ->check(CLI::PositiveNumber);
  app.add_option("--pull-parallelism", pull_parallelism, "images pulled at once [2]")
      ->check(CLI::PositiveNumber);
  app.add_option("--pull-timeout", pull_timeout, "a pull fails after this long [30m]");
  app.add_option("--pull-stall-timeout", pull_stall_timeout,
                 "a pull slower than --pull-min-speed on average over this long fails [30s]");
  app.add_option("--pull-min-speed", pull_min_speed, "bytes/s a pull must keep up [1024]")
      ->check(CLI::PositiveNumber);
  app.add_option("--removed-log-retention", removed_log_retention,
                 "keep the logs of a removed app until unwritten for this long [1h]");
  app.add_option("--logger", logger,
                 "the fleetlet-logger binary that writes apps' stdout/stderr [next to fleetletd]");
  app.add_option("--cni-conf-dir", cni_conf_dir,
                 "app networks: the first *.conflist here, else the built-in `fleetlet` network "
                 "(bridge fleetlet0, 10.90.0.0/16) [" +
                     defaults.cni_conf_dir.string() + "]");
  app.add_option("--cni-bin-dir", cni_bin_dirs,
                 "where CNI plugin binaries are looked up (repeatable) [/usr/lib/cni, "
                 "/usr/libexec/fleetlet/cni]");
  app.add_option("--netns-dir", netns_dir,
                 "where each app's network namespace is pinned as fleetlet-<app> [" +
                     defaults.netns_dir.string() + "]");
  app.add_option("--cni-netns", cni_netns,
                 "run the CNI plugins (bridge, port maps, firewall) in this network namespace "
                 "instead of fleetletd's own [fleetletd's]");
  app.add_option("--streams-handoff", streams_handoff,
                 "fleetlet-streams' --handoff-socket: apps listing events or logs get them on "
                 "their localhost:4454/4457 [off]");
  app.add_option("--blobs-handoff", blobs_handoff,
                 "fleetlet-blobs' --handoff-socket: apps listing blobs get it on their "
                 "localhost:4455 [off]");
  app.add_option("--ship-logs", ship_logs,
                 "true|false: ship every app's stdout/stderr to fleetlet-streams' console "
                 "service, readable with GET /api/v1/logs?app=NAME (docs/logs.md) [true with "
                 "--streams-handoff]");
  app.add_option("--system-manifest", system_manifest,
                 "the system apps (the node services), applied beside the desired state; "
                 "\"none\": no system apps [" +
                     defaults.system_manifest.string() + ", when it exists]");
  app.add_option("--system-images", system_images,
                 "OCI archives (*.tar) of the system apps' images, imported at start [" +
                     defaults.system_images.string() + "]");
  app.add_option("--handoff-dir", handoff_dir,
                 "directory of the services' handoff sockets, mounted into the system apps [" +
                     defaults.handoff_dir.string() + "]");
  app.add_option("--display", display,
                 "X display for runtime: webview apps (e.g. :0); none: webview unsupported");
  app.add_option("--webview", webview_binary, "the fleetlet-webview binary [next to fleetletd]");
  app.add_option("--metrics-listen", metrics_listen,
                 "also serve GET /metrics on TCP: PORT (on 127.0.0.1), ADDR:PORT or "
                 "[V6ADDR]:PORT (docs/observability.md) [off: the API socket only]");
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
  if (pull_parallelism > 0) cfg.pull_parallelism = pull_parallelism;
  if (pull_min_speed > 0) cfg.pull_min_speed = pull_min_speed;
  for (auto [flag, text, target] :
       {std::tuple{"--pull-timeout", &pull_timeout, &cfg.pull_timeout},
        std::tuple{"--pull-stall-timeout", &pull_stall_timeout, &cfg.pull_stall_timeout},
        std::tuple{"--removed-log-retention", &removed_log_retention,
                   &cfg.removed_log_retention}}) {
    if (text->empty()) continue;
    auto d = fleetlet::config::parseDuration(*text);
    if (!d) {
      fmt::print(stderr, "fleetletd: {}: {}\n", flag, d.error().message());
      return 2;
    }
    *target = *d;
  }
  if (!display.empty()) cfg.display = display;
  if (!webview_binary.empty()) cfg.webview_binary = webview_binary;
  if (!metrics_listen.empty()) cfg.metrics_listen = metrics_listen;
  std::vector<fleetlet::monitoring::AlertRule> alert_rules;
  for (const auto& text : cfg.alerts.rules) {
    auto rule = fleetlet::monitoring::parseAlertRule(text);
    if (!rule) {
      fmt::print(stderr, "fleetletd: alerts: {}\n", rule.error().message());
      return 2;
    }
    alert_rules.push_back(std::move(*rule));
  }
  std::optional<std::pair<std::string, uint16_t>> metrics_address;
  if (!cfg.metrics_listen.empty()) {
    auto parsed = fleetlet::api::parseListenAddress(cfg.metrics_listen);
    if (!parsed) {
      fmt::print(stderr, "fleetletd: --metrics-listen: {}\n", parsed.error().message());
      return 2;
    }
    metrics_address = *parsed;
  }
  cfg.plain_http_registries.insert(plain_http.begin(), plain_http.end());
  if (!cni_conf_dir.empty()) cfg.cni_conf_dir = cni_conf_dir;
  if (!netns_dir.empty()) cfg.netns_dir = netns_dir;
  if (!cni_netns.empty()) cfg.cni_netns = cni_netns;
  if (!streams_handoff.empty()) cfg.streams_handoff = streams_handoff;
  if (!blobs_handoff.empty()) cfg.blobs_handoff = blobs_handoff;
  if (ship_logs) cfg.ship_logs = ship_logs;
  if (!system_manifest.empty()) cfg.system_manifest = system_manifest;
  if (!system_images.empty()) cfg.system_images = system_images;
  if (!handoff_dir.empty()) cfg.handoff_dir = handoff_dir;
  // The default system manifest is optional; one named on purpose must be there.
  const bool system_named =
      !system_manifest.empty() || cfg.system_manifest != DaemonConfig{}.system_manifest;
  if (!cni_bin_dirs.empty()) cfg.cni_bin_dirs.assign(cni_bin_dirs.begin(), cni_bin_dirs.end());
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

  // App networks: a bad conflist stops the start (apps would otherwise lose their networks).
  std::optional<std::filesystem::path> plugin_netns;
  if (!cfg.cni_netns.empty()) plugin_netns = cfg.cni_netns;
  fleetlet::cni::ProcessPluginRunner plugin_runner(plugin_netns);
  auto executor = fleetlet::cni::Executor::create(
      {.conf_dir = cfg.cni_conf_dir,
       .default_network = {.ipam_data_dir = cfg.data_dir / "cni" / "networks"},
       .bin_dirs = cniBinDirs(cfg.cni_bin_dirs),
       .cache_dir = cfg.data_dir / "cni" / "attachments",
       .node_netns = plugin_netns},
      plugin_runner);
  if (!executor) return fatal(executor.error().wrap("app networks"));
  auto networks = fleetlet::network::AppNetworks::create(**executor, {.netns_dir = cfg.netns_dir});
  if (!networks) return fatal(networks.error().wrap("app networks"));
  // System apps: their images from the archives, the handoff directory they serve on, then
  // their manifest. A failed import is not fatal: images imported earlier may still be there.
  std::shared_ptr<const fleetlet::manifest::NodeState> system;
  if (cfg.system_manifest != "none" &&
      (system_named || std::filesystem::exists(cfg.system_manifest, ec))) {
    fleetlet::image::ImageStore image_store(*conn, cfg.ns);
    auto digests = fleetlet::system_apps::importSystemImages(cfg.system_images, image_store);
    if (!digests) spdlog::error("system images: {}", digests.error().message());
    std::filesystem::create_directories(cfg.handoff_dir, ec);
    if (ec) {
      return fatal(fleetlet::Error(fleetlet::ErrorCode::kInternal,
                                   fmt::format("create the handoff directory {}: {}",
                                               cfg.handoff_dir.string(), ec.message())));
    }
    std::filesystem::permissions(cfg.handoff_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    auto loaded = fleetlet::system_apps::loadSystemManifest(
        cfg.system_manifest,
        {.handoff_dir = cfg.handoff_dir,
         .image_digests = digests ? *digests : std::map<std::string, std::string>{}});
    if (!loaded) return fatal(loaded.error());
    system = std::make_shared<const fleetlet::manifest::NodeState>(std::move(*loaded));
    if (cfg.streams_handoff.empty()) cfg.streams_handoff = cfg.handoff_dir / "streams.sock";
    if (cfg.blobs_handoff.empty()) cfg.blobs_handoff = cfg.handoff_dir / "blobs.sock";
    spdlog::info("system manifest {}: revision {}, {} apps; handoff sockets in {}",
                 cfg.system_manifest.string(), system->revision, system->apps.size(),
                 cfg.handoff_dir.string());
  }
  fleetlet::services::ServiceLinks service_links(
      {.streams_socket = cfg.streams_handoff, .blobs_socket = cfg.blobs_handoff});
  // Apps' stdout/stderr to the console service through a listener handed to fleetlet-streams
  // (docs/logs.md "Shipping"); it waits for the service while it is down.
  std::unique_ptr<fleetlet::logship::CursorStore> ship_cursors;
  std::unique_ptr<fleetlet::logship::ConsoleSink> ship_sink;
  std::unique_ptr<fleetlet::logship::LogShipper> shipper;
  if (cfg.ship_logs.value_or(!cfg.streams_handoff.empty())) {
    if (cfg.streams_handoff.empty()) {
      return fatal(fleetlet::Error(fleetlet::ErrorCode::kInvalidArgument,
                                   "--ship-logs needs --streams-handoff (the console service)"));
    }
    const auto ship_dir = cfg.data_dir / "logship";
    auto ingest = fleetlet::logship::listenIngest(ship_dir / "ingest.sock");
    if (!ingest) return fatal(ingest.error().wrap("log shipping"));
    if (auto st = service_links.linkNode("console", std::move(*ingest)); !st) {
      return fatal(st.error().wrap("log shipping"));
    }
    auto cursors = fleetlet::logship::CursorStore::open(ship_dir / "cursors.db");
    if (!cursors) return fatal(cursors.error());
    ship_cursors = std::move(*cursors);
    ship_sink = std::make_unique<fleetlet::logship::ConsoleSink>(ship_dir / "ingest.sock");
    shipper = std::make_unique<fleetlet::logship::LogShipper>(
        fleetlet::logship::ShipperOptions{
            .logs_root = logs_root,
            .service_up = [&service_links] { return service_links.streamsConnected(); }},
        *ship_cursors, *ship_sink);
    shipper->start();
    spdlog::info("shipping apps' stdout/stderr to fleetlet-streams' console service");
  }
  spdlog::info("app networks: network {} ({} plugins), namespaces in {}",
               (*executor)->network().name, (*executor)->network().plugins.size(),
               cfg.netns_dir.string());
  // Metrics (docs/observability.md): counters fed as fleetletd works, the rest read per scrape.
  fleetlet::core::Agent* agent_ptr = nullptr;
  std::unique_ptr<fleetlet::cloud::StatusOutbox> outbox;
  std::unique_ptr<fleetlet::cloud::SourceThread> cloud;
  fleetlet::monitoring::AgentMetrics metrics(
      {.apps = [&agent_ptr]() -> fleetlet::Result<std::vector<fleetlet::core::AppStatus>> {
         if (agent_ptr == nullptr) return std::vector<fleetlet::core::AppStatus>{};
         return agent_ptr->apps();
       },
       .task_metrics =
           [&conn, ns = cfg.ns] {
             return fleetlet::containerd::TaskService(*conn, {.ns = ns})
                 .metrics(std::chrono::seconds(5));
           },
       .network = [&networks] { return allTraffic(**networks); },
       .outbox = [&outbox]() -> fleetlet::Result<std::pair<int64_t, int64_t>> {
         if (!outbox) return std::pair<int64_t, int64_t>{0, 0};
         return outbox->pending();
       },
       .cloud_polls =
           [&cloud] {
             std::map<std::string, int64_t> out;
             if (!cloud) return out;
             return cloudPolls(cloud->counters());
           },
       .data_dir = cfg.data_dir});
  fleetlet::reconcile::ContainerdRuntime runtime(
      *conn, {.ns = cfg.ns,
              .data_dir = cfg.data_dir,
              .plain_http_registries = cfg.plain_http_registries,
              .task_io =
                  [&](const std::string& app_name) {
                    return fleetlet::logs::loggerIo(logger_binary, logs_root / app_name);
                  },
              .pull_timeout = cfg.pull_timeout,
              .pull_stall_timeout = cfg.pull_stall_timeout,
              .pull_min_bytes_per_second = cfg.pull_min_speed,
              .removed_log_retention = cfg.removed_log_retention,
              .networks = networks->get(),
              .services = &service_links,
              .on_pull = [&metrics](const fleetlet::Status& outcome,
                                    int64_t bytes) { metrics.pulled(outcome, bytes); }});
  if (auto st = runtime.startup(); !st) return fatal(st.error());

  // Health checks: targets follow each reconcile pass; a failing app is restarted.
  fleetlet::health::ContainerProber prober(*conn, cfg.ns, cfg.data_dir / "health");
  fleetlet::health::SteadyClock health_clock;
  fleetlet::health::HealthMonitor monitor(
      prober, health_clock,
      {.on_unhealthy =
           [&agent_ptr](const std::string& a, const fleetlet::Error& why) {
             if (agent_ptr != nullptr) agent_ptr->unhealthy(a, why.message());
           },
       .on_healthy = {}});

  HealthTargets targets(monitor);
  // runtime: webview on a node with a display (docs/webview.md); destroyed before the agent.
  std::unique_ptr<fleetlet::webview::WebviewRuntime> webview;
  auto trust = fleetlet::trust::Policy::load({.key_files = cfg.trust_keys,
                                              .threshold = cfg.trust_threshold,
                                              .allow_unsigned_local = cfg.allow_unsigned_local});
  if (!trust) return fatal(trust.error());
  auto node_id = fleetlet::config::resolveNodeId(cfg);
  if (!node_id && (!cfg.cloud.manifest_url.empty() || !cfg.cloud.status_url.empty())) {
    return fatal(node_id.error());
  }
  // Status reports: node events are queued in the outbox as they happen (docs/cloud.md).
  if (!cfg.cloud.status_url.empty()) {
    auto opened = fleetlet::cloud::StatusOutbox::open(cfg.data_dir / "status.db");
    if (!opened) return fatal(opened.error().wrap("status reports"));
    outbox = std::move(*opened);
  }
  fleetlet::core::Agent agent(
      runtime, **store,
      {.parallelism = cfg.parallelism,
       .pull_parallelism = cfg.pull_parallelism,
       .log_dir = [&runtime](const std::string& a) { return runtime.logDir(a); },
       .on_app =
           [&](const fleetlet::reconcile::AppSnapshot& a) {
             if (agent_ptr == nullptr) return;
             targets.update(a, agent_ptr->reconciler().desired());
             // Also how a webview app that left the manifest ("removed") reaches the kiosk.
             if (webview) webview->setDesired(agent_ptr->reconciler().desired());
           },
       .app_network = [&networks](const std::string& a) { return networkStatus(**networks, a); },
       .on_first_pass = [&service_links] { service_links.start(); },
       .external_status = [&webview, &agent_ptr](const std::string& a)
           -> std::optional<fleetlet::reconcile::ExternalAppStatus> {
         if (!webview || agent_ptr == nullptr) return std::nullopt;
         webview->setDesired(agent_ptr->reconciler().desired());  // a no-op when unchanged
         auto s = webview->app(a);
         if (!s) return fleetlet::reconcile::ExternalAppStatus{.state = "pending"};
         return fleetlet::reconcile::ExternalAppStatus{
             .state = s->state, .message = s->message, .restarts = static_cast<int>(s->restarts)};
       },
       .screenshot = [&webview](const std::string& a) -> fleetlet::Result<std::string> {
         if (!webview) return std::unexpected(fleetlet::core::noDisplayError());
         return webview->screenshot(a);
       },
       .show = [&webview](const std::string& a) -> fleetlet::Status {
         if (!webview) return std::unexpected(fleetlet::core::noDisplayError());
         return webview->show(a);
       },
       .screen_status = [&webview](const std::string& a) -> fleetlet::Result<fleetlet::Json> {
         if (!webview) return std::unexpected(fleetlet::core::noDisplayError());
         return webview->kioskStatus(a);
       },
       .trust = *trust,
       .node_id = node_id.value_or(""),
       .system = system,
       .on_event =
           [&outbox](const fleetlet::core::NodeEvent& e) {
             if (outbox) fleetlet::cloud::queueEvent(*outbox, e);
           },
       .image_digest = [&runtime](const std::string& image) { return runtime.imageDigest(image); },
       .on_worked = [&metrics](const std::string& a,
                               std::chrono::nanoseconds took) { metrics.worked(a, took); }});
  agent_ptr = &agent;
  if (!cfg.display.empty()) {
    webview = std::make_unique<fleetlet::webview::WebviewRuntime>(fleetlet::webview::WebviewOptions{
        .display = cfg.display,
        .binary = cfg.webview_binary.empty() ? fleetlet::webview::defaultKioskBinary()
                                             : cfg.webview_binary,
        .work_dir = cfg.data_dir / "webview",
        // Bundles from the cloud's origin go with the cloud source's TLS settings.
        .bundles = {.root = cfg.data_dir / "bundles",
                    .cloud_origin = fleetlet::bundle::originOf(cfg.cloud.manifest_url),
                    .cloud_tls = {.client_cert = cfg.cloud.tls.cert.string(),
                                  .client_key = cfg.cloud.tls.key.string(),
                                  .ca_file = cfg.cloud.tls.ca.string(),
                                  .pinned_public_keys = cfg.cloud.tls.pinned_public_keys}},
        .kiosk_args = cfg.webview_args,
        .services = &service_links,
        .on_event = [&agent](const std::string& a, const std::string& kind,
                             const std::string& message) {
          agent.externalEvent(a, kind, message);
        }});
    webview->onChange(
        [&agent](const fleetlet::webview::WebviewAppStatus& s) { agent.externalChanged(s.name); });
    spdlog::info("runtime webview on display {}", cfg.display);
  }
  if (auto st = agent.load(); !st) spdlog::error("{}", st.error().message());
  if (webview) webview->setDesired(agent.reconciler().desired());

  const fleetlet::api::MetricsEndpoints metrics_endpoints{
      .exposition = [&metrics] { return metrics.render(metrics.sample()); },
      .top = [&metrics] { return fleetlet::monitoring::AgentMetrics::toJson(metrics.sample()); }};
  auto api = fleetlet::api::ApiServer::start(
      agent, {.socket_path = cfg.api_socket, .routes = {.metrics = metrics_endpoints}});
  if (!api) return fatal(api.error().wrap("local API on {}", cfg.api_socket.string()));
  spdlog::info("local API on {}", cfg.api_socket.string());
  std::unique_ptr<fleetlet::api::MetricsServer> metrics_server;
  if (metrics_address) {
    auto started = fleetlet::api::MetricsServer::start(metrics_endpoints, metrics_address->first,
                                                       metrics_address->second);
    if (!started) return fatal(started.error());
    metrics_server = std::move(*started);
    spdlog::info("metrics listening on {}", metrics_server->address());
  }

  auto events = fleetlet::containerd::EventSubscription::start(
      *conn, {fmt::format("namespace=={},topic~=\"^/tasks/\"", cfg.ns)},
      {.on_event =
           [&agent](const fleetlet::containerd::Event& e) {
             if (e.topic == "/tasks/oom") {
               agent.oomKilled(e.subject);
               return;
             }
             agent.containerChanged(e.subject, e.topic == "/tasks/exit"
                                                   ? std::optional<uint32_t>(e.pid)
                                                   : std::nullopt);
           },
       .on_subscribed = [&agent] { agent.resync(); }});

  std::unique_ptr<fleetlet::core::DesiredSource> source;
  if (!cfg.desired.empty()) {
    source = std::make_unique<fleetlet::core::DesiredSource>(cfg.desired, agent);
  }

  if (!cfg.cloud.manifest_url.empty()) {
    cloud = fleetlet::cloud::startManifestSource(
        cfg.cloud, *node_id,
        [&agent](std::string_view body, std::string_view from) -> fleetlet::Result<bool> {
          auto r = agent.applyFrom(body, from, fleetlet::trust::Origin::kCloud);
          if (!r) return std::unexpected(r.error());
          return !r->unchanged;
        },
        [&agent](std::string_view from, const fleetlet::Error& why) { agent.refused(from, why); });
  }
  // Alerts (docs/observability.md): readings every alerts.interval; each raise, continue and
  // fall is a node event ("alert"), so it reaches `fleetletctl events` and the status reports.
  std::jthread alerts;
  if (!alert_rules.empty()) {
    alerts = std::jthread([&, rules = std::move(alert_rules)](const std::stop_token& stop) {
      fleetlet::monitoring::AlertReadings readings;
      fleetlet::monitoring::AlertEvaluator evaluator(
          rules, std::chrono::duration_cast<std::chrono::seconds>(cfg.alerts.continue_every));
      fleetlet::http::Client events_client({.total_timeout = std::chrono::seconds(5)});
      const std::string publish_url =
          cfg.alerts.events_url.empty() ? "" : cfg.alerts.events_url + "/api/v1/events/publish";
      std::mutex mu;
      std::condition_variable_any cv;
      while (!stop.stop_requested()) {
        const auto now = std::chrono::system_clock::now();
        readings.observe(metrics.sample(), now);
        for (const auto& e : evaluator.evaluate(
                 now, [&readings](const auto& rule) { return readings.values(rule); })) {
          agent.externalEvent(
              e.subject, "alert",
              fmt::format("{} {}", fleetlet::monitoring::toString(e.phase), e.message));
          if (publish_url.empty()) continue;
          // Best effort: an event service that is down misses the alert (the node event and
          // the status report keep it).
          fleetlet::http::ClientRequest request{
              .method = "POST",
              .url = publish_url,
              .body = fleetlet::monitoring::alertPublishBody(e, node_id.value_or(""))};
          request.headers.add("Content-Type", "application/json");
          auto sent = events_client.send(request);
          if (!sent || sent->status / 100 != 2) {
            spdlog::warn("alerts: publish to {}: {}", publish_url,
                         sent ? fmt::format("HTTP {}", sent->status) : sent.error().message());
          }
        }
        std::unique_lock lock(mu);
        cv.wait_for(lock, stop, cfg.alerts.interval, [] { return false; });
      }
    });
    spdlog::info("alerts: {} rules, evaluated every {} ms", cfg.alerts.rules.size(),
                 cfg.alerts.interval.count());
  }
  std::unique_ptr<fleetlet::cloud::ReporterThread> reporter;
  if (outbox)
    reporter = fleetlet::cloud::ReporterThread::start(cfg.cloud, *node_id, *outbox, agent);

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
  auto ran = agent.run();
  run_returned.set_value();
  alerts = {};          // it reads the agent and records into it
  webview.reset();      // its worker reports to the agent
  (*conn)->shutdown();  // health probes and anything else still waiting
  (*api)->stop();
  if (metrics_server) metrics_server->stop();
  monitor.stop();
  source.reset();
  cloud.reset();
  reporter.reset();
  events.reset();
  shipper.reset();
  if (!ran) {
    // Nothing could run; say why and leave the signal thread waiting no longer.
    spdlog::critical("{}", ran.error().message());
    ::kill(::getpid(), SIGTERM);  // blocked everywhere: it reaches the sigwait

    signals.join();
    return 1;
  }
  signals.join();
  spdlog::info("fleetletd stopped");
  return 0;
}
