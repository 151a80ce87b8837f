// Manifest v1 validation: one walk over JSON values (from YAML or JSON, see yaml_json.h) that
// checks every field's type and value and names its path in the first error it finds.

#include "manifest/parse.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "crypto/sha256.h"
#include "manifest/quantity.h"
#include "manifest/yaml_json.h"
#include "oci/reference.h"
#include "spec/cidr.h"
#include "time/rfc3339.h"

namespace fleetlet::manifest {
namespace {

constexpr std::string_view kApiVersion = "fleetlet.io/v1";
constexpr std::string_view kKind = "NodeState";
constexpr int64_t kMinCpuMillis = 10;  // the kernel refuses CFS quotas below 1 ms per 100 ms
// Host ports of the node services (events, blobs, console); apps cannot take them.
constexpr uint16_t kReservedHostPorts[] = {4454, 4455, 4457};

using Unexpected = std::unexpected<Error>;

template <typename... Args>
Unexpected fieldError(std::string_view path, fmt::format_string<Args...> format, Args&&... args) {
  return std::unexpected(
      Error(ErrorCode::kInvalidArgument,
            fmt::format("{}: {}", path, fmt::format(format, std::forward<Args>(args)...))));
}

// A field's error from a helper whose message has no path yet.
Unexpected withPath(std::string_view path, const Error& error) {
  return fieldError(path, "{}", error.message());
}

std::string quote(std::string_view text) {
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string index(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

// "a string", "an integer", ... for "expected X, got Y".
Unexpected typeError(std::string_view path, std::string_view expected, const Json& got) {
  if (got.is_string()) {
    return fieldError(path, "expected {}, got string {}", expected,
                      quote(got.get_ref<const std::string&>()));
  }
  return fieldError(path, "expected {}, got {}", expected, jsonTypeName(got));
}

bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && i != 0 && i + 1 != s.size())) return false;
  }
  return true;
}

bool isEnvName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool isLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// ---- typed values ----

Result<std::string> asString(const Json& v, const std::string& path) {
  if (!v.is_string()) return typeError(path, "a string", v);
  const auto& s = v.get_ref<const std::string&>();
  if (s.find('\0') != std::string::npos) return fieldError(path, "contains a NUL character");
  return s;
}

Result<int64_t> asInt(const Json& v, const std::string& path) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()}) {
    return fieldError(path, "{} is too large", v.dump());
  }
  if (!v.is_number_integer()) return typeError(path, "an integer", v);
  return v.get<int64_t>();
}

Result<int64_t> asIntInRange(const Json& v, const std::string& path, int64_t min, int64_t max) {
  FLEETLET_ASSIGN_OR_RETURN(int64_t n, asInt(v, path));
  if (n < min || n > max) return fieldError(path, "{} is not in {}..{}", n, min, max);
  return n;
}

Result<uint16_t> asPort(const Json& v, const std::string& path) {
  FLEETLET_ASSIGN_OR_RETURN(int64_t n, asInt(v, path));
  if (n < 1 || n > 65535) return fieldError(path, "{} is not a port (1..65535)", n);
  return static_cast<uint16_t>(n);
}

Result<bool> asBool(const Json& v, const std::string& path) {
  if (!v.is_boolean()) return typeError(path, "a boolean (true or false)", v);
  return v.get<bool>();
}

Result<std::vector<std::string>> asStringList(const Json& v, const std::string& path) {
  if (!v.is_array()) return typeError(path, "a list of strings", v);
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    FLEETLET_ASSIGN_OR_RETURN(auto s, asString(v[i], index(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

// One of `names`, returned as its position.
Result<size_t> asEnum(const Json& v, const std::string& path,
                      std::initializer_list<std::string_view> names) {
  FLEETLET_ASSIGN_OR_RETURN(auto s, asString(v, path));
  size_t i = 0;
  for (std::string_view name : names) {
    if (s == name) return i;
    ++i;
  }
  std::string expected;
  i = 0;
  for (std::string_view name : names) {
    expected += i == 0 ? "" : (i + 1 == names.size() ? " or " : ", ");
    expected += name;
    ++i;
  }
  return fieldError(path, "unknown value {} (expected {})", quote(s), expected);
}

Result<std::chrono::milliseconds> asDuration(const Json& v, const std::string& path) {
  if (!v.is_string()) return typeError(path, "a duration string like 10s", v);
  auto d = parseDuration(v.get_ref<const std::string&>());
  if (!d) return withPath(path, d.error());
  return *d;
}

// An absolute path without NUL, "." or ".." components, normalized ("/data/" -> "/data").
Result<std::string> asAbsolutePath(const Json& v, const std::string& path) {
  // The string is read where it lies: moved out of asString's Result, a short one trips GCC 12's
  // -Wmaybe-uninitialized at -O3 (a false positive on the small-string buffer).
  FLEETLET_RETURN_IF_ERROR(asString(v, path));
  const auto& s = v.get_ref<const std::string&>();
  if (!s.starts_with('/')) return fieldError(path, "{} is not an absolute path", quote(s));
  for (const auto& part : std::filesystem::path(s)) {
    if (part == "." || part == "..") {
      return fieldError(path, "{} must not contain . or .. components", quote(s));
    }
  }
  std::string normal = std::filesystem::path(s).lexically_normal().string();
  while (normal.size() > 1 && normal.ends_with('/')) normal.pop_back();
  return normal;
}

// ---- objects ----

// An object whose keys are all known; absent and null members read as "not set".
class Fields {
 public:
  static Result<Fields> open(const Json& v, std::string path,
                             std::initializer_list<std::string_view> known) {
    if (!v.is_object()) return typeError(path.empty() ? "manifest" : path, "an object", v);
    for (const auto& [key, value] : v.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return fieldError(join(path, key), "unknown field");
      }
    }
    return Fields(v, std::move(path));
  }

  // The member, or nullptr when absent or null.
  const Json* find(std::string_view key) const {
    auto it = object_->find(key);
    if (it == object_->end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  Result<const Json*> require(std::string_view key) const {
    const Json* v = find(key);
    if (v == nullptr) return fieldError(at(key), "required");
    return v;
  }

  std::string at(std::string_view key) const { return join(path_, key); }
  const std::string& path() const { return path_; }

 private:
  Fields(const Json& object, std::string path) : object_(&object), path_(std::move(path)) {}

  const Json* object_;
  std::string path_;
};

// ---- app sections ----

Result<Resources> parseResources(const Json& v, const std::string& path) {
  FLEETLET_ASSIGN_OR_RETURN(auto f, Fields::open(v, path, {"cpu", "memory", "pids"}));
  Resources r;
  if (const Json* cpu = f.find("cpu")) {
    int64_t millis = 0;
    if (cpu->is_string()) {
      auto cores = parseCpu(cpu->get_ref<const std::string&>());
      if (!cores) return withPath(f.at("cpu"), cores.error());
      if (*cores > 1e6) return fieldError(f.at("cpu"), "{} is too large", cpu->dump());
      millis = std::llround(*cores * 1000);
    } else if (cpu->is_number()) {
      const double cores = cpu->get<double>();
      const double scaled = cores * 1000;
      if (!std::isfinite(cores) || cores < 0 || cores > 1e6) {
        return fieldError(f.at("cpu"), "{} is not a cpu amount", cpu->dump());
      }
      if (std::fabs(scaled - std::round(scaled)) > 1e-6) {
        return fieldError(f.at("cpu"), "{} is finer than 1m (0.001 cores)", cpu->dump());
      }
      millis = std::llround(scaled);
    } else {
      return typeError(f.at("cpu"), "a cpu amount like 0.5 or \"500m\"", *cpu);
    }
    if (millis < kMinCpuMillis) {
      return fieldError(f.at("cpu"), "{} is below the minimum of 10m (0.01 cores)", cpu->dump());
    }
    r.cpu = static_cast<double>(millis) / 1000.0;
  }
  if (const Json* memory = f.find("memory")) {
    int64_t bytes = 0;
    if (memory->is_string()) {
      auto q = parseQuantity(memory->get_ref<const std::string&>());
      if (!q) return withPath(f.at("memory"), q.error());
      bytes = *q;
    } else if (memory->is_number_integer()) {
      FLEETLET_ASSIGN_OR_RETURN(bytes, asInt(*memory, f.at("memory")));
    } else {
      return typeError(f.at("memory"), "a quantity like \"64Mi\" or a number of bytes", *memory);
    }
    // runc itself needs a few MiB inside the container's cgroup to start the app; below this
    // (Docker's minimum too) the task can never start.
    constexpr int64_t kMinMemory = 6 << 20;
    if (bytes < kMinMemory) {
      return fieldError(f.at("memory"),
                        "must be at least 6Mi (runc needs that much to start a container)");
    }
    r.memory_bytes = bytes;
  }
  if (const Json* pids = f.find("pids")) {
    FLEETLET_ASSIGN_OR_RETURN(int64_t n, asInt(*pids, f.at("pids")));
    if (n < 1) return fieldError(f.at("pids"), "{} is not a positive number of processes", n);
    r.pids = n;
  }
  return r;
}

Result<HealthCheck> parseHealth(const Json& v, const std::string& path) {
  FLEETLET_ASSIGN_OR_RETURN(
      auto f, Fields::open(v, path, {"http", "tcp", "exec", "interval", "timeout", "failures"}));
  HealthCheck h;
  const int probes = int{f.has("http")} + int{f.has("tcp")} + int{f.has("exec")};
  if (probes == 0) return fieldError(path, "needs one of http, tcp or exec");
  if (probes > 1) return fieldError(path, "only one of http, tcp or exec may be set");
  if (const Json* http = f.find("http")) {
    FLEETLET_ASSIGN_OR_RETURN(auto hf, Fields::open(*http, f.at("http"), {"port", "path"}));
    h.kind = HealthCheck::Kind::kHttp;
    FLEETLET_ASSIGN_OR_RETURN(const Json* port, hf.require("port"));
    FLEETLET_ASSIGN_OR_RETURN(h.port, asPort(*port, hf.at("port")));
    if (const Json* p = hf.find("path")) {
      FLEETLET_ASSIGN_OR_RETURN(h.path, asString(*p, hf.at("path")));
      if (!h.path.starts_with('/')) {
        return fieldError(hf.at("path"), "{} does not start with /", quote(h.path));
      }
    }
  } else if (const Json* tcp = f.find("tcp")) {
    FLEETLET_ASSIGN_OR_RETURN(auto tf, Fields::open(*tcp, f.at("tcp"), {"port"}));
    h.kind = HealthCheck::Kind::kTcp;
    FLEETLET_ASSIGN_OR_RETURN(const Json* port, tf.require("port"));
    FLEETLET_ASSIGN_OR_RETURN(h.port, asPort(*port, tf.at("port")));
  } else if (const Json* exec = f.find("exec")) {
    FLEETLET_ASSIGN_OR_RETURN(auto ef, Fields::open(*exec, f.at("exec"), {"command"}));
    h.kind = HealthCheck::Kind::kExec;
    FLEETLET_ASSIGN_OR_RETURN(const Json* command, ef.require("command"));
    FLEETLET_ASSIGN_OR_RETURN(h.command, asStringList(*command, ef.at("command")));
    if (h.command.empty()) return fieldError(ef.at("command"), "must not be empty");
  }
  if (const Json* interval = f.find("interval")) {
    FLEETLET_ASSIGN_OR_RETURN(h.interval, asDuration(*interval, f.at("interval")));
    if (h.interval.count() <= 0) return fieldError(f.at("interval"), "must be more than 0");
  }
  if (const Json* timeout = f.find("timeout")) {
    FLEETLET_ASSIGN_OR_RETURN(h.timeout, asDuration(*timeout, f.at("timeout")));
    if (h.timeout.count() <= 0) return fieldError(f.at("timeout"), "must be more than 0");
  }
  if (const Json* failures = f.find("failures")) {
    FLEETLET_ASSIGN_OR_RETURN(int64_t n, asIntInRange(*failures, f.at("failures"), 1, 1000));
    h.failures = static_cast<int>(n);
  }
  return h;
}

Result<std::vector<std::string>> asNameSet(const Json& v, const std::string& path);

// `app_names`: every app of the manifest, for allow.
Result<Network> parseNetwork(const Json& v, const std::string& path,
                             const std::set<std::string>& app_names) {
  FLEETLET_ASSIGN_OR_RETURN(auto f, Fields::open(v, path, {"egress", "allow", "mode", "expose"}));
  Network n;
  if (const Json* mode = f.find("mode")) {
    FLEETLET_ASSIGN_OR_RETURN(size_t m, asEnum(*mode, f.at("mode"), {"isolated", "host"}));
    n.mode = m == 0 ? Network::Mode::kIsolated : Network::Mode::kHost;
    if (n.mode == Network::Mode::kHost) {
      for (const char* key : {"egress", "allow", "expose"}) {
        if (f.find(key) != nullptr) {
          return fieldError(f.at(key),
                            "does not apply with mode host (the app shares the "
                            "node's network)");
        }
      }
    }
  }
  if (const Json* egress = f.find("egress")) {
    FLEETLET_ASSIGN_OR_RETURN(size_t e, asEnum(*egress, f.at("egress"), {"all", "local", "none"}));
    n.egress = e == 0 ? Network::Egress::kAll
                      : (e == 1 ? Network::Egress::kLocal : Network::Egress::kNone);
  }
  if (const Json* allow = f.find("allow")) {
    FLEETLET_ASSIGN_OR_RETURN(n.allow, asNameSet(*allow, f.at("allow")));
    for (size_t i = 0; i < allow->size(); ++i) {
      const auto& entry = (*allow)[i].get_ref<const std::string&>();
      if (isDnsLabel(entry) && app_names.contains(entry)) continue;
      if (cni::parseCidr(entry, /*prefix_optional=*/true)) continue;
      return fieldError(index(f.at("allow"), i),
                        "{} is neither an app of this manifest nor an address or CIDR",
                        quote(entry));
    }
  }
  if (const Json* expose = f.find("expose")) {
    if (!expose->is_array()) return typeError(f.at("expose"), "a list", *expose);
    for (size_t i = 0; i < expose->size(); ++i) {
      const std::string item_path = index(f.at("expose"), i);
      FLEETLET_ASSIGN_OR_RETURN(
          auto pf, Fields::open((*expose)[i], item_path, {"port", "hostPort", "protocol"}));
      ExposedPort p;
      FLEETLET_ASSIGN_OR_RETURN(const Json* port, pf.require("port"));
      FLEETLET_ASSIGN_OR_RETURN(p.port, asPort(*port, pf.at("port")));
      p.host_port = p.port;
      if (const Json* host = pf.find("hostPort")) {
        FLEETLET_ASSIGN_OR_RETURN(p.host_port, asPort(*host, pf.at("hostPort")));
      }
      if (std::find(std::begin(kReservedHostPorts), std::end(kReservedHostPorts), p.host_port) !=
          std::end(kReservedHostPorts)) {
        return fieldError(pf.at("hostPort"), "{} is reserved for the node services", p.host_port);
      }
      if (const Json* protocol = pf.find("protocol")) {
        FLEETLET_ASSIGN_OR_RETURN(size_t k, asEnum(*protocol, pf.at("protocol"), {"tcp", "udp"}));
        p.protocol = k == 0 ? "tcp" : "udp";
      }
      n.expose.push_back(std::move(p));
    }
  }
  return n;
}

Result<std::vector<Volume>> parseVolumes(const Json& v, const std::string& path) {
  if (!v.is_array()) return typeError(path, "a list", v);
  std::vector<Volume> volumes;
  std::map<std::string, size_t> by_path;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string item_path = index(path, i);
    FLEETLET_ASSIGN_OR_RETURN(auto f, Fields::open(v[i], item_path, {"name", "path", "readOnly"}));
    Volume volume;
    FLEETLET_ASSIGN_OR_RETURN(const Json* name, f.require("name"));
    FLEETLET_ASSIGN_OR_RETURN(volume.name, asString(*name, f.at("name")));
    if (!isDnsLabel(volume.name)) {
      return fieldError(f.at("name"),
                        "invalid volume name {} (lower-case letters, digits and '-', at most 63)",
                        quote(volume.name));
    }
    FLEETLET_ASSIGN_OR_RETURN(const Json* mount, f.require("path"));
    FLEETLET_ASSIGN_OR_RETURN(volume.path, asAbsolutePath(*mount, f.at("path")));
    if (volume.path == "/" || volume.path == "/proc" || volume.path.starts_with("/proc/") ||
        volume.path == "/sys" || volume.path.starts_with("/sys/")) {
      return fieldError(f.at("path"), "{} cannot hold a volume", quote(volume.path));
    }
    if (auto [it, inserted] = by_path.emplace(volume.path, i); !inserted) {
      return fieldError(f.at("path"), "{} is already used by {}", quote(volume.path),
                        index(path, it->second));
    }
    if (const Json* ro = f.find("readOnly")) {
      FLEETLET_ASSIGN_OR_RETURN(volume.read_only, asBool(*ro, f.at("readOnly")));
    }
    volumes.push_back(std::move(volume));
  }
  return volumes;
}

// A sorted list without duplicates.
Result<std::vector<std::string>> asNameSet(const Json& v, const std::string& path) {
  FLEETLET_ASSIGN_OR_RETURN(auto names, asStringList(v, path));
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!seen.insert(names[i]).second) {
      return fieldError(index(path, i), "{} is listed twice", quote(names[i]));
    }
  }
  return std::vector<std::string>(seen.begin(), seen.end());
}

std::string_view runtimeName(Runtime r) {
  switch (r) {
    case Runtime::kContainer:
      return "container";
    case Runtime::kNative:
      return "native";
    case Runtime::kWebview:
      return "webview";
  }
  return "container";
}

// `app_names`: every app of the manifest, for dependsOn.
Result<App> parseApp(const std::string& name, const Json& v,
                     const std::set<std::string>& app_names) {
  const std::string path = "apps." + name;
  FLEETLET_ASSIGN_OR_RETURN(
      auto f, Fields::open(v, path,
                           {"runtime", "image", "args", "env", "user", "workingDir", "resources",
                            "restart", "health", "services", "network", "volumes", "dependsOn",
                            "update", "stopGracePeriod", "exec", "bundle", "display", "sandbox"}));
  App app;
  app.name = name;
  if (const Json* runtime = f.find("runtime")) {
    FLEETLET_ASSIGN_OR_RETURN(auto r, asString(*runtime, f.at("runtime")));
    if (r == "container") {
      app.runtime = Runtime::kContainer;
    } else if (r == "native") {
      app.runtime = Runtime::kNative;
    } else if (r == "webview") {
      app.runtime = Runtime::kWebview;
    } else {
      return fieldError(f.at("runtime"),
                        "unknown runtime {} (expected container, native or webview)", quote(r));
    }
  }

  // Which fields each runtime needs and which make no sense for it.
  std::vector<std::string_view> required;
  std::vector<std::string_view> forbidden;
  switch (app.runtime) {
    case Runtime::kContainer:
      required = {"image"};
      forbidden = {"exec", "bundle", "display", "sandbox"};
      break;
    case Runtime::kNative:
      required = {"exec"};
      forbidden = {"image", "bundle", "args", "display"};
      break;
    case Runtime::kWebview:
      required = {"bundle"};
      forbidden = {"image", "exec", "args", "user", "workingDir", "volumes", "sandbox"};
      break;
  }
  for (std::string_view key : required) {
    if (!f.has(key))
      return fieldError(f.at(key), "required for runtime {}", runtimeName(app.runtime));
  }
  for (std::string_view key : forbidden) {
    if (f.has(key)) {
      return fieldError(f.at(key), "not allowed for runtime {}", runtimeName(app.runtime));
    }
  }

  if (const Json* image = f.find("image")) {
    FLEETLET_ASSIGN_OR_RETURN(app.image, asString(*image, f.at("image")));
    if (auto ref = oci::Reference::parse(app.image); !ref) {
      return withPath(f.at("image"), ref.error());
    }
  }
  if (const Json* args = f.find("args")) {
    FLEETLET_ASSIGN_OR_RETURN(app.args, asStringList(*args, f.at("args")));
  }
  if (const Json* env = f.find("env")) {
    if (!env->is_object()) return typeError(f.at("env"), "a map of names to strings", *env);
    for (const auto& [key, value] : env->items()) {
      if (!isEnvName(key)) {
        return fieldError(f.at("env"),
                          "invalid variable name {} (letters, digits and _, not "
                          "starting with a digit)",
                          quote(key));
      }
      const std::string value_path = join(f.at("env"), key);
      if (!value.is_string()) {
        return typeError(value_path, "a string (quote numbers and booleans)", value);
      }
      FLEETLET_ASSIGN_OR_RETURN(app.env[key], asString(value, value_path));
    }
  }
  if (const Json* user = f.find("user")) {
    FLEETLET_ASSIGN_OR_RETURN(app.user, asString(*user, f.at("user")));
    const size_t colon = app.user.find(':');
    auto numeric = [](std::string_view s) {
      if (s.empty() || s.size() > 10) return false;
      if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return false;
      }
      return std::stoull(std::string(s)) <= 4294967294ULL;
    };
    const std::string_view uid = std::string_view(app.user).substr(0, colon);
    const bool ok = numeric(uid) && (colon == std::string::npos ||
                                     numeric(std::string_view(app.user).substr(colon + 1)));
    if (!ok) {
      return fieldError(f.at("user"), "{} is not a numeric uid or uid:gid", quote(app.user));
    }
  }
  if (const Json* wd = f.find("workingDir")) {
    FLEETLET_ASSIGN_OR_RETURN(app.working_dir, asAbsolutePath(*wd, f.at("workingDir")));
  }
  if (const Json* resources = f.find("resources")) {
    FLEETLET_ASSIGN_OR_RETURN(app.resources, parseResources(*resources, f.at("resources")));
  }
  if (const Json* restart = f.find("restart")) {
    FLEETLET_ASSIGN_OR_RETURN(auto rf, Fields::open(*restart, f.at("restart"), {"policy"}));
    if (const Json* policy = rf.find("policy")) {
      FLEETLET_ASSIGN_OR_RETURN(
          size_t p, asEnum(*policy, rf.at("policy"), {"always", "on-failure", "never"}));
      app.restart = p == 0 ? RestartPolicy::kAlways
                           : (p == 1 ? RestartPolicy::kOnFailure : RestartPolicy::kNever);
    }
  }
  if (const Json* health = f.find("health")) {
    FLEETLET_ASSIGN_OR_RETURN(app.health, parseHealth(*health, f.at("health")));
  }
  if (const Json* services = f.find("services")) {
    FLEETLET_ASSIGN_OR_RETURN(app.services, asNameSet(*services, f.at("services")));
    for (size_t i = 0; i < services->size(); ++i) {
      const auto& s = (*services)[i].get_ref<const std::string&>();
      if (s != "events" && s != "blobs" && s != "logs") {
        return fieldError(index(f.at("services"), i),
                          "unknown service {} (expected events, blobs or logs)", quote(s));
      }
    }
  }
  if (const Json* network = f.find("network")) {
    FLEETLET_ASSIGN_OR_RETURN(app.network, parseNetwork(*network, f.at("network"), app_names));
  }
  if (const Json* volumes = f.find("volumes")) {
    FLEETLET_ASSIGN_OR_RETURN(app.volumes, parseVolumes(*volumes, f.at("volumes")));
  }
  if (const Json* deps = f.find("dependsOn")) {
    FLEETLET_ASSIGN_OR_RETURN(app.depends_on, asNameSet(*deps, f.at("dependsOn")));
    for (size_t i = 0; i < deps->size(); ++i) {
      const auto& dep = (*deps)[i].get_ref<const std::string&>();
      if (!app_names.contains(dep)) {
        return fieldError(index(f.at("dependsOn"), i), "unknown app {}", quote(dep));
      }
    }
  }
  if (const Json* update = f.find("update")) {
    FLEETLET_ASSIGN_OR_RETURN(auto uf, Fields::open(*update, f.at("update"), {"strategy"}));
    if (const Json* strategy = uf.find("strategy")) {
      FLEETLET_ASSIGN_OR_RETURN(size_t s, asEnum(*strategy, uf.at("strategy"),
                                                 {"download-then-kill", "kill-then-download"}));
      app.update = s == 0 ? UpdateStrategy::kDownloadThenKill : UpdateStrategy::kKillThenDownload;
    }
  }
  if (const Json* grace = f.find("stopGracePeriod")) {
    FLEETLET_ASSIGN_OR_RETURN(app.stop_grace, asDuration(*grace, f.at("stopGracePeriod")));
  }
  if (const Json* exec = f.find("exec")) {
    FLEETLET_ASSIGN_OR_RETURN(auto ef, Fields::open(*exec, f.at("exec"), {"path", "args"}));
    NativeExec e;
    FLEETLET_ASSIGN_OR_RETURN(const Json* p, ef.require("path"));
    FLEETLET_ASSIGN_OR_RETURN(e.path, asAbsolutePath(*p, ef.at("path")));
    if (const Json* args = ef.find("args")) {
      FLEETLET_ASSIGN_OR_RETURN(e.args, asStringList(*args, ef.at("args")));
    }
    app.exec = std::move(e);
  }
  if (const Json* sandbox = f.find("sandbox")) {
    FLEETLET_ASSIGN_OR_RETURN(auto sf,
                              Fields::open(*sandbox, f.at("sandbox"), {"level", "capabilities"}));
    Sandbox sb;
    if (const Json* level = sf.find("level")) {
      FLEETLET_ASSIGN_OR_RETURN(
          size_t l, asEnum(*level, sf.at("level"), {"process", "sandboxed", "contained"}));
      sb.level = static_cast<SandboxLevel>(l);
    }
    if (const Json* caps = sf.find("capabilities")) {
      FLEETLET_ASSIGN_OR_RETURN(sb.capabilities, asStringList(*caps, sf.at("capabilities")));
      for (size_t i = 0; i < sb.capabilities.size(); ++i) {
        const std::string& c = sb.capabilities[i];
        const bool ok = c.size() > 4 && c.starts_with("CAP_") &&
                        std::all_of(c.begin() + 4, c.end(),
                                    [](char ch) { return (ch >= 'A' && ch <= 'Z') || ch == '_'; });
        if (!ok) {
          return fieldError(index(sf.at("capabilities"), i),
                            "{} is not a capability name like CAP_NET_BIND_SERVICE", quote(c));
        }
      }
      std::sort(sb.capabilities.begin(), sb.capabilities.end());
      sb.capabilities.erase(std::unique(sb.capabilities.begin(), sb.capabilities.end()),
                            sb.capabilities.end());
    }
    app.sandbox = sb;
  }
  if (const Json* bundle = f.find("bundle")) {
    FLEETLET_ASSIGN_OR_RETURN(auto bf, Fields::open(*bundle, f.at("bundle"), {"url", "sha256"}));
    Bundle b;
    FLEETLET_ASSIGN_OR_RETURN(const Json* url, bf.require("url"));
    FLEETLET_ASSIGN_OR_RETURN(b.url, asString(*url, bf.at("url")));
    const bool http = b.url.starts_with("http://") && b.url.size() > 7;
    const bool https = b.url.starts_with("https://") && b.url.size() > 8;
    // file:///absolute/path: a bundle already on the node; blob://<handle>: one in the node's
    // blob store (both for air-gapped nodes).
    const bool file = b.url.starts_with("file:///") && b.url.size() > 8;
    const bool blob =
        b.url.starts_with("blob://") && b.url.size() > 7 &&
        b.url.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
                                7) == std::string::npos;
    if ((!http && !https && !file && !blob) ||
        b.url.find_first_of(" \t\r\n") != std::string::npos) {
      return fieldError(bf.at("url"), "{} is not an http://, https://, file:/// or blob:// URL",
                        quote(b.url));
    }
    FLEETLET_ASSIGN_OR_RETURN(const Json* sha, bf.require("sha256"));
    FLEETLET_ASSIGN_OR_RETURN(b.sha256, asString(*sha, bf.at("sha256")));
    if (b.sha256.size() != 64 || !isLowerHex(b.sha256)) {
      return fieldError(bf.at("sha256"), "{} is not 64 lower-case hex digits", quote(b.sha256));
    }
    app.bundle = std::move(b);
  }
  if (const Json* display = f.find("display")) {
    FLEETLET_ASSIGN_OR_RETURN(auto df, Fields::open(*display, f.at("display"), {"priority"}));
    Display d;
    if (const Json* priority = df.find("priority")) {
      FLEETLET_ASSIGN_OR_RETURN(d.priority, asIntInRange(*priority, df.at("priority"), 0, 1000));
    }
    app.display = d;
  }
  return app;
}

// ---- whole-manifest rules ----

Status checkHostPorts(const std::map<std::string, App>& apps) {
  // (protocol, host port) -> "apps.<name>" / "apps.<name>.network.expose[i]" first using it.
  std::map<std::pair<std::string, uint16_t>, std::pair<std::string, size_t>> used;
  for (const auto& [name, app] : apps) {
    for (size_t i = 0; i < app.network.expose.size(); ++i) {
      const ExposedPort& p = app.network.expose[i];
      auto [it, inserted] = used.emplace(std::pair{p.protocol, p.host_port}, std::pair{name, i});
      if (inserted) continue;
      const std::string path = fmt::format("apps.{}.network.expose[{}].hostPort", name, i);
      const auto& [other, other_index] = it->second;
      if (other == name) {
        return fieldError(path, "{} is already used by apps.{}.network.expose[{}]", p.host_port,
                          other, other_index);
      }
      return fieldError(path, "{} is already used by apps.{}", p.host_port, other);
    }
  }
  return {};
}

// Kahn's algorithm, ready apps taken by name. Apps left over lie on or behind a cycle; walking
// dependencies from the first of them must repeat an app, which names the cycle.
Result<std::vector<std::string>> startOrder(const std::map<std::string, App>& apps) {
  std::map<std::string, size_t> waiting;  // unstarted dependencies per app
  std::map<std::string, std::vector<std::string>> dependents;
  std::set<std::string> ready;
  for (const auto& [name, app] : apps) {
    waiting[name] = app.depends_on.size();
    for (const auto& dep : app.depends_on) dependents[dep].push_back(name);
    if (app.depends_on.empty()) ready.insert(name);
  }
  std::vector<std::string> order;
  order.reserve(apps.size());
  while (!ready.empty()) {
    std::string next = *ready.begin();
    ready.erase(ready.begin());
    for (const auto& d : dependents[next]) {
      if (--waiting[d] == 0) ready.insert(d);
    }
    order.push_back(std::move(next));
  }
  if (order.size() == apps.size()) return order;

  std::set<std::string> left;
  for (const auto& [name, n] : waiting) {
    if (n > 0) left.insert(name);
  }
  std::vector<std::string> walk;
  std::map<std::string, size_t> position;
  std::string at = *left.begin();
  while (!position.contains(at)) {
    position[at] = walk.size();
    walk.push_back(at);
    for (const auto& dep : apps.at(at).depends_on) {
      if (left.contains(dep)) {
        at = dep;
        break;
      }
    }
  }
  std::string cycle;
  for (size_t i = position[at]; i < walk.size(); ++i) cycle += walk[i] + " -> ";
  cycle += at;
  return fieldError(fmt::format("apps.{}.dependsOn", at), "cycle {}", cycle);
}

std::string_view egressName(Network::Egress e) {
  switch (e) {
    case Network::Egress::kAll:
      return "all";
    case Network::Egress::kLocal:
      return "local";
    case Network::Egress::kNone:
      return "none";
  }
  return "all";
}

std::string_view restartName(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::kAlways:
      return "always";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kNever:
      return "never";
  }
  return "always";
}

Result<NodeState> parseDocument(const Json& doc) {
  FLEETLET_ASSIGN_OR_RETURN(auto f, Fields::open(doc, "",
                                                 {"apiVersion", "kind", "revision", "node",
                                                  "expires", "rollback", "apps"}));
  FLEETLET_ASSIGN_OR_RETURN(const Json* api, f.require("apiVersion"));
  FLEETLET_ASSIGN_OR_RETURN(auto api_version, asString(*api, "apiVersion"));
  if (api_version != kApiVersion) {
    return fieldError("apiVersion", "unsupported {} (expected {})", quote(api_version),
                      kApiVersion);
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* kind_json, f.require("kind"));
  FLEETLET_ASSIGN_OR_RETURN(auto kind, asString(*kind_json, "kind"));
  if (kind != kKind) return fieldError("kind", "unsupported {} (expected {})", quote(kind), kKind);

  NodeState state;
  FLEETLET_ASSIGN_OR_RETURN(const Json* revision, f.require("revision"));
  FLEETLET_ASSIGN_OR_RETURN(state.revision, asInt(*revision, "revision"));
  if (state.revision < 1) {
    return fieldError("revision", "{} is not a positive integer", state.revision);
  }
  if (const Json* node = f.find("node")) {
    FLEETLET_ASSIGN_OR_RETURN(state.node, asString(*node, "node"));
    if (state.node.empty() || state.node.size() > 253) {
      return fieldError("node", "must be 1 to 253 characters");
    }
  }
  if (const Json* expires = f.find("expires")) {
    FLEETLET_ASSIGN_OR_RETURN(auto text, asString(*expires, "expires"));
    auto at = parseRfc3339(text);
    if (!at) return withPath("expires", at.error());
    state.expires = *at;
  }
  if (const Json* rollback = f.find("rollback")) {
    FLEETLET_ASSIGN_OR_RETURN(auto r, Fields::open(*rollback, "rollback", {"window"}));
    FLEETLET_ASSIGN_OR_RETURN(const Json* window, r.require("window"));
    FLEETLET_ASSIGN_OR_RETURN(auto w, asDuration(*window, r.at("window")));
    if (w.count() <= 0) return fieldError(r.at("window"), "must be longer than 0s");
    state.rollback_window = w;
  }

  FLEETLET_ASSIGN_OR_RETURN(const Json* apps, f.require("apps"));
  if (!apps->is_object()) return typeError("apps", "a map of app names to apps", *apps);
  std::set<std::string> names;
  for (const auto& [name, value] : apps->items()) names.insert(name);
  for (const auto& [name, value] : apps->items()) {
    if (auto st = checkAppName(name); !st) return withPath("apps", st.error());
    FLEETLET_ASSIGN_OR_RETURN(App app, parseApp(name, value, names));
    state.apps.emplace(name, std::move(app));
  }
  FLEETLET_RETURN_IF_ERROR(checkHostPorts(state.apps));
  FLEETLET_ASSIGN_OR_RETURN(state.start_order, startOrder(state.apps));
  for (auto& [name, app] : state.apps) {
    app.spec_hash =
        sha256Hex(canonicalJson(app).dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return state;
}

}  // namespace

Status checkAppName(std::string_view name) {
  if (isDnsLabel(name)) return {};
  return fail(ErrorCode::kInvalidArgument,
              "invalid app name {} (lower-case letters, digits and '-', starting and ending with a "
              "letter or digit, at most 63)",
              quote(name.substr(0, 100)));
}

Result<NodeState> parseNodeState(std::string_view text, std::string_view source) {
  auto result = [&]() -> Result<NodeState> {
    FLEETLET_ASSIGN_OR_RETURN(Json doc, manifestToJson(text));
    return parseDocument(doc);
  }();
  if (!result && !source.empty()) return std::unexpected(result.error().wrap("{}", source));
  return result;
}

std::string_view toString(SandboxLevel level) {
  switch (level) {
    case SandboxLevel::kProcess:
      return "process";
    case SandboxLevel::kSandboxed:
      return "sandboxed";
    case SandboxLevel::kContained:
      return "contained";
  }
  return "?";
}

Json canonicalJson(const App& app) {
  auto optional = [](const auto& v) -> Json {
    if (v) return *v;
    return nullptr;
  };
  std::string image = app.image;
  if (auto ref = oci::Reference::parse(app.image)) image = ref->toString();

  Json health = nullptr;
  if (app.health) {
    const HealthCheck& h = *app.health;
    health = Json::object();
    switch (h.kind) {
      case HealthCheck::Kind::kHttp:
        health["http"] = {{"port", h.port}, {"path", h.path}};
        break;
      case HealthCheck::Kind::kTcp:
        health["tcp"] = {{"port", h.port}};
        break;
      case HealthCheck::Kind::kExec:
        health["exec"] = {{"command", h.command}};
        break;
    }
    health["interval"] = formatDuration(h.interval);
    health["timeout"] = formatDuration(h.timeout);
    health["failures"] = h.failures;
  }
  Json expose = Json::array();
  for (const auto& p : app.network.expose) {
    expose.push_back({{"port", p.port}, {"hostPort", p.host_port}, {"protocol", p.protocol}});
  }
  Json network = {{"egress", egressName(app.network.egress)}, {"expose", expose}};
  // allow and mode are set only when not the default, so that the spec hash of apps that do
  // not use them stays what it was before these fields existed (no restart on upgrade). A
  // host-mode app has nothing else (egress and expose must not be set with it).
  if (!app.network.allow.empty()) network["allow"] = app.network.allow;
  if (app.network.mode == Network::Mode::kHost) network = {{"mode", "host"}};
  Json volumes = Json::array();
  for (const auto& v : app.volumes) {
    volumes.push_back({{"name", v.name}, {"path", v.path}, {"readOnly", v.read_only}});
  }
  Json exec = nullptr;
  if (app.exec) exec = {{"path", app.exec->path}, {"args", app.exec->args}};
  Json bundle = nullptr;
  if (app.bundle) bundle = {{"url", app.bundle->url}, {"sha256", app.bundle->sha256}};
  std::vector<std::string> services = app.services;
  std::sort(services.begin(), services.end());
  std::vector<std::string> depends_on = app.depends_on;
  std::sort(depends_on.begin(), depends_on.end());

  // Unset is null, so that the canonical JSON of an app (without "name") is a valid app again.
  auto unless_empty = [](const auto& v) -> Json {
    if (v.empty()) return nullptr;
    return v;
  };
  Json canonical = {
      {"name", app.name},
      {"runtime", runtimeName(app.runtime)},
      {"image", unless_empty(image)},
      {"args", unless_empty(app.args)},
      {"env", app.env},
      {"user", unless_empty(app.user)},
      {"workingDir", unless_empty(app.working_dir)},
      {"resources",
       {{"cpu", optional(app.resources.cpu)},
        {"memory", optional(app.resources.memory_bytes)},
        {"pids", optional(app.resources.pids)}}},
      {"restart", {{"policy", restartName(app.restart)}}},
      {"health", health},
      {"services", services},
      {"network", network},
      {"volumes", unless_empty(volumes)},
      {"dependsOn", depends_on},
      {"update",
       {{"strategy", app.update == UpdateStrategy::kKillThenDownload ? "kill-then-download"
                                                                     : "download-then-kill"}}},
      {"stopGracePeriod", formatDuration(app.stop_grace)},
      {"exec", exec},
      {"bundle", bundle},
  };
  // Only when set: the spec hash of every app without it stays what it was before it existed.
  if (app.display) canonical["display"] = {{"priority", app.display->priority}};
  if (app.sandbox) {
    canonical["sandbox"] = {{"level", toString(app.sandbox->level)}};
    if (!app.sandbox->capabilities.empty()) {
      canonical["sandbox"]["capabilities"] = app.sandbox->capabilities;
    }
  }
  return canonical;
}

}  // namespace fleetlet::manifest
