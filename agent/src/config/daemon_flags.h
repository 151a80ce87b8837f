#pragma once
// fleetletd's command line: a flag for each setting a person changes by hand, each overriding
// the config file's key (docs/configuration.md lists both). CLI11 parses; this module turns
// what was given into a DaemonConfig.

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/daemon_config.h"

namespace fleetlet::config {

inline constexpr char kDefaultConfigFile[] = "/etc/fleetlet/config.yaml";

// What the flags held after parsing; empty (or nullopt) means "not given".
struct DaemonFlags {
  std::string config_file;  // empty: kDefaultConfigFile when it exists
  bool check_config = false;
  std::string containerd, ns, data_dir, api_socket, desired, log_level, logger;
  std::vector<std::string> plain_http;
  std::vector<std::string> https;
  std::optional<size_t> parallelism, pull_parallelism;
  std::optional<int64_t> pull_min_speed;
  std::string pull_timeout, pull_stall_timeout, removed_log_retention;
  std::string cni_conf_dir, netns_dir, cni_netns, streams_handoff, blobs_handoff;
  std::string system_manifest, system_images, handoff_dir;
  std::vector<std::string> cni_bin_dirs;
  std::string display, webview_binary;
  std::optional<bool> ship_logs;
  std::string metrics_listen;
  std::string container_shim;
};

// Adds fleetletd's flags (--config, --check-config and one per setting) to `app`, writing into
// `flags`, which must outlive the parse. The help shows each default.
void addDaemonFlags(CLI::App& app, DaemonFlags& flags);

// The settings: built-in defaults, then the config file (--config; without it
// `default_file`, skipped when it does not exist), then the flags given. Errors are
// kInvalidArgument naming the flag ("--pull-timeout: ...") or the file and key
// ("/etc/fleetlet/config.yaml: unknown key \"pullTimout\""); a --config file that does not
// exist is kNotFound.
Result<DaemonConfig> resolveDaemonConfig(
    const DaemonFlags& flags, const std::filesystem::path& default_file = kDefaultConfigFile);

}  // namespace fleetlet::config
