#include "spec/types.h"

#include <algorithm>

namespace fleetlet::cni {
namespace {

std::unexpected<Error> fieldError(std::string_view path, std::string_view what) {
  return fail(ErrorCode::kInvalidArgument, "{}: {}", path, what);
}

// An optional string member: "" when absent or null.
Result<std::string> stringOr(const Json& object, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(auto value, optionalString(object, key, path));
  return value.value_or("");
}

Result<std::optional<Cidr>> optionalAddress(const Json& object, std::string_view key,
                                            std::string_view path, bool prefix_optional) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, optionalString(object, key, path));
  if (!text || text->empty()) return std::optional<Cidr>();
  auto cidr = parseCidr(*text, prefix_optional);
  if (!cidr) return std::unexpected(cidr.error().wrap("{}.{}", path, key));
  return std::optional<Cidr>(*cidr);
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Splits "1.0.0" into numbers for ordering; nullopt when malformed.
std::optional<std::array<int, 3>> semver(std::string_view v) {
  std::array<int, 3> out{};
  size_t part = 0;
  int value = -1;
  for (char c : v) {
    if (c >= '0' && c <= '9') {
      value = (value < 0 ? 0 : value) * 10 + (c - '0');
      if (value > 100000) return std::nullopt;
    } else if (c == '.' && value >= 0 && part < 2) {
      out[part++] = value;
      value = -1;
    } else {
      return std::nullopt;
    }
  }
  if (value < 0 || part != 2) return std::nullopt;
  out[2] = value;
  return out;
}

}  // namespace

bool isSupportedVersion(std::string_view version) {
  return std::ranges::find(kSupportedVersions, version) != std::end(kSupportedVersions);
}

ErrorCode fromCniCode(int cni_code) {
  switch (cni_code) {
    case error_code::kIncompatibleVersion:
      return ErrorCode::kFailedPrecondition;
    case error_code::kUnsupportedField:
    case error_code::kInvalidEnvironment:
    case error_code::kDecodeFailure:
    case error_code::kInvalidConfig:
      return ErrorCode::kInvalidArgument;
    case error_code::kUnknownContainer:
      return ErrorCode::kNotFound;
    case error_code::kTryAgainLater:
    case error_code::kNotAvailable:
    case 51:
      return ErrorCode::kUnavailable;
    default:
      return ErrorCode::kInternal;
  }
}

int toCniCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return error_code::kInvalidConfig;
    case ErrorCode::kNotFound:
      return error_code::kUnknownContainer;
    case ErrorCode::kFailedPrecondition:
      return error_code::kNotAvailable;
    case ErrorCode::kUnavailable:
      return error_code::kTryAgainLater;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kInternal:
      return error_code::kFleetletInternal;
  }
  return error_code::kFleetletInternal;
}

Json ErrorObject::toJson() const {
  Json out = Json::object();
  out["cniVersion"] = cni_version.empty() ? std::string(kLatestVersion) : cni_version;
  out["code"] = code;
  out["msg"] = msg;
  if (!details.empty()) out["details"] = details;
  return out;
}

Result<ErrorObject> parseErrorObjectJson(const Json& value) {
  if (!value.is_object()) return fieldError("error", "expected an object");
  ErrorObject out;
  auto code = value.find("code");
  if (code == value.end() || !code->is_number_integer()) {
    return fieldError("error.code", "missing or not an integer");
  }
  auto number = code->get<int64_t>();
  if (number < 0 || number > 1'000'000) return fieldError("error.code", "out of range");
  out.code = static_cast<int>(number);
  FLEETLET_ASSIGN_OR_RETURN(out.msg, requireString(value, "msg", "error"));
  FLEETLET_ASSIGN_OR_RETURN(out.details, stringOr(value, "details", "error"));
  FLEETLET_ASSIGN_OR_RETURN(out.cni_version, stringOr(value, "cniVersion", "error"));
  return out;
}

Result<ErrorObject> parseErrorObject(std::string_view text) {
  FLEETLET_ASSIGN_OR_RETURN(Json value, parseJson(text, "error"));
  return parseErrorObjectJson(value);
}

Result<AddResult> parseAddResultJson(const Json& value) {
  if (!value.is_object()) return fieldError("result", "expected an object");
  AddResult out;
  FLEETLET_ASSIGN_OR_RETURN(out.cni_version, requireString(value, "cniVersion", "result"));
  if (auto it = value.find("interfaces"); it != value.end() && !it->is_null()) {
    if (!it->is_array()) return fieldError("result.interfaces", "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      std::string path = fmt::format("result.interfaces[{}]", i);
      const Json& entry = (*it)[i];
      Interface iface;
      FLEETLET_ASSIGN_OR_RETURN(iface.name, requireString(entry, "name", path));
      FLEETLET_ASSIGN_OR_RETURN(iface.mac, stringOr(entry, "mac", path));
      FLEETLET_ASSIGN_OR_RETURN(iface.sandbox, stringOr(entry, "sandbox", path));
      out.interfaces.push_back(std::move(iface));
    }
  }
  if (auto it = value.find("ips"); it != value.end() && !it->is_null()) {
    if (!it->is_array()) return fieldError("result.ips", "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      std::string path = fmt::format("result.ips[{}]", i);
      const Json& entry = (*it)[i];
      IpConfig ip;
      FLEETLET_ASSIGN_OR_RETURN(auto address, optionalAddress(entry, "address", path, false));
      if (!address) return fieldError(path + ".address", "missing");
      ip.address = *address;
      FLEETLET_ASSIGN_OR_RETURN(ip.gateway, optionalAddress(entry, "gateway", path, true));
      if (auto idx = entry.find("interface"); idx != entry.end() && !idx->is_null()) {
        if (!idx->is_number_integer()) return fieldError(path + ".interface", "not an integer");
        auto n = idx->get<int64_t>();
        if (n < 0 || static_cast<size_t>(n) >= out.interfaces.size()) {
          return fieldError(path + ".interface", fmt::format("index {} outside interfaces[0..{})",
                                                             n, out.interfaces.size()));
        }
        ip.interface = static_cast<int>(n);
      }
      out.ips.push_back(ip);
    }
  }
  if (auto it = value.find("routes"); it != value.end() && !it->is_null()) {
    if (!it->is_array()) return fieldError("result.routes", "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      std::string path = fmt::format("result.routes[{}]", i);
      Route route;
      FLEETLET_ASSIGN_OR_RETURN(auto dst, optionalAddress((*it)[i], "dst", path, false));
      if (!dst) return fieldError(path + ".dst", "missing");
      route.dst = *dst;
      FLEETLET_ASSIGN_OR_RETURN(route.gw, optionalAddress((*it)[i], "gw", path, true));
      out.routes.push_back(route);
    }
  }
  out.raw = value;
  return out;
}

Result<AddResult> parseAddResult(std::string_view text) {
  FLEETLET_ASSIGN_OR_RETURN(Json value, parseJson(text, "result"));
  return parseAddResultJson(value);
}

Result<NetworkConfigList> parseConfListJson(const Json& value, std::string_view source) {
  auto bad = [&](std::string_view what) {
    return fail(ErrorCode::kInvalidArgument, "network configuration {}: {}", source, what);
  };
  if (!value.is_object()) return bad("expected a JSON object (a conflist)");
  NetworkConfigList out;
  auto name = requireString(value, "name", "conflist");
  if (!name) return std::unexpected(name.error().wrap("network configuration {}", source));
  if (name->empty() || !isAlnum((*name)[0]) || !std::ranges::all_of(*name, isNameChar)) {
    return bad(
        fmt::format("name \"{}\" must start alphanumeric and hold only [A-Za-z0-9_.-]", *name));
  }
  out.name = *name;

  std::vector<std::string> offered;
  if (auto v = value.find("cniVersion"); v != value.end()) {
    if (!v->is_string()) return bad("cniVersion: expected a string");
    offered.push_back(v->get<std::string>());
  }
  if (auto vs = value.find("cniVersions"); vs != value.end() && !vs->is_null()) {
    if (!vs->is_array()) return bad("cniVersions: expected an array of strings");
    for (const auto& v : *vs) {
      if (!v.is_string()) return bad("cniVersions: expected an array of strings");
      offered.push_back(v.get<std::string>());
    }
  }
  if (offered.empty()) return bad("cniVersion: missing");
  std::optional<std::array<int, 3>> best_version;
  for (const auto& v : offered) {
    auto parsed = semver(v);
    if (isSupportedVersion(v) && parsed && (!best_version || *parsed > *best_version)) {
      best_version = parsed;
      out.cni_version = v;
    }
  }
  if (out.cni_version.empty()) {
    return fail(ErrorCode::kFailedPrecondition,
                "network configuration {}: none of the CNI versions [{}] is supported ({})", source,
                fmt::join(offered, ", "), fmt::join(kSupportedVersions, ", "));
  }
  if (auto dc = value.find("disableCheck"); dc != value.end() && !dc->is_null()) {
    if (!dc->is_boolean()) return bad("disableCheck: expected a boolean");
    out.disable_check = dc->get<bool>();
  }
  auto plugins = value.find("plugins");
  if (plugins == value.end() || !plugins->is_array() || plugins->empty()) {
    return bad(
        "plugins: expected a non-empty array (single-plugin .conf files are not "
        "supported since CNI 1.0)");
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    const Json& entry = (*plugins)[i];
    std::string path = fmt::format("plugins[{}]", i);
    if (!entry.is_object()) return bad(path + ": expected an object");
    auto type = requireString(entry, "type", path);
    if (!type) return std::unexpected(type.error().wrap("network configuration {}", source));
    if (type->empty() || *type == "." || *type == ".." || type->find('/') != std::string::npos ||
        type->find('\0') != std::string::npos) {
      return bad(fmt::format("{}.type: \"{}\" is not a file name", path, *type));
    }
    for (const char* reserved : {"runtimeConfig", "prevResult", "args"}) {
      if (entry.contains(reserved)) {
        return bad(fmt::format("{}.{}: reserved for the runtime", path, reserved));
      }
    }
    PluginConf plugin{.type = *type, .capabilities = {}, .raw = entry};
    if (auto caps = entry.find("capabilities"); caps != entry.end() && !caps->is_null()) {
      if (!caps->is_object()) return bad(path + ".capabilities: expected an object");
      for (const auto& [cap, enabled] : caps->items()) {
        if (!enabled.is_boolean()) {
          return bad(fmt::format("{}.capabilities.{}: expected a boolean", path, cap));
        }
        if (enabled.get<bool>()) plugin.capabilities.insert(cap);
      }
    }
    out.plugins.push_back(std::move(plugin));
  }
  out.raw = value;
  return out;
}

Result<NetworkConfigList> parseConfList(std::string_view text, std::string_view source) {
  auto value = parseJson(text, "network configuration");
  if (!value) return std::unexpected(value.error().wrap("{}", source));
  return parseConfListJson(*value, source);
}

Json requestConfig(const NetworkConfigList& network, const PluginConf& plugin,
                   const Json& capability_args, const Json* prev_result) {
  Json out = plugin.raw;
  out.erase("capabilities");
  out["cniVersion"] = network.cni_version;
  out["name"] = network.name;
  Json runtime = Json::object();
  if (capability_args.is_object()) {
    for (const auto& cap : plugin.capabilities) {
      if (auto it = capability_args.find(cap); it != capability_args.end()) runtime[cap] = *it;
    }
  }
  if (!runtime.empty()) out["runtimeConfig"] = std::move(runtime);
  if (prev_result != nullptr && !prev_result->is_null()) out["prevResult"] = *prev_result;
  return out;
}

bool isValidContainerId(std::string_view id) {
  return !id.empty() && isAlnum(id[0]) && std::ranges::all_of(id, isNameChar);
}

bool isValidInterfaceName(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::ranges::none_of(name, [](char c) {
    return c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\0';
  });
}

std::string dumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace fleetlet::cni
