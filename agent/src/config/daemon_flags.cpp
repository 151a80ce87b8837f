#include "config/daemon_flags.h"

#include <tuple>

namespace fleetlet::config {
namespace {

// "[default]" appended to a flag's description.
std::string withDefault(std::string_view what, std::string_view value) {
  return fmt::format("{} [{}]", what, value);
}

}  // namespace

void addDaemonFlags(CLI::App& app, DaemonFlags& f) {
  const DaemonConfig d;
  app.add_option("--config", f.config_file,
                 withDefault("YAML config file with every setting (docs/configuration.md); flags "
                             "override it",
                             std::string(kDefaultConfigFile) + ", when it exists"));
  app.add_flag("--check-config", f.check_config,
               "read the config file and flags, report the first mistake naming its key or flag, "
               "and exit: 0 when the settings are valid, 2 when not");
  app.add_option("--containerd", f.containerd,
                 withDefault("containerd's gRPC socket", d.containerd));
  app.add_option("--namespace", f.ns, withDefault("containerd namespace", d.ns));
  app.add_option("--data-dir", f.data_dir,
                 withDefault("state, volumes and logs", d.data_dir.string()));
  app.add_option("--api-socket", f.api_socket,
                 withDefault("local API socket for fleetletctl", d.api_socket.string()));
  app.add_option("--desired", f.desired, "a manifest file or a directory of them, watched");
  app.add_option("--log-level", f.log_level,
                 withDefault("trace|debug|info|warn|error|off", d.log_level));
  app.add_option("--plain-http-registry", f.plain_http,
                 "registry HOST:PORT reached over plain HTTP (repeatable; loopback registries "
                 "are unless named by --https-registry)");
  app.add_option("--https-registry", f.https,
                 "loopback registry HOST:PORT reached over HTTPS instead of plain HTTP "
                 "(repeatable)");
  app.add_option("--parallelism", f.parallelism,
                 withDefault("reconcile workers: apps worked on at once (pulls do not hold one)",
                             std::to_string(d.parallelism)))
      ->check(CLI::PositiveNumber);
  app.add_option("--pull-parallelism", f.pull_parallelism,
                 withDefault("images pulled at once", std::to_string(d.pull_parallelism)))
      ->check(CLI::PositiveNumber);
  app.add_option("--pull-timeout", f.pull_timeout, "a pull fails after this long [30m]");
  app.add_option("--pull-stall-timeout", f.pull_stall_timeout,
                 "a pull slower than --pull-min-speed on average over this long fails [30s]");
  app.add_option("--pull-min-speed", f.pull_min_speed,
                 withDefault("bytes/s a pull must keep up", std::to_string(d.pull_min_speed)))
      ->check(CLI::PositiveNumber);
  app.add_option("--removed-log-retention", f.removed_log_retention,
                 "keep the logs of a removed app until unwritten for this long [1h]");
  app.add_option("--logger", f.logger,
                 "the fleetlet-logger binary that writes apps' stdout/stderr [next to fleetletd]");
  app.add_option("--cni-conf-dir", f.cni_conf_dir,
                 withDefault("app networks: the first *.conflist here, else the built-in "
                             "`fleetlet` network (bridge fleetlet0, 10.90.0.0/16)",
                             d.cni_conf_dir.string()));
  app.add_option("--cni-bin-dir", f.cni_bin_dirs,
                 "where CNI plugin binaries are looked up (repeatable) [/usr/lib/cni, "
                 "/usr/libexec/fleetlet/cni]");
  app.add_option("--netns-dir", f.netns_dir,
                 withDefault("where each app's network namespace is pinned as fleetlet-<app>",
                             d.netns_dir.string()));
  app.add_option("--cni-netns", f.cni_netns,
                 "run the CNI plugins (bridge, port maps, firewall) in this network namespace "
                 "instead of fleetletd's own [fleetletd's]");
  app.add_option("--streams-handoff", f.streams_handoff,
                 "fleetlet-streams' --handoff-socket: apps listing events or logs get them on "
                 "their localhost:4454/4457 [<handoff-dir>/streams.sock with system apps]");
  app.add_option("--blobs-handoff", f.blobs_handoff,
                 "fleetlet-blobs' --handoff-socket: apps listing blobs get it on their "
                 "localhost:4455 [<handoff-dir>/blobs.sock with system apps]");
  app.add_option("--ship-logs", f.ship_logs,
                 "true|false: ship every app's stdout/stderr to fleetlet-streams' console "
                 "service, readable with GET /api/v1/logs?app=NAME (docs/logs.md) [true with "
                 "--streams-handoff]");
  app.add_option("--system-manifest", f.system_manifest,
                 withDefault("the system apps (the node services), applied beside the desired "
                             "state; \"none\": no system apps",
                             d.system_manifest.string() + ", when it exists"));
  app.add_option("--system-images", f.system_images,
                 withDefault("OCI archives (*.tar) of the system apps' images, imported at start",
                             d.system_images.string()));
  app.add_option("--handoff-dir", f.handoff_dir,
                 withDefault("directory of the services' handoff sockets, mounted into the "
                             "system apps",
                             d.handoff_dir.string()));
  app.add_option("--display", f.display,
                 "X display for runtime: webview apps (e.g. :0); none: webview unsupported");
  app.add_option("--webview", f.webview_binary, "the fleetlet-webview binary [next to fleetletd]");
  app.add_option(
      "--container-shim", f.container_shim,
      "runc|fleetlet: the containerd shim of runtime: container apps, "
      "io.containerd.runc.v2 or io.containerd.fleetlet.v1 (docs/runtimes.md) [fleetlet]");
  app.add_option("--metrics-listen", f.metrics_listen,
                 "also serve GET /metrics on TCP: PORT (on 127.0.0.1), ADDR:PORT or "
                 "[V6ADDR]:PORT (docs/observability.md) [off: the API socket only]");
}

Result<DaemonConfig> resolveDaemonConfig(const DaemonFlags& f,
                                         const std::filesystem::path& default_file) {
  DaemonConfig cfg;
  std::error_code ec;
  const bool use_default = f.config_file.empty();
  const std::filesystem::path file =
      use_default ? default_file : std::filesystem::path(f.config_file);
  if (!use_default || std::filesystem::exists(file, ec)) {
    FLEETLET_ASSIGN_OR_RETURN(cfg, loadConfigFile(file, std::move(cfg)));
  }
  auto text = [](const std::string& flag, auto& target) {
    if (!flag.empty()) target = flag;
  };
  text(f.containerd, cfg.containerd);
  text(f.ns, cfg.ns);
  text(f.data_dir, cfg.data_dir);
  text(f.api_socket, cfg.api_socket);
  text(f.desired, cfg.desired);
  text(f.logger, cfg.logger);
  text(f.display, cfg.display);
  text(f.webview_binary, cfg.webview_binary);
  text(f.metrics_listen, cfg.metrics_listen);
  text(f.cni_conf_dir, cfg.cni_conf_dir);
  text(f.netns_dir, cfg.netns_dir);
  text(f.cni_netns, cfg.cni_netns);
  text(f.streams_handoff, cfg.streams_handoff);
  text(f.blobs_handoff, cfg.blobs_handoff);
  text(f.system_images, cfg.system_images);
  text(f.handoff_dir, cfg.handoff_dir);
  if (!f.system_manifest.empty()) {
    cfg.system_manifest = f.system_manifest;
    cfg.system_manifest_required = true;
  }
  if (!f.log_level.empty()) {
    if (auto st = checkLogLevel(f.log_level); !st) {
      return std::unexpected(st.error().wrap("--log-level"));
    }
    cfg.log_level = f.log_level;
  }
  if (!f.container_shim.empty()) {
    auto shim = parseContainerShim(f.container_shim);
    if (!shim) return std::unexpected(shim.error().wrap("--container-shim"));
    cfg.container_shim = *shim;
  }
  if (f.parallelism) cfg.parallelism = *f.parallelism;
  if (f.pull_parallelism) cfg.pull_parallelism = *f.pull_parallelism;
  if (f.pull_min_speed) cfg.pull_min_speed = *f.pull_min_speed;
  if (f.ship_logs) cfg.ship_logs = f.ship_logs;
  for (auto [flag, value, target] :
       {std::tuple{"--pull-timeout", &f.pull_timeout, &cfg.pull_timeout},
        std::tuple{"--pull-stall-timeout", &f.pull_stall_timeout, &cfg.pull_stall_timeout},
        std::tuple{"--removed-log-retention", &f.removed_log_retention,
                   &cfg.removed_log_retention}}) {
    if (value->empty()) continue;
    auto d = parseDuration(*value);
    if (!d) return std::unexpected(d.error().wrap("{}", flag));
    *target = *d;
  }
  cfg.plain_http_registries.insert(f.plain_http.begin(), f.plain_http.end());
  cfg.https_registries.insert(f.https.begin(), f.https.end());
  for (const auto& name : cfg.https_registries) {
    if (cfg.plain_http_registries.contains(name)) {
      return std::unexpected(Error(ErrorCode::kInvalidArgument,
                                   fmt::format("registry {} is named both plain HTTP "
                                               "(plainHttpRegistries) and HTTPS (httpsRegistries)",
                                               name)));
    }
  }
  if (!f.cni_bin_dirs.empty())
    cfg.cni_bin_dirs.assign(f.cni_bin_dirs.begin(), f.cni_bin_dirs.end());
  return cfg;
}

}  // namespace fleetlet::config
