#include "config/daemon_config.h"

#include <yaml-cpp/yaml.h>

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

}  // namespace

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
      FLEETLET_ASSIGN_OR_RETURN(base.parallelism, scalar<size_t>(v, key, file));
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
