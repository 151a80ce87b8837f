// fleetlet-firewall: the chained CNI plugin that enforces an app's network.egress and counts
// its traffic (cni/src/firewall, docs/networking.md). Run by a CNI runtime, never by hand:
// CNI_COMMAND and friends in the environment, the configuration on stdin.
#include <fmt/format.h>

#include <string_view>

#include "firewall/nftables.h"
#include "firewall/plugin.h"
#include "skel/skel.h"
#include "version/version.h"

int main(int argc, char** argv) {
  // CNI runtimes pass no arguments; --version is for the person at the terminal (the CNI
  // VERSION command reports the spec versions instead).
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    fmt::print("{}\n", fleetlet::versionLine("fleetlet-firewall"));
    return 0;
  }
  fleetlet::cni::firewall::LibNftables nft;
  fleetlet::cni::firewall::SystemHostNetwork host;
  fleetlet::cni::firewall::FirewallPlugin plugin(nft, host,
                                                 fleetlet::cni::firewall::kDefaultLockPath);
  return fleetlet::cni::pluginMain(plugin, "fleetlet-firewall: nftables egress policy per app");
}
