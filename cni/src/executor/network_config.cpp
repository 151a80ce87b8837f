#include "executor/network_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "firewall/policy.h"

namespace fleetlet::cni {

Result<NetworkConfigList> defaultNetwork(const DefaultNetworkOptions& options) {
  Json conf = {
      {"cniVersion", std::string(kLatestVersion)},
      {"name", options.name},
      {"plugins",
       Json::array(
           {Json{{"type", "bridge"},
                 {"bridge", options.bridge},
                 {"isGateway", true},
                 {"ipMasq", true},
                 {"hairpinMode", true},
                 {"ipam",
                  {{"type", "host-local"},
                   {"ranges", Json::array({Json::array({Json{{"subnet", options.subnet}}})})},
                   {"routes", Json::array({Json{{"dst", "0.0.0.0/0"}}})},
                   {"dataDir", options.ipam_data_dir.string()}}}},
            Json{{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}},
            Json{{"type", "fleetlet-firewall"},
                 {"capabilities", {{std::string(firewall::kCapability), true}}}}})}};
  return parseConfListJson(conf, "built-in default network");
}

Result<NetworkConfigList> loadNetwork(const std::filesystem::path& conf_dir,
                                      const DefaultNetworkOptions& defaults) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(conf_dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return failErrno(ec.value(), "list CNI configuration directory {}", conf_dir.string());
  }
  if (!ec) {
    for (const auto& entry : it) {
      if (entry.path().extension() == ".conflist") files.push_back(entry.path());
    }
  }
  if (files.empty()) return defaultNetwork(defaults);
  std::ranges::sort(files);
  std::ifstream in(files.front(), std::ios::binary);
  if (!in) return fail(ErrorCode::kInternal, "read {}: cannot open", files.front().string());
  std::stringstream text;
  text << in.rdbuf();
  return parseConfList(text.str(), files.front().string());
}

}  // namespace fleetlet::cni
