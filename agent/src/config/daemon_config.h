#pragma once
// fleetletd's settings: built-in defaults, then a YAML config file (--config), then flags.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::config {

// cloud.tls: mutual TLS towards the cloud. Empty fields use curl's defaults (system CAs, no
// client certificate).
struct CloudTls {
  std::filesystem::path cert;  // client certificate (PEM); re-read when the file changes
  std::filesystem::path key;   // its private key (PEM)
  std::filesystem::path ca;    // CA bundle the server's certificate must chain to
  // "sha256//<base64>" pins of the server's public key; any one must match.
  std::vector<std::string> pinned_public_keys;
};

// alerts: threshold rules on node and app metrics (docs/observability.md, "Alerts").
struct AlertsConfig {
  std::chrono::milliseconds interval{10000};        // readings taken and rules evaluated
  std::chrono::milliseconds continue_every{60000};  // a raised alert is repeated this often
  std::vector<std::string> rules;                   // "app cpu > 90% for 60s", ...
  // The event service's base URL (fleetlet-streams' host listener, http://127.0.0.1:4454):
  // each alert event is published there too (semantics fleetlet.alert); empty: not published.
  std::string events_url;
};

// cloud: where the node's desired state comes from and where its status goes (docs/cloud.md).
struct CloudConfig {
  std::string manifest_url;  // may contain {node}; empty: no cloud
  std::string status_url;    // may contain {node} and {seq}; empty: no status reports
  std::string status_method = "PUT";
  // At most one status report per this long, unless an apply finished.
  std::chrono::milliseconds status_interval{std::chrono::seconds(10)};
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  std::chrono::seconds wait{55};  // sent as "Prefer: wait=N"; 0: not sent
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // beyond `wait`
  int64_t max_manifest_bytes = int64_t{1024} * 1024;
  // Signed log requests (logrequest/request.h); may contain {node}; empty: none are fetched.
  std::string log_request_url;
  // The largest gzip a log request uploads (a request may ask for less).
  int64_t log_upload_max_bytes = int64_t{16} * 1024 * 1024;
  // Log uploads are sent no faster than this many bytes/s; 0: no cap.
  int64_t log_upload_rate = 0;
  CloudTls tls;
};

// runtime.containerShim: the containerd runtime `runtime: container` apps are created with
// (docs/runtimes.md). kFleetlet (the default): io.containerd.fleetlet.v1
// (containerd-shim-fleetlet-v1 in container mode, through runc); kRunc: io.containerd.runc.v2
// (containerd's Go shim).
enum class ContainerShim : std::uint8_t { kRunc, kFleetlet };

struct DaemonConfig {
  std::string containerd = "/run/containerd/containerd.sock";
  std::string ns = "fleetlet";
  std::filesystem::path data_dir = "/var/lib/fleetlet";
  std::filesystem::path api_socket = "/run/fleetlet/fleetletd.sock";
  std::filesystem::path desired;  // empty: only `fleetletctl apply`
  std::string log_level = "info";
  ContainerShim container_shim = ContainerShim::kFleetlet;
  std::filesystem::path logger;  // the fleetlet-logger binary; empty: the one next to fleetletd
  std::set<std::string> plain_http_registries;
  std::set<std::string> https_registries;  // loopback registries reached over HTTPS
  size_t parallelism = 4;                  // reconcile workers
  size_t pull_parallelism = 2;             // images pulled at once
  // A pull fails after this long, or when slower than pull_min_speed (bytes/s) on average over
  // pull_stall_timeout.
  std::chrono::milliseconds pull_timeout{std::chrono::minutes(30)};
  std::chrono::milliseconds pull_stall_timeout{std::chrono::seconds(30)};
  int64_t pull_min_speed = 1024;
  // Logs of a removed app are deleted once unwritten for this long.
  std::chrono::milliseconds removed_log_retention{std::chrono::hours(1)};
  // App networks (docs/networking.md): the conflist directory (none there: the built-in
  // `fleetlet` network), where plugin binaries are looked up, where apps' namespaces are
  // pinned, and optionally the namespace the plugins run in (the bridge, port maps and
  // firewall live there; default: fleetletd's own).
  std::filesystem::path cni_conf_dir = "/etc/fleetlet/cni";
  std::vector<std::filesystem::path> cni_bin_dirs = {"/usr/lib/cni", "/usr/libexec/fleetlet/cni"};
  std::filesystem::path netns_dir = "/run/netns";
  std::filesystem::path cni_netns;
  // The node services' handoff sockets (their --handoff-socket): listeners made in each app's
  // namespace are handed to them (docs/services.md). Empty: not linked.
  std::filesystem::path streams_handoff;
  std::filesystem::path blobs_handoff;
  // Ship every app's stdout/stderr to fleetlet-streams' console service (docs/logs.md
  // "Shipping"); unset: on when streams_handoff is set.
  std::optional<bool> ship_logs;
  // System apps (docs/services.md): the system manifest applied beside the desired state
  // ("none": no system apps; the default path missing: none either), the OCI archives of their
  // images imported at start, and the directory of the services' handoff sockets, created by
  // fleetletd and mounted into every system app at /run/fleetlet/handoff. With system apps,
  // streams_handoff and blobs_handoff default to <handoff_dir>/streams.sock and blobs.sock.
  std::filesystem::path system_manifest = "/usr/share/fleetlet/system/node-services.yaml";
  bool system_manifest_required = false;  // named by a flag or key: it must exist
  std::filesystem::path system_images = "/usr/share/fleetlet/images";
  std::filesystem::path handoff_dir = "/run/fleetlet/handoff";
  // runtime: webview (docs/webview.md): the X display the kiosk shows on; empty: no display,
  // webview apps fail as unsupported. The kiosk binary: empty for the one next to fleetletd.
  std::string display;
  std::filesystem::path webview_binary;
  std::vector<std::string> webview_args;  // extra fleetlet-webview flags
  // metricsListen: GET /metrics alone on a TCP listener, "PORT" (127.0.0.1), "ADDR:PORT" or
  // "[V6ADDR]:PORT"; empty: only on the API socket (docs/observability.md).
  std::string metrics_listen;
  // node.id; empty: the first line of node_id_file.
  std::string node_id;
  std::filesystem::path node_id_file = "/etc/machine-id";
  // trust: keys that may sign desired state (PEM files), how many must sign, and whether
  // unsigned manifests are accepted from local sources (allowUnsigned: local). With no keys,
  // unsigned local manifests are accepted (signing not in use).
  std::vector<std::filesystem::path> trust_keys;
  int trust_threshold = 1;
  bool allow_unsigned_local = false;
  CloudConfig cloud;
  AlertsConfig alerts;
};

// Parses a duration flag or key: "30s", "5m", "1h", "250ms".
Result<std::chrono::milliseconds> parseDuration(std::string_view text);

// "runc" or "fleetlet"; kInvalidArgument naming both otherwise.
Result<ContainerShim> parseContainerShim(std::string_view name);
// The containerd runtime name (io.containerd.runc.v2 / io.containerd.fleetlet.v1).
std::string_view runtimeName(ContainerShim shim);

// kInvalidArgument unless `level` is one of trace, debug, info, warn, error, off.
Status checkLogLevel(std::string_view level);

// Reads a YAML config file over `base`. Keys: containerd, namespace, dataDir, apiSocket,
// desired, logLevel, logger, plainHttpRegistries (list),
// httpsRegistries (list), parallelism, pullParallelism,
// pullTimeout, pullStallTimeout, pullMinSpeed, removedLogRetention, shipLogs, cniConfDir,
// cniBinDirs (list), netnsDir, cniNetns, streamsHandoff, blobsHandoff, systemManifest,
// systemImages, handoffDir, display, webview, webviewArgs (list), metricsListen, node.{id,
// idFile}, trust.{keys, threshold, allowUnsigned}, alerts.{interval, continueEvery, rules (list),
// eventsUrl}, cloud.{manifestUrl, statusUrl, statusMethod,
// statusInterval, interval, wait, timeout, maxManifestBytes, logRequestUrl, logUploadMaxBytes,
// logUploadRate, tls.{cert, key, ca,
// pinnedPublicKeys}} (docs/configuration.md). Relative file names in trust and cloud.tls are
// relative to the config file's folder. Unknown keys and wrong types are kInvalidArgument
// naming the file and the key; a missing file is kNotFound.
Result<DaemonConfig> loadConfigFile(const std::filesystem::path& path, DaemonConfig base);

// This node's id: node.id, else the first line of node_id_file. kNotFound/kInvalidArgument
// naming the file when neither gives one.
Result<std::string> resolveNodeId(const DaemonConfig& config);

}  // namespace fleetlet::config
