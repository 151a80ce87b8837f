#pragma once
// fleetlet-firewall's commands (a chained CNI plugin; see ruleset.h for the nftables layout
// and policy.h for the policy). ADD installs the attachment's chain for the addresses in
// prevResult and prints prevResult unchanged; CHECK verifies it is all there; DEL removes it
// (and the table with the last attachment), also without prevResult and when already gone.
// Every command holds an exclusive flock on `lock_path` while it reads and changes the table,
// so concurrent plugin runs for different containers do not race.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "firewall/nftables.h"
#include "firewall/policy.h"
#include "firewall/ruleset.h"
#include "skel/skel.h"

namespace fleetlet::cni::firewall {

// The host's view the plugin needs, behind an interface for tests.
class HostNetwork {
 public:
  virtual ~HostNetwork() = default;
  // The networks of the interfaces of the calling namespace, loopback excluded.
  virtual Result<std::vector<Cidr>> directlyConnected() = 0;
  // Makes bridged IPv4/IPv6 traffic pass the inet hooks (br_netfilter's
  // net.bridge.bridge-nf-call-ip{,6}tables = 1). kFailedPrecondition when br_netfilter is
  // not loaded.
  virtual Status ensureBridgeNetfilter(bool ipv6) = 0;
};

class SystemHostNetwork final : public HostNetwork {
 public:
  Result<std::vector<Cidr>> directlyConnected() override;
  Status ensureBridgeNetfilter(bool ipv6) override;
};

inline constexpr const char* kDefaultLockPath = "/run/fleetlet/firewall.lock";

class FirewallPlugin final : public PluginHandlers {
 public:
  FirewallPlugin(Nftables& nft, HostNetwork& host, std::filesystem::path lock_path)
      : nft_(nft), host_(host), lock_path_(std::move(lock_path)) {}

  Result<Json> add(const SkelRequest& request) override;
  Status check(const SkelRequest& request) override;
  Status del(const SkelRequest& request) override;

 private:
  // The rules for `request`: its policy (config, then runtimeConfig), addresses
  // (prevResult.ips) and, for egress local, the node's networks.
  Result<AttachmentRules> rulesFor(const SkelRequest& request, bool need_local);
  Result<TableState> readState();

  Nftables& nft_;
  HostNetwork& host_;
  std::filesystem::path lock_path_;
};

}  // namespace fleetlet::cni::firewall
