#include "skel/skel.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>

extern char** environ;

namespace fleetlet::cni {
namespace {

SkelOutcome errorOutcome(int code, std::string msg, std::string details = {},
                         std::string version = {}) {
  ErrorObject object{.cni_version = std::move(version),
                     .code = code,
                     .msg = std::move(msg),
                     .details = std::move(details)};
  return SkelOutcome{.exit_code = 1, .out = dumpJson(object.toJson())};
}

std::string envOr(const std::map<std::string, std::string>& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

}  // namespace

SkelOutcome runPlugin(PluginHandlers& handlers, const std::map<std::string, std::string>& env,
                      std::string_view stdin_data, std::string_view about) {
  std::string command = envOr(env, "CNI_COMMAND");
  if (command.empty()) {
    return errorOutcome(error_code::kInvalidEnvironment, "CNI_COMMAND is not set",
                        std::string(about));
  }
  if (command == "VERSION") {
    Json versions = Json::array();
    for (auto v : kSupportedVersions) versions.push_back(v);
    return SkelOutcome{.exit_code = 0,
                       .out = dumpJson(Json{{"cniVersion", std::string(kLatestVersion)},
                                            {"supportedVersions", versions}})};
  }
  if (command != "ADD" && command != "CHECK" && command != "DEL") {
    return errorOutcome(
        error_code::kInvalidEnvironment,
        fmt::format("CNI_COMMAND \"{}\" is not ADD, CHECK, DEL or VERSION", command));
  }
  SkelRequest request{.container_id = envOr(env, "CNI_CONTAINERID"),
                      .netns = envOr(env, "CNI_NETNS"),
                      .ifname = envOr(env, "CNI_IFNAME"),
                      .args = envOr(env, "CNI_ARGS"),
                      .path = envOr(env, "CNI_PATH"),
                      .config = Json(),
                      .cni_version = ""};
  std::vector<std::string> missing;
  if (request.container_id.empty()) missing.emplace_back("CNI_CONTAINERID");
  if (request.ifname.empty()) missing.emplace_back("CNI_IFNAME");
  if (request.netns.empty() && command != "DEL") missing.emplace_back("CNI_NETNS");
  if (!missing.empty()) {
    return errorOutcome(
        error_code::kInvalidEnvironment,
        fmt::format("required environment variables missing: {}", fmt::join(missing, ", ")));
  }
  auto config = parseJson(stdin_data, "stdin");
  if (!config || !config->is_object()) {
    return errorOutcome(error_code::kDecodeFailure, "cannot decode the network configuration",
                        config ? "stdin: expected a JSON object" : config.error().message());
  }
  request.config = std::move(*config);
  request.cni_version = request.config.value("cniVersion", "");
  if (!isSupportedVersion(request.cni_version)) {
    return errorOutcome(error_code::kIncompatibleVersion,
                        fmt::format("cniVersion \"{}\" is not supported", request.cni_version),
                        fmt::format("supported: {}", fmt::join(kSupportedVersions, ", ")));
  }
  auto failed = [&](const Error& err) {
    return errorOutcome(toCniCode(err.code()), err.message(), std::string(), request.cni_version);
  };
  if (command == "ADD") {
    auto result = handlers.add(request);
    if (!result) return failed(result.error());
    return SkelOutcome{.exit_code = 0, .out = dumpJson(*result)};
  }
  Status st = command == "CHECK" ? handlers.check(request) : handlers.del(request);
  if (!st) return failed(st.error());
  return SkelOutcome{.exit_code = 0, .out = ""};
}

int pluginMain(PluginHandlers& handlers, std::string_view about) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos || !entry.starts_with("CNI_")) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  std::string input;
  if (env["CNI_COMMAND"] != "VERSION" || ::isatty(STDIN_FILENO) == 0) {
    std::array<char, 65536> buf{};
    ssize_t n = 0;
    while ((n = ::read(STDIN_FILENO, buf.data(), buf.size())) > 0) {
      input.append(buf.data(), static_cast<size_t>(n));
    }
  }
  SkelOutcome outcome = runPlugin(handlers, env, input, about);
  if (!outcome.out.empty()) {
    (void)std::fwrite(outcome.out.data(), 1, outcome.out.size(), stdout);
    (void)std::fputc('\n', stdout);
  }
  (void)std::fflush(stdout);
  return outcome.exit_code;
}

}  // namespace fleetlet::cni
