#include "config/daemon_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>

#include "manifest/parse.h"

namespace fleetlet::config {
namespace {

template <typename T>
Result<T> scalar(const YAML::Node& node, const std::string& key, const std::string& file) {
  if (!node.IsScalar()) {
    return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a single value", file, key);
  }
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    return fail(ErrorCode::kInvalidArgument, "{}: {}: \"{}\" has the wrong type", file, key,
                node.Scalar());
  }
}

Result<std::chrono::milliseconds> duration(const YAML::Node& node, const std::string& key,
                                           const std::string& file) {
  FLEETLET_ASSIGN_OR_RETURN(std::string text, scalar<std::string>(node, key, file));
  auto d = parseDuration(text);
  if (!d) return std::unexpected(d.error().wrap("{}: {}", file, key));
  return d;
}

template <typename T>
Result<T> positive(const YAML::Node& node, const std::string& key, const std::string& file) {
  FLEETLET_ASSIGN_OR_RETURN(T value, scalar<T>(node, key, file));
  if (value <= 0) {
    return fail(ErrorCode::kInvalidArgument, "{}: {}: must be at least 1", file, key);
  }
  return value;
}

Result<std::vector<std::string>> stringList(const YAML::Node& node, const std::string& key,
                                            const std::string& file) {
  if (!node.IsSequence()) {
    return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
  }
  std::vector<std::string> out;
  for (const auto& item : node) {
    FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
    out.push_back(std::move(s));
  }
  return out;
}

// A file named in the config: relative to the config file's folder.
std::filesystem::path configPath(const std::string& value, const std::filesystem::path& file) {
  std::filesystem::path p(value);
  if (p.is_relative()) return file.parent_path() / p;
  return p;
}

// Each entry of a nested mapping: `handle(key, value)` returns false for an unknown key.
template <typename Handler>
Status forEachKey(const YAML::Node& node, const std::string& section, const std::string& file,
                  Handler handle) {
  if (!node.IsMap()) {
    return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a mapping", file, section);
  }
  for (const auto& kv : node) {
    const auto key = section + "." + kv.first.as<std::string>();
    FLEETLET_ASSIGN_OR_RETURN(bool known, handle(key, kv.second));
    if (!known) return fail(ErrorCode::kInvalidArgument, "{}: unknown key \"{}\"", file, key);
  }
  return {};
}

Status loadNode(const YAML::Node& v, const std::string& file, DaemonConfig& cfg) {
  return forEachKey(v, "node", file,
                    [&](const std::string& key, const YAML::Node& n) -> Result<bool> {
                      if (key == "node.id") {
                        FLEETLET_ASSIGN_OR_RETURN(cfg.node_id, scalar<std::string>(n, key, file));
                        return true;
                      }
                      if (key == "node.idFile") {
                        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(n, key, file));
                        cfg.node_id_file = s;
                        return true;
                      }
                      return false;
                    });
}

Status loadRuntime(const YAML::Node& v, const std::string& file, DaemonConfig& cfg) {
  return forEachKey(v, "runtime", file,
                    [&](const std::string& key, const YAML::Node& n) -> Result<bool> {
                      if (key != "runtime.containerShim") return false;
                      FLEETLET_ASSIGN_OR_RETURN(auto name, scalar<std::string>(n, key, file));
                      auto shim = parseContainerShim(name);
                      if (!shim) return std::unexpected(shim.error().wrap("{}: {}", file, key));
                      cfg.container_shim = *shim;
                      return true;
                    });
}

Status loadTrust(const YAML::Node& v, const std::filesystem::path& path, DaemonConfig& cfg) {
  const std::string file = path.string();
  return forEachKey(
      v, "trust", file, [&](const std::string& key, const YAML::Node& n) -> Result<bool> {
        if (key == "trust.keys") {
          FLEETLET_ASSIGN_OR_RETURN(auto list, stringList(n, key, file));
          cfg.trust_keys.clear();
          for (const auto& k : list) cfg.trust_keys.push_back(configPath(k, path));
        } else if (key == "trust.threshold") {
          FLEETLET_ASSIGN_OR_RETURN(cfg.trust_threshold, positive<int>(n, key, file));
        } else if (key == "trust.allowUnsigned") {
          std::vector<std::string> list;
          if (n.IsSequence()) {
            FLEETLET_ASSIGN_OR_RETURN(list, stringList(n, key, file));
          } else {
            FLEETLET_ASSIGN_OR_RETURN(auto one, scalar<std::string>(n, key, file));
            list.push_back(one);
          }
          cfg.allow_unsigned_local = false;
          for (const auto& item : list) {
            if (item == "local") {
              cfg.allow_unsigned_local = true;
            } else if (item != "none") {
              return fail(ErrorCode::kInvalidArgument,
                          "{}: {}: \"{}\" is not a source (expected local or none; the cloud is "
                          "always signed only)",
                          file, key, item);
            }
          }
        } else {
          return false;
        }
        return true;
      });
}

Status loadCloudTls(const YAML::Node& v, const std::filesystem::path& path, CloudTls& tls) {
  const std::string file = path.string();
  return forEachKey(
      v, "cloud.tls", file, [&](const std::string& key, const YAML::Node& n) -> Result<bool> {
        if (key == "cloud.tls.pinnedPublicKeys") {
          FLEETLET_ASSIGN_OR_RETURN(tls.pinned_public_keys, stringList(n, key, file));
          for (const auto& pin : tls.pinned_public_keys) {
            if (!pin.starts_with("sha256//")) {
              return fail(ErrorCode::kInvalidArgument,
                          "{}: {}: \"{}\" is not a sha256//<base64> pin", file, key, pin);
            }
          }
          return true;
        }
        std::filesystem::path* target = key == "cloud.tls.cert"  ? &tls.cert
                                        : key == "cloud.tls.key" ? &tls.key
                                        : key == "cloud.tls.ca"  ? &tls.ca
                                                                 : nullptr;
        if (target == nullptr) return false;
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(n, key, file));
        *target = configPath(s, path);
        return true;
      });
}

Status loadAlerts(const YAML::Node& v, const std::string& file, AlertsConfig& alerts) {
  return forEachKey(
      v, "alerts", file, [&](const std::string& key, const YAML::Node& n) -> Result<bool> {
        if (key == "alerts.interval" || key == "alerts.continueEvery") {
          FLEETLET_ASSIGN_OR_RETURN(auto d, duration(n, key, file));
          if (d < std::chrono::seconds(1)) {
            return fail(ErrorCode::kInvalidArgument, "{}: {}: must be at least 1s", file, key);
          }
          (key == "alerts.interval" ? alerts.interval : alerts.continue_every) = d;
        } else if (key == "alerts.rules") {
          FLEETLET_ASSIGN_OR_RETURN(alerts.rules, stringList(n, key, file));
        } else if (key == "alerts.eventsUrl") {
          FLEETLET_ASSIGN_OR_RETURN(alerts.events_url, scalar<std::string>(n, key, file));
        } else {
          return false;
        }
        return true;
      });
}

Status loadCloud(const YAML::Node& v, const std::filesystem::path& path, CloudConfig& cloud) {
  const std::string file = path.string();
  return forEachKey(
      v, "cloud", file, [&](const std::string& key, const YAML::Node& n) -> Result<bool> {
        if (key == "cloud.manifestUrl") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.manifest_url, scalar<std::string>(n, key, file));
        } else if (key == "cloud.statusUrl") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.status_url, scalar<std::string>(n, key, file));
        } else if (key == "cloud.statusMethod") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.status_method, scalar<std::string>(n, key, file));
          if (cloud.status_method != "PUT" && cloud.status_method != "POST") {
            return fail(ErrorCode::kInvalidArgument, "{}: {}: \"{}\" is not PUT or POST", file, key,
                        cloud.status_method);
          }
        } else if (key == "cloud.statusInterval") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.status_interval, duration(n, key, file));
        } else if (key == "cloud.interval") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.interval, duration(n, key, file));
          if (cloud.interval < std::chrono::seconds(1)) {
            return fail(ErrorCode::kInvalidArgument, "{}: {}: must be at least 1s", file, key);
          }
        } else if (key == "cloud.wait") {
          FLEETLET_ASSIGN_OR_RETURN(auto w, duration(n, key, file));
          cloud.wait = std::chrono::duration_cast<std::chrono::seconds>(w);
        } else if (key == "cloud.timeout") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.timeout, duration(n, key, file));
        } else if (key == "cloud.maxManifestBytes") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.max_manifest_bytes, positive<int64_t>(n, key, file));
        } else if (key == "cloud.logRequestUrl") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.log_request_url, scalar<std::string>(n, key, file));
        } else if (key == "cloud.logUploadMaxBytes") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.log_upload_max_bytes, positive<int64_t>(n, key, file));
        } else if (key == "cloud.logUploadRate") {
          FLEETLET_ASSIGN_OR_RETURN(cloud.log_upload_rate, scalar<int64_t>(n, key, file));
          if (cloud.log_upload_rate < 0) {
            return fail(ErrorCode::kInvalidArgument, "{}: {}: must be 0 (no cap) or more", file,
                        key);
          }
        } else if (key == "cloud.tls") {
          FLEETLET_RETURN_IF_ERROR(loadCloudTls(n, path, cloud.tls));
        } else {
          return false;
        }
        return true;
      });
}

}  // namespace

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  auto d = manifest::parseDuration(text);
  if (!d) {
    return fail(ErrorCode::kInvalidArgument,
                "\"{}\" is not a duration (examples: 250ms, 30s, 5m, 1h)", text);
  }
  return d;
}

Result<ContainerShim> parseContainerShim(std::string_view name) {
  if (name == "runc") return ContainerShim::kRunc;
  if (name == "fleetlet") return ContainerShim::kFleetlet;
  return fail(ErrorCode::kInvalidArgument,
              "\"{}\" is not a container shim (expected runc or fleetlet)", name);
}

std::string_view runtimeName(ContainerShim shim) {
  return shim == ContainerShim::kFleetlet ? "io.containerd.fleetlet.v1" : "io.containerd.runc.v2";
}

Status checkLogLevel(std::string_view level) {
  for (std::string_view known : {"trace", "debug", "info", "warn", "error", "off"}) {
    if (level == known) return {};
  }
  return fail(ErrorCode::kInvalidArgument,
              "\"{}\" is not a log level (expected trace, debug, info, warn, error or off)", level);
}

Result<std::string> resolveNodeId(const DaemonConfig& config) {
  if (!config.node_id.empty()) return config.node_id;
  std::ifstream in(config.node_id_file);
  if (!in) {
    return std::unexpected(errnoError(
        errno, fmt::format("node id: set node.id or provide {}", config.node_id_file.string())));
  }
  std::string line;
  std::getline(in, line);
  auto first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "node id: {} is empty (set node.id)",
                config.node_id_file.string());
  }
  return line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
}

Result<DaemonConfig> loadConfigFile(const std::filesystem::path& path, DaemonConfig base) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return fail(ErrorCode::kNotFound, "config file {} does not exist", path.string());
  }
  const std::string file = path.string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::kInvalidArgument, "{}:{}:{}: {}", file, e.mark.line + 1,
                e.mark.column + 1, e.msg);
  }
  if (root.IsNull()) return base;
  if (!root.IsMap()) return fail(ErrorCode::kInvalidArgument, "{}: expected a mapping", file);
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "containerd") {
      FLEETLET_ASSIGN_OR_RETURN(base.containerd, scalar<std::string>(v, key, file));
    } else if (key == "namespace") {
      FLEETLET_ASSIGN_OR_RETURN(base.ns, scalar<std::string>(v, key, file));
    } else if (key == "dataDir") {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      base.data_dir = s;
    } else if (key == "apiSocket") {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      base.api_socket = s;
    } else if (key == "desired") {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      base.desired = s;
    } else if (key == "logLevel") {
      FLEETLET_ASSIGN_OR_RETURN(base.log_level, scalar<std::string>(v, key, file));
      if (auto st = checkLogLevel(base.log_level); !st) {
        return std::unexpected(st.error().wrap("{}: {}", file, key));
      }
    } else if (key == "parallelism") {
      FLEETLET_ASSIGN_OR_RETURN(base.parallelism, positive<int64_t>(v, key, file));
    } else if (key == "pullParallelism") {
      FLEETLET_ASSIGN_OR_RETURN(base.pull_parallelism, positive<int64_t>(v, key, file));
    } else if (key == "pullTimeout") {
      FLEETLET_ASSIGN_OR_RETURN(base.pull_timeout, duration(v, key, file));
    } else if (key == "pullStallTimeout") {
      FLEETLET_ASSIGN_OR_RETURN(base.pull_stall_timeout, duration(v, key, file));
    } else if (key == "pullMinSpeed") {
      FLEETLET_ASSIGN_OR_RETURN(base.pull_min_speed, positive<int64_t>(v, key, file));
    } else if (key == "shipLogs") {
      FLEETLET_ASSIGN_OR_RETURN(base.ship_logs, scalar<bool>(v, key, file));
    } else if (key == "removedLogRetention") {
      FLEETLET_ASSIGN_OR_RETURN(base.removed_log_retention, duration(v, key, file));
    } else if (auto* target = key == "cniConfDir"       ? &base.cni_conf_dir
                              : key == "netnsDir"       ? &base.netns_dir
                              : key == "cniNetns"       ? &base.cni_netns
                              : key == "streamsHandoff" ? &base.streams_handoff
                              : key == "blobsHandoff"   ? &base.blobs_handoff
                              : key == "systemManifest" ? &base.system_manifest
                              : key == "systemImages"   ? &base.system_images
                              : key == "handoffDir"     ? &base.handoff_dir
                              : key == "logger"         ? &base.logger
                                                        : nullptr) {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      *target = s;
      if (key == "systemManifest") base.system_manifest_required = true;
    } else if (key == "cniBinDirs") {
      if (!v.IsSequence()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
      }
      base.cni_bin_dirs.clear();
      for (const auto& item : v) {
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
        base.cni_bin_dirs.emplace_back(s);
      }
    } else if (key == "metricsListen") {
      FLEETLET_ASSIGN_OR_RETURN(base.metrics_listen, scalar<std::string>(v, key, file));
    } else if (key == "display") {
      FLEETLET_ASSIGN_OR_RETURN(base.display, scalar<std::string>(v, key, file));
    } else if (key == "webview") {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      base.webview_binary = s;
    } else if (key == "webviewChild") {
      FLEETLET_ASSIGN_OR_RETURN(base.webview_child, scalar<bool>(v, key, file));
    } else if (key == "webviewArgs") {
      if (!v.IsSequence()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
      }
      base.webview_args.clear();
      for (const auto& item : v) {
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
        base.webview_args.push_back(s);
      }
    } else if (key == "node") {
      FLEETLET_RETURN_IF_ERROR(loadNode(v, file, base));
    } else if (key == "trust") {
      FLEETLET_RETURN_IF_ERROR(loadTrust(v, path, base));
    } else if (key == "runtime") {
      FLEETLET_RETURN_IF_ERROR(loadRuntime(v, file, base));
    } else if (key == "cloud") {
      FLEETLET_RETURN_IF_ERROR(loadCloud(v, path, base.cloud));
    } else if (key == "alerts") {
      FLEETLET_RETURN_IF_ERROR(loadAlerts(v, file, base.alerts));
    } else if (key == "plainHttpRegistries" || key == "httpsRegistries") {
      if (!v.IsSequence()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
      }
      auto& names =
          key == "plainHttpRegistries" ? base.plain_http_registries : base.https_registries;
      for (const auto& item : v) {
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
        names.insert(s);
      }
    } else {
      return fail(ErrorCode::kInvalidArgument, "{}: unknown key \"{}\"", file, key);
    }
  }
  return base;
}

}  // namespace fleetlet::config
