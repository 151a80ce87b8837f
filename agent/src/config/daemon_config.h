#pragma once
// fleetletd's settings: built-in defaults, then a YAML config file (--config), then flags.

#include <filesystem>
#include <optional>
#include <set>
#include <string>

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
  size_t parallelism = 4;
};

// Reads a YAML config file over `base`. Keys: containerd, namespace, dataDir, apiSocket,
// desired, logLevel, plainHttpRegistries (list), parallelism. Unknown keys and wrong types are
// kInvalidArgument naming the key and the file; a missing file is kNotFound.
Result<DaemonConfig> loadConfigFile(const std::filesystem::path& path, DaemonConfig base);

}  // namespace fleetlet::config
