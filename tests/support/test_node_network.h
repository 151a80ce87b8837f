#pragma once
// TestNodeNetwork: a node of its own for app-network tests of fleetletd. A "node" network
// namespace stands in for the host (fleetletd runs its CNI plugins there: the bridge, the
// nftables table, port maps and forwarding are the test's own), and a directory of its own
// holds the apps' namespace pins, so tests run in parallel and never touch the host's
// network or /run/netns/fleetlet-*. The destructor removes every pin and the node namespace
// (its veths, bridge and rules go with it).
// Needs root.

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "error/error.h"

namespace fleetlet::testing {

class TestNodeNetwork {
 public:
  // Creates the node namespace (/run/netns/<unique>-node, `lo` up) and the pin directory.
  static Result<TestNodeNetwork> create(const std::filesystem::path& dir);
  TestNodeNetwork(TestNodeNetwork&& other) noexcept;
  TestNodeNetwork& operator=(TestNodeNetwork&&) = delete;
  TestNodeNetwork(const TestNodeNetwork&) = delete;
  ~TestNodeNetwork();

  // fleetletd's flags: --cni-netns, --netns-dir, --cni-conf-dir (an empty directory: the
  // built-in network), --cni-bin-dir /usr/lib/cni.
  std::vector<std::string> flags() const;

  const std::filesystem::path& node() const { return node_; }
  const std::filesystem::path& netnsDir() const { return netns_dir_; }
  // The app names whose namespace is pinned (fleetlet-<app>).
  std::set<std::string> pinnedApps() const;
  // Interface names in the node namespace (veths of attached apps, the bridge, lo).
  std::set<std::string> nodeLinks() const;
  // host-local's leases (addresses) under `ipam_dir` (fleetletd's <data>/cni/networks).
  static std::set<std::string> leases(const std::filesystem::path& ipam_dir);
  // Chains of the fleetlet nftables table in the node namespace ("app:<app>:eth0", ...);
  // empty when there is no table.
  std::set<std::string> nftChains() const;
  // The addresses ("10.90.0.5") of eth0 inside an app's pinned namespace.
  std::string appAddress(const std::string& app) const;
  // Whether a TCP connection from inside `netns` to address:port is accepted (5 s at most).
  static bool canConnect(const std::filesystem::path& netns, const std::string& address,
                         uint16_t port);

 private:
  TestNodeNetwork(std::filesystem::path node, std::filesystem::path netns_dir,
                  std::filesystem::path conf_dir)
      : node_(std::move(node)), netns_dir_(std::move(netns_dir)), conf_dir_(std::move(conf_dir)) {}
  void cleanUp();

  std::filesystem::path node_;
  std::filesystem::path netns_dir_;
  std::filesystem::path conf_dir_;
};

}  // namespace fleetlet::testing
