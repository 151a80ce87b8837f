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
#include "config/daemon_flags.h"
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
#include "logrequest/runner.h"
#include "logs/cri.h"
#include "logs/node_log.h"
#include "logs/task_io.h"
#include "logship/console_sink.h"
#include "logship/cursor_store.h"
#include "logship/ingest_listener.h"
#include "logship/shipper.h"
#include "monitoring/agent_metrics.h"
#include "monitoring/alert_publisher.h"
#include "monitoring/alerts.h"
#include "network/app_networks.h"
#include "reconcile/containerd_runtime.h"
#include "services/service_links.h"
#include "state/store.h"
#include "system_apps/system_apps.h"
#include "system_apps/system_images.h"
#include "version/version.h"
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

// --check-config: what the start would refuse of the settings themselves, short of reaching
// containerd: the trust keys must load, a cloud needs a node id, named files must exist, alert
// rules and metricsListen must parse.
fleetlet::Result<DaemonConfig> checkSettings(DaemonConfig cfg) {
  auto trust = fleetlet::trust::Policy::load({.key_files = cfg.trust_keys,
                                              .threshold = cfg.trust_threshold,
                                              .allow_unsigned_local = cfg.allow_unsigned_local});
  if (!trust) return std::unexpected(trust.error().wrap("trust"));
  if (!cfg.cloud.manifest_url.empty() || !cfg.cloud.status_url.empty() ||
      !cfg.cloud.log_request_url.empty()) {
    if (auto id = fleetlet::config::resolveNodeId(cfg); !id) return std::unexpected(id.error());
  }
  std::error_code ec;
  if (cfg.system_manifest_required && cfg.system_manifest != "none" &&
      !std::filesystem::exists(cfg.system_manifest, ec)) {
    return std::unexpected(fleetlet::Error(
        fleetlet::ErrorCode::kNotFound,
        fmt::format("systemManifest: {} does not exist", cfg.system_manifest.string())));
  }
  if (!cfg.logger.empty() && !std::filesystem::exists(cfg.logger, ec)) {
    return std::unexpected(
        fleetlet::Error(fleetlet::ErrorCode::kNotFound,
                        fmt::format("logger: {} does not exist", cfg.logger.string())));
  }
  for (const auto& text : cfg.alerts.rules) {
    if (auto rule = fleetlet::monitoring::parseAlertRule(text); !rule) {
      return std::unexpected(rule.error().wrap("alerts"));
    }
  }
  if (!cfg.metrics_listen.empty()) {
    if (auto a = fleetlet::api::parseListenAddress(cfg.metrics_listen); !a) {
      return std::unexpected(a.error().wrap("metricsListen"));
    }
  }
  return cfg;
}

// Alert events to the event service's publish route (alerts.eventsUrl).
class HttpEventPoster : public fleetlet::monitoring::EventPoster {
 public:
  explicit HttpEventPoster(std::string url)
      : url_(std::move(url)), client_({.total_timeout = std::chrono::seconds(5)}) {}
  fleetlet::Result<long> post(const std::string& body) override {
    fleetlet::http::ClientRequest request{.method = "POST", .url = url_, .body = body};
    request.headers.add("Content-Type", "application/json");
    auto sent = client_.send(request);
    if (!sent) return std::unexpected(sent.error());
    return sent->status;
  }

 private:
  std::string url_;
  fleetlet::http::Client client_;
};

// The alerts in force, as the status report's "alerts" member.
fleetlet::Json alertsJson(const std::vector<fleetlet::monitoring::AlertEvaluator::Active>& active) {
  fleetlet::Json out = fleetlet::Json::array();
  for (const auto& a : active) {
    out.push_back({{"rule", a.rule},
                   {"app", a.subject},
                   {"value", a.value},
                   {"since", fleetlet::logs::formatRfc3339Nano(a.since)},
                   {"message", a.message}});
  }
  return out;
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
      "  fleetletd --config /etc/fleetlet/config.yaml --check-config\n"};
  app.set_version_flag("--version", fleetlet::versionLine("fleetletd"));
  fleetlet::config::DaemonFlags flags;
  fleetlet::config::addDaemonFlags(app, flags);
  CLI11_PARSE(app, argc, argv);

  auto resolved = fleetlet::config::resolveDaemonConfig(flags);
  if (resolved && flags.check_config) resolved = checkSettings(std::move(*resolved));
  if (!resolved) {
    fmt::print(stderr, "fleetletd: {}\n", resolved.error().message());
    return 2;
  }
  if (flags.check_config) {
    fmt::print("fleetletd: settings are valid\n");
    return 0;
  }
  DaemonConfig cfg = std::move(*resolved);
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
      fmt::print(stderr, "fleetletd: metricsListen: {}\n", parsed.error().message());
      return 2;
    }
    metrics_address = *parsed;
  }
  if (auto st = fleetlet::setupLogging("fleetletd", cfg.log_level); !st) {
    fmt::print(stderr, "fleetletd: {}\n", st.error().message());
    return 2;
  }
  // fleetletd's own log also on disk, read like an app's (fleetletctl logs --node, log
  // requests). Before any thread starts: the logger's sinks are not changed after.
  const std::filesystem::path node_log_dir = cfg.data_dir / "node-logs";
  if (auto sink = fleetlet::logs::openNodeLogSink(node_log_dir); sink) {
    spdlog::default_logger()->sinks().push_back(*sink);
  } else {
    spdlog::warn("node log: {}", sink.error().message());
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
  const std::filesystem::path logger_binary = cfg.logger.empty() ? defaultLogger() : cfg.logger;
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
      (cfg.system_manifest_required || std::filesystem::exists(cfg.system_manifest, ec))) {
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
              .container_runtime = std::string(fleetlet::config::runtimeName(cfg.container_shim)),
              .data_dir = cfg.data_dir,
              .plain_http_registries = cfg.plain_http_registries,
              .https_registries = cfg.https_registries,
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
              .native_uids = store->get(),
              .on_pull = [&metrics](const fleetlet::Status& outcome,
                                    int64_t bytes) { metrics.pulled(outcome, bytes); }});
  if (auto st = runtime.startup(); !st) return fatal(st.error());

  // Health checks: targets follow each reconcile pass; a failing app is restarted.
  // Exec probes' output FIFOs go here (the prober needs the directory to exist).
  if (std::error_code health_ec;
      !std::filesystem::create_directories(cfg.data_dir / "health", health_ec) && health_ec) {
    return fatal(fleetlet::Error(
        fleetlet::ErrorCode::kInternal,
        fmt::format("create {}: {}", (cfg.data_dir / "health").string(), health_ec.message())));
  }
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
  // The kiosk runs as a native system app (unless webviewChild): it joins the system apps
  // before the agent sees them; its control socket's directory exists before it starts.
  std::optional<fleetlet::webview::WebviewOptions> webview_options;
  if (!cfg.display.empty()) {
    webview_options = fleetlet::webview::WebviewOptions{
        .launch = cfg.webview_child ? fleetlet::webview::KioskLaunch::kChild
                                    : fleetlet::webview::KioskLaunch::kSystemApp,
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
        .services = &service_links};
    if (!cfg.webview_child) {
      auto kiosk = fleetlet::webview::kioskSystemApp(*webview_options);
      if (!kiosk) return fatal(kiosk.error());
      std::filesystem::create_directories(webview_options->work_dir, ec);
      auto with_kiosk = system ? *system : fleetlet::manifest::NodeState{};
      with_kiosk.apps[kiosk->name] = std::move(*kiosk);
      with_kiosk.start_order.push_back(fleetlet::webview::kKioskAppName);
      system = std::make_shared<const fleetlet::manifest::NodeState>(std::move(with_kiosk));
    }
  }
  auto trust = fleetlet::trust::Policy::load({.key_files = cfg.trust_keys,
                                              .threshold = cfg.trust_threshold,
                                              .allow_unsigned_local = cfg.allow_unsigned_local});
  if (!trust) return fatal(trust.error());
  auto node_id = fleetlet::config::resolveNodeId(cfg);
  if (!node_id && (!cfg.cloud.manifest_url.empty() || !cfg.cloud.status_url.empty() ||
                   !cfg.cloud.log_request_url.empty())) {
    return fatal(node_id.error());
  }
  // Status reports: node events are queued in the outbox as they happen (docs/cloud.md).
  // Log requests keep their state in the same database (logrequest/store.h).
  if (!cfg.cloud.status_url.empty() || !cfg.cloud.log_request_url.empty()) {
    auto opened = fleetlet::cloud::StatusOutbox::open(cfg.data_dir / "status.db");
    if (!opened) return fatal(opened.error().wrap("status reports"));
    outbox = std::move(*opened);
  }
  fleetlet::core::Agent agent(
      runtime, **store,
      {.parallelism = cfg.parallelism,
       .pull_parallelism = cfg.pull_parallelism,
       // The kiosk's log is its system app's, or as a supervised child the one fleetletd
       // writes its output to: `fleetletctl logs fleetlet-webview` reads it in both modes.
       .log_dir =
           [&runtime, child_kiosk_log = webview_options && cfg.webview_child
                                            ? fleetlet::webview::kioskChildLogDir(*webview_options)
                                            : std::filesystem::path()](const std::string& a) {
             if (!child_kiosk_log.empty() && a == fleetlet::webview::kKioskAppName) {
               return child_kiosk_log;
             }
             return runtime.logDir(a);
           },
       // The kiosk logs its apps' console lines.
       .webview_log_app =
           webview_options ? std::string(fleetlet::webview::kKioskAppName) : std::string(),
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
  if (webview_options) {
    webview_options->on_event = [&agent](const std::string& a, const std::string& kind,
                                         const std::string& message) {
      agent.externalEvent(a, kind, message);
    };
    webview = std::make_unique<fleetlet::webview::WebviewRuntime>(std::move(*webview_options));
    webview->onChange(
        [&agent](const fleetlet::webview::WebviewAppStatus& s) { agent.externalChanged(s.name); });
    spdlog::info("runtime webview on display {}: the kiosk {}", cfg.display,
                 cfg.webview_child ? "is fleetletd's child"
                                   : fmt::format("is the native system app {}",
                                                 fleetlet::webview::kKioskAppName));
  }
  if (auto st = agent.load(); !st) spdlog::error("{}", st.error().message());
  if (webview) webview->setDesired(agent.reconciler().desired());

  const fleetlet::api::MetricsEndpoints metrics_endpoints{
      .exposition = [&metrics] { return metrics.render(metrics.sample()); },
      .top = [&metrics] { return fleetlet::monitoring::AgentMetrics::toJson(metrics.sample()); }};
  auto api = fleetlet::api::ApiServer::start(
      agent, {.socket_path = cfg.api_socket,
              .routes = {.node_log_dir = node_log_dir, .metrics = metrics_endpoints}});
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
  // Logs on request (docs/observability.md): signed requests fetched beside the manifest, run
  // once each (their state in status.db), results in the status report and as node events.
  std::unique_ptr<fleetlet::logrequest::LogRequestStore> log_requests;
  std::unique_ptr<fleetlet::logrequest::RunnerThread> log_runner;
  std::unique_ptr<fleetlet::cloud::SourceThread> log_source;
  if (!cfg.cloud.log_request_url.empty()) {
    auto log_event = [&agent](const std::string& a, const std::string& message) {
      agent.externalEvent(a, "logRequest", message);
    };
    log_requests = std::make_unique<fleetlet::logrequest::LogRequestStore>(*outbox);
    log_runner = std::make_unique<fleetlet::logrequest::RunnerThread>(
        cfg.cloud,
        fleetlet::logrequest::RunnerOptions{
            .node_id = *node_id,
            .policy = &*trust,
            // A webview app's lines are in the kiosk's log (NodeService::logSource).
            .app_log =
                [&agent, &logs_root](const std::string& a) {
                  using AppLog = fleetlet::logrequest::RunnerOptions::AppLog;
                  auto app_log = agent.logSource(a);
                  if (!app_log) return AppLog{.dir = logs_root / a, .only = {}};
                  return AppLog{.dir = app_log->dir, .only = app_log->only};
                },
            .node_log_dir = node_log_dir,
            .max_bytes = cfg.cloud.log_upload_max_bytes,
            .on_event = log_event},
        *log_requests);
    log_source = fleetlet::cloud::startDocumentSource(
        cfg.cloud, cfg.cloud.log_request_url, std::chrono::seconds(0), *node_id,
        [&log_runner](std::string_view body, std::string_view) { return log_runner->admit(body); },
        [log_event](std::string_view from, const fleetlet::Error& why) {
          log_event("", fmt::format("refused: {}: {}", from, why.message()));
        });
  }
  // Alerts (docs/observability.md): readings every alerts.interval; each raise, continue and
  // fall is a node event ("alert"), so it reaches `fleetletctl events` and the status reports.
  // The alerts in force, for the status report (written by the alerts thread).
  std::mutex active_alerts_mu;
  fleetlet::Json active_alerts = fleetlet::Json::array();
  std::jthread alerts;
  if (!alert_rules.empty()) {
    alerts = std::jthread([&, rules = std::move(alert_rules)](const std::stop_token& stop) {
      fleetlet::monitoring::AlertReadings readings;
      fleetlet::monitoring::AlertEvaluator evaluator(
          rules, std::chrono::duration_cast<std::chrono::seconds>(cfg.alerts.continue_every));
      // Events for the event service wait in a bounded queue while it is away
      // (monitoring/alert_publisher.h); retried at each evaluation once the backoff passed.
      std::optional<HttpEventPoster> poster;
      std::optional<fleetlet::monitoring::AlertPublisher> publisher;
      if (!cfg.alerts.events_url.empty()) {
        poster.emplace(cfg.alerts.events_url + "/api/v1/events/publish");
        publisher.emplace(*poster);
      }
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
          if (publisher) {
            publisher->enqueue(fleetlet::monitoring::alertPublishBody(e, node_id.value_or("")));
          }
        }
        {
          std::lock_guard lock(active_alerts_mu);
          active_alerts = alertsJson(evaluator.activeAlerts());
        }
        if (publisher) publisher->flush(std::chrono::steady_clock::now());
        std::unique_lock lock(mu);
        cv.wait_for(lock, stop, cfg.alerts.interval, [] { return false; });
      }
    });
    spdlog::info("alerts: {} rules, evaluated every {} ms", cfg.alerts.rules.size(),
                 cfg.alerts.interval.count());
  }
  std::unique_ptr<fleetlet::cloud::ReporterThread> reporter;
  if (outbox && !cfg.cloud.status_url.empty())
    reporter = fleetlet::cloud::ReporterThread::start(cfg.cloud, *node_id, *outbox, agent,
                                                      [&active_alerts_mu, &active_alerts] {
                                                        std::lock_guard lock(active_alerts_mu);
                                                        return active_alerts;
                                                      });

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
  log_source.reset();  // it admits into the runner
  log_runner.reset();
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
