#include "shim/spec.h"

#include <sys/resource.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fleetlet::shim {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::string_view kSandboxAnnotation = "io.fleetlet.sandbox";
constexpr std::string_view kStateDirAnnotation = "io.fleetlet.sandbox.state-dir";

Result<int> rlimitResource(std::string_view name) {
  static const std::map<std::string_view, int> kNames = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  auto it = kNames.find(name);
  if (it == kNames.end()) {
    return fail(ErrorCode::kInvalidArgument, "process.rlimits: unknown type '{}'", name);
  }
  return it->second;
}

Result<Resources> readResources(const Json& r, std::string_view path) {
  Resources out;
  if (!r.is_object()) return out;
  if (auto m = r.find("memory"); m != r.end() && m->is_object()) {
    if (auto l = m->find("limit"); l != m->end() && l->is_number_integer()) {
      out.memory_limit = l->get<std::int64_t>();
    }
  }
  if (auto c = r.find("cpu"); c != r.end() && c->is_object()) {
    if (auto v = c->find("shares"); v != c->end() && v->is_number_unsigned()) {
      out.cpu_shares = v->get<std::uint64_t>();
    }
    if (auto v = c->find("quota"); v != c->end() && v->is_number_integer()) {
      out.cpu_quota = v->get<std::int64_t>();
    }
    if (auto v = c->find("period"); v != c->end() && v->is_number_unsigned()) {
      out.cpu_period = v->get<std::uint64_t>();
    }
  }
  if (auto p = r.find("pids"); p != r.end() && p->is_object()) {
    if (auto v = p->find("limit"); v != p->end() && v->is_number_integer()) {
      out.pids_limit = v->get<std::int64_t>();
    }
  }
  if (out.memory_limit && *out.memory_limit == 0) {
    return fail(ErrorCode::kInvalidArgument, "{}.memory.limit: 0 would stop every allocation",
                path);
  }
  return out;
}

Result<NativeSpec> parseJsonSpec(const Json& spec, const fs::path& bundle) {
  NativeSpec out;
  if (!spec.is_object()) return fail(ErrorCode::kInvalidArgument, "config.json: not an object");
  auto root = spec.find("root");
  if (root == spec.end() || !root->is_object() || !root->contains("path") ||
      !(*root)["path"].is_string()) {
    return fail(ErrorCode::kInvalidArgument, "config.json: root.path is missing");
  }
  fs::path root_path = (*root)["path"].get<std::string>();
  out.root = root_path.is_absolute() ? root_path.lexically_normal()
                                     : (bundle / root_path).lexically_normal();
  if (out.root.string().size() > 1 && out.root.string().ends_with('/')) {
    out.root = out.root.parent_path();
  }

  auto process = spec.find("process");
  if (process == spec.end() || !process->is_object()) {
    return fail(ErrorCode::kInvalidArgument, "config.json: process is missing");
  }
  auto args = process->find("args");
  if (args == process->end() || !args->is_array() || args->empty()) {
    return fail(ErrorCode::kInvalidArgument, "config.json: process.args is missing or empty");
  }
  for (const auto& a : *args) {
    if (!a.is_string()) return fail(ErrorCode::kInvalidArgument, "process.args: not a string");
    out.args.push_back(a.get<std::string>());
  }
  if (auto env = process->find("env"); env != process->end() && env->is_array()) {
    for (const auto& e : *env) {
      if (e.is_string()) out.env.push_back(e.get<std::string>());
    }
  }
  if (auto cwd = process->find("cwd"); cwd != process->end() && cwd->is_string()) {
    out.cwd = cwd->get<std::string>();
    if (!out.cwd.is_absolute()) {
      return fail(ErrorCode::kInvalidArgument, "process.cwd '{}' is not absolute",
                  out.cwd.string());
    }
  }
  out.terminal = process->value("terminal", false);
  out.no_new_privileges = process->value("noNewPrivileges", false);
  if (auto user = process->find("user"); user != process->end() && user->is_object()) {
    out.uid = user->value("uid", 0u);
    out.gid = user->value("gid", 0u);
    if (auto g = user->find("additionalGids"); g != user->end() && g->is_array()) {
      for (const auto& v : *g) {
        if (v.is_number_unsigned()) out.additional_gids.push_back(v.get<gid_t>());
      }
    }
  }
  if (auto caps = process->find("capabilities"); caps != process->end() && caps->is_object()) {
    if (auto b = caps->find("bounding"); b != caps->end() && b->is_array()) {
      for (const auto& c : *b) {
        if (c.is_string()) out.bounding_caps.push_back(c.get<std::string>());
      }
    }
    if (auto a = caps->find("ambient"); a != caps->end() && a->is_array()) {
      for (const auto& c : *a) {
        if (c.is_string()) out.ambient_caps.push_back(c.get<std::string>());
      }
    }
  }
  if (auto rl = process->find("rlimits"); rl != process->end() && rl->is_array()) {
    for (const auto& r : *rl) {
      if (!r.is_object() || !r.contains("type") || !r["type"].is_string()) {
        return fail(ErrorCode::kInvalidArgument, "process.rlimits: entry without a type");
      }
      FLEETLET_ASSIGN_OR_RETURN(int resource, rlimitResource(r["type"].get<std::string>()));
      out.rlimits.push_back(
          {resource, r.value("soft", std::uint64_t{0}), r.value("hard", std::uint64_t{0})});
    }
  }

  if (auto mounts = spec.find("mounts"); mounts != spec.end() && mounts->is_array()) {
    for (const auto& m : *mounts) {
      if (!m.is_object()) continue;
      std::string type = m.value("type", "");
      std::vector<std::string> options = m.value("options", std::vector<std::string>{});
      bool bind = type == "bind" ||
                  std::find(options.begin(), options.end(), "bind") != options.end() ||
                  std::find(options.begin(), options.end(), "rbind") != options.end();
      // Container-style mounts (proc, sysfs, tmpfs on /dev, ...) make no sense on the host
      // root: native mode honours bind mounts only.
      if (!bind) continue;
      BindMount b{m.value("source", ""), m.value("destination", ""), false};
      if (!b.source.is_absolute() || !b.destination.is_absolute()) {
        return fail(ErrorCode::kInvalidArgument,
                    "mounts: bind mount '{}' -> '{}' needs absolute paths", b.source.string(),
                    b.destination.string());
      }
      b.read_only = std::find(options.begin(), options.end(), "ro") != options.end();
      out.binds.push_back(std::move(b));
    }
  }

  if (auto annotations = spec.find("annotations");
      annotations != spec.end() && annotations->is_object()) {
    if (auto level = annotations->find(kSandboxAnnotation);
        level != annotations->end() && level->is_string()) {
      std::string v = level->get<std::string>();
      if (v == "process") {
        out.level = SandboxLevel::kProcess;
      } else if (v == "sandboxed") {
        out.level = SandboxLevel::kSandboxed;
      } else if (v == "contained") {
        out.level = SandboxLevel::kContained;
      } else {
        return fail(ErrorCode::kInvalidArgument,
                    "annotation {}: '{}' is not one of process, sandboxed, contained",
                    kSandboxAnnotation, v);
      }
    }
    if (auto dir = annotations->find(kStateDirAnnotation);
        dir != annotations->end() && dir->is_string()) {
      out.state_dir = fs::path(dir->get<std::string>());
      if (!out.state_dir->is_absolute() || out.state_dir->string().size() < 2) {
        return fail(ErrorCode::kInvalidArgument, "annotation {}: '{}' is not an absolute path",
                    kStateDirAnnotation, out.state_dir->string());
      }
    }
  }

  if (auto linux = spec.find("linux"); linux != spec.end() && linux->is_object()) {
    out.cgroups_path = linux->value("cgroupsPath", "");
    if (auto r = linux->find("resources"); r != linux->end()) {
      FLEETLET_ASSIGN_OR_RETURN(out.resources, readResources(*r, "linux.resources"));
    }
    if (auto devices = linux->find("devices"); devices != linux->end() && devices->is_array()) {
      for (const auto& d : *devices) {
        if (d.is_object() && d.contains("path") && d["path"].is_string()) {
          out.devices.push_back({d["path"].get<std::string>()});
        }
      }
    }
    if (auto nss = linux->find("namespaces"); nss != linux->end() && nss->is_array()) {
      for (const auto& ns : *nss) {
        if (ns.is_object() && ns.value("type", "") == "network" && ns.contains("path") &&
            ns["path"].is_string() && !ns["path"].get<std::string>().empty()) {
          out.netns_path = ns["path"].get<std::string>();
        }
      }
    }
  }
  if (out.cgroups_path.find("..") != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "linux.cgroupsPath '{}' contains '..'",
                out.cgroups_path);
  }
  return out;
}

}  // namespace

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

Result<NativeSpec> parseSpec(std::string_view json, const fs::path& bundle) {
  Json spec = Json::parse(json, nullptr, false);
  if (spec.is_discarded()) {
    return fail(ErrorCode::kInvalidArgument, "config.json in {} is not valid JSON",
                bundle.string());
  }
  try {
    return parseJsonSpec(spec, bundle);
  } catch (const Json::exception& e) {
    return fail(ErrorCode::kInvalidArgument, "config.json in {}: {}", bundle.string(), e.what());
  }
}

Result<NativeSpec> loadSpec(const fs::path& bundle) {
  std::ifstream in(bundle / "config.json");
  if (!in) return fail(ErrorCode::kNotFound, "no config.json in bundle {}", bundle.string());
  std::stringstream text;
  text << in.rdbuf();
  return parseSpec(text.str(), bundle);
}

Result<NativeSpec> parseProcessSpec(std::string_view process_json) {
  Json process = Json::parse(process_json, nullptr, false);
  if (process.is_discarded() || !process.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "exec: the process spec is not a JSON object");
  }
  try {
    return parseJsonSpec(Json{{"root", {{"path", "/"}}}, {"process", std::move(process)}}, "/");
  } catch (const Json::exception& e) {
    return fail(ErrorCode::kInvalidArgument, "exec: process spec: {}", e.what());
  }
}

Result<Resources> parseResources(std::string_view json) {
  Json r = Json::parse(json, nullptr, false);
  if (r.is_discarded() || !r.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "update: resources are not a JSON object");
  }
  try {
    return readResources(r, "resources");
  } catch (const Json::exception& e) {
    return fail(ErrorCode::kInvalidArgument, "update: resources: {}", e.what());
  }
}

uid_t dynamicUid(std::string_view ns, std::string_view id) {
  // FNV-1a: stable across shim versions and machines.
  std::uint32_t h = 2166136261u;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 16777619u;
    }
  };
  mix(ns);
  mix("/");
  mix(id);
  constexpr uid_t kFirst = 61184;
  constexpr uid_t kCount = 65519 - 61184 + 1;
  return kFirst + h % kCount;
}

}  // namespace fleetlet::shim
