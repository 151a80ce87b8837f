#pragma once
// fleetletd's settings: built-in defaults, then a YAML config file (--config), then flags.

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "error/error.h"

namespace fleetlet::config {

struct DaemonConfig {
  std::string containerd = "/run/containerd/containerd.sock";
  std::string ns = "fleetlet";
  std::filesystem::path data_dir = "/var/lib/fleetlet";
  std::filesystem::path api_socket = "/run/fleetlet/fleetletd.sock";
  std::filesystem::path desired;  // empty: only `fleetletctl apply`
  std::string log_level = "info";
  std::set<std::string> plain_http_registries;
  size_t parallelism = 4;       // reconcile workers
  size_t pull_parallelism = 2;  // images pulled at once
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
  // runtime: webview (docs/webview.md): the X display the kiosk shows on; empty: no display,
  // webview apps fail as unsupported. The kiosk binary: empty for the one next to fleetletd.
  std::string display;
  std::filesystem::path webview_binary;
  std::vector<std::string> webview_args;  // extra fleetlet-webview flags
};

// Parses a duration flag or key: "30s", "5m", "1h", "250ms".
Result<std::chrono::milliseconds> parseDuration(std::string_view text);

// Reads a YAML config file over `base`. Keys: containerd, namespace, dataDir, apiSocket,
// desired, logLevel, plainHttpRegistries (list), parallelism, pullParallelism, pullTimeout,
// pullStallTimeout, pullMinSpeed, removedLogRetention, cniConfDir, cniBinDirs (list), netnsDir,
// cniNetns, streamsHandoff, blobsHandoff, display, webview, webviewArgs (list). Unknown keys and
// wrong types are kInvalidArgument naming the key and the file; a missing file is kNotFound.
Result<DaemonConfig> loadConfigFile(const std::filesystem::path& path, DaemonConfig base);

}  // namespace fleetlet::config
