#pragma once
// Where an executor's network comes from: the first *.conflist (by file name) in the
// configuration directory, or, when there is none, fleetlet's built-in default network.

#include <filesystem>
#include <string>

#include "error/error.h"
#include "spec/types.h"

namespace fleetlet::cni {

inline constexpr const char* kDefaultConfDir = "/etc/fleetlet/cni";

// The built-in network (docs/networking.md): bridge (gateway, masquerade, hairpin) with
// host-local addresses, portmap (the `portMappings` capability) and fleetlet-firewall (the
// `fleetletFirewall` capability).
struct DefaultNetworkOptions {
  std::string name = "fleetlet";
  std::string bridge = "fleetlet0";
  std::string subnet = "10.90.0.0/16";
  // host-local's lease directory (its own default is /var/lib/cni/networks).
  std::filesystem::path ipam_data_dir = "/var/lib/fleetlet/cni/networks";
};
// Fails (kInvalidArgument) only for a bad name.
Result<NetworkConfigList> defaultNetwork(const DefaultNetworkOptions& options = {});

// The first *.conflist in `conf_dir` in file-name order, parsed and validated; the default
// network when the directory is missing or holds none. A conflist that does not parse is an
// error naming the file (never a silent fall-back to the default).
Result<NetworkConfigList> loadNetwork(const std::filesystem::path& conf_dir,
                                      const DefaultNetworkOptions& defaults = {});

}  // namespace fleetlet::cni
