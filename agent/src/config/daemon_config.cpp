#include "config/daemon_config.h"

#include <yaml-cpp/yaml.h>

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

}  // namespace

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  auto d = manifest::parseDuration(text);
  if (!d) {
    return fail(ErrorCode::kInvalidArgument,
                "\"{}\" is not a duration (examples: 250ms, 30s, 5m, 1h)", text);
  }
  return d;
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
    } else if (key == "removedLogRetention") {
      FLEETLET_ASSIGN_OR_RETURN(base.removed_log_retention, duration(v, key, file));
    } else if (auto* target = key == "cniConfDir"       ? &base.cni_conf_dir
                              : key == "netnsDir"       ? &base.netns_dir
                              : key == "cniNetns"       ? &base.cni_netns
                              : key == "streamsHandoff" ? &base.streams_handoff
                              : key == "blobsHandoff"   ? &base.blobs_handoff
                                                        : nullptr) {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      *target = s;
    } else if (key == "cniBinDirs") {
      if (!v.IsSequence()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
      }
      base.cni_bin_dirs.clear();
      for (const auto& item : v) {
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
        base.cni_bin_dirs.emplace_back(s);
      }
    } else if (key == "display") {
      FLEETLET_ASSIGN_OR_RETURN(base.display, scalar<std::string>(v, key, file));
    } else if (key == "webview") {
      FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(v, key, file));
      base.webview_binary = s;
    } else if (key == "webviewArgs") {
      if (!v.IsSequence()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
      }
      base.webview_args.clear();
      for (const auto& item : v) {
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
        base.webview_args.push_back(s);
      }
    } else if (key == "plainHttpRegistries") {
      if (!v.IsSequence()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {}: expected a list", file, key);
      }
      for (const auto& item : v) {
        FLEETLET_ASSIGN_OR_RETURN(std::string s, scalar<std::string>(item, key, file));
        base.plain_http_registries.insert(s);
      }
    } else {
      return fail(ErrorCode::kInvalidArgument, "{}: unknown key \"{}\"", file, key);
    }
  }
  return base;
}

}  // namespace fleetlet::config
