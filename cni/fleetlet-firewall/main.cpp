// fleetlet-firewall: the chained CNI plugin that enforces an app's network.egress and counts
// its traffic (cni/src/firewall, docs/networking.md). Run by a CNI runtime, never by hand:
// CNI_COMMAND and friends in the environment, the configuration on stdin.
#include "firewall/nftables.h"
#include "firewall/plugin.h"
#include "skel/skel.h"

int main() {
  fleetlet::cni::firewall::LibNftables nft;
  fleetlet::cni::firewall::SystemHostNetwork host;
  fleetlet::cni::firewall::FirewallPlugin plugin(nft, host,
                                                 fleetlet::cni::firewall::kDefaultLockPath);
  return fleetlet::cni::pluginMain(plugin, "fleetlet-firewall: nftables egress policy per app");
}
