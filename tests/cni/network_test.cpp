// Integration: the executor running the real CNI plugins (bridge, host-local, portmap from
// /usr/lib/cni) and fleetlet-firewall (this build) on real nftables and network namespaces.
//
// Each test builds its own little node: a "node" namespace that stands in for the host (the
// plugins run there, so the bridge, nftables table, iptables rules and forwarding sysctl are
// the test's own), two app namespaces, and an "outside" namespace routed behind the node
// (203.0.113.1, not directly connected). Names and subnets are unique per test, so tests run
// in parallel; the fixture removes everything even when an assertion failed.
// Needs root.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "executor/executor.h"
#include "executor/plugin_runner.h"
#include "firewall/nftables.h"
#include "firewall/ruleset.h"
#include "handoff/netns_listener.h"
#include "netns/netns.h"
#include "os/child_process.h"
#include "support/require_root.h"
#include "support/temp_dir.h"
#include "support/test_node_network.h"

namespace fleetlet::cni {
namespace {

using netns::NamedNetns;

constexpr const char* kOutsideAddress = "203.0.113.1";

Status ip(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  FLEETLET_ASSIGN_OR_RETURN(CommandOutput out, runCommand(args));
  if (!out.status.success()) {
    return fail(ErrorCode::kInternal, "{}: {}", fmt::join(args, " "), out.err);
  }
  return {};
}

// Refused egress is rejected (ICMP admin-prohibited), so failed connections are quick too.
bool canConnect(const std::filesystem::path& ns, const std::string& address, std::uint16_t port) {
  return testing::TestNodeNetwork::canConnect(ns, address, port);
}

std::string addressOf(const Attachment& att) {
  return att.result.ips.at(0).address.addressString();
}

// Interface names in `ns` (ip -o link).
std::set<std::string> linksIn(const std::string& ns_name) {
  std::set<std::string> out;
  auto r = runCommand({"ip", "-n", ns_name, "-o", "link", "show"});
  if (!r) return out;
  std::istringstream lines(r->out);
  std::string line;
  while (std::getline(lines, line)) {
    auto a = line.find(": ");
    auto b = line.find_first_of(":@", a + 2);
    if (a != std::string::npos && b != std::string::npos) out.insert(line.substr(a + 2, b - a - 2));
  }
  return out;
}

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    static std::atomic<int> counter{0};
    int n = counter++;
    id_ = fmt::format("{:x}{}", ::getpid() & 0xffff, n);
    subnet_ = fmt::format("10.201.{}.0/24", (::getpid() * 7 + n) % 250);
    bridge_ = "flbr" + id_;
    auto tmp = testing::TempDir::create("fleetlet-cni");
    ASSERT_TRUE(tmp) << tmp.error().message();
    tmp_ = std::make_unique<testing::TempDir>(std::move(*tmp));

    node_ = makeNetns("node");
    app_a_ = makeNetns("a");
    app_b_ = makeNetns("b");
    outside_ = makeNetns("out");
    ASSERT_TRUE(node_ && app_a_ && app_b_ && outside_);

    // node <-> outside, with 203.0.113.1 behind the outside namespace (a routed peer).
    std::string node = nsName("node");
    std::string out = nsName("out");
    ASSERT_TRUE(ip({"-n", node, "link", "add", "up" + id_, "type", "veth", "peer", "name", "eth0",
                    "netns", out}));
    ASSERT_TRUE(ip({"-n", node, "addr", "add", "198.51.100.1/24", "dev", "up" + id_}));
    ASSERT_TRUE(ip({"-n", node, "link", "set", "up" + id_, "up"}));
    ASSERT_TRUE(ip({"-n", out, "addr", "add", "198.51.100.2/24", "dev", "eth0"}));
    ASSERT_TRUE(ip({"-n", out, "link", "set", "eth0", "up"}));
    ASSERT_TRUE(ip({"-n", out, "addr", "add", std::string(kOutsideAddress) + "/32", "dev", "lo"}));
    ASSERT_TRUE(ip({"-n", out, "route", "add", "default", "via", "198.51.100.1"}));
    ASSERT_TRUE(ip({"-n", node, "route", "add", "203.0.113.0/24", "via", "198.51.100.2"}));

    // Listeners: outside, the node (every address: the bridge's too), each app.
    outside_listener_ = listen(outside_->path(), kOutsideAddress);
    node_listener_ = listen(node_->path(), "0.0.0.0");
    a_listener_ = listen(app_a_->path(), "0.0.0.0");
    b_listener_ = listen(app_b_->path(), "0.0.0.0");
  }

  void TearDown() override {
    executor_.reset();
    if (node_) {
      // The executor's cache may still hold attachments (a failed test): delete them so host-
      // local's leases and the veths go with the node namespace.
      auto runner = std::make_unique<ProcessPluginRunner>(node_->path());
      if (auto ex = Executor::create(options(), *runner)) (void)(*ex)->gc({});
    }
  }

  std::string nsName(const std::string& role) const { return fmt::format("flt-{}-{}", id_, role); }

  std::unique_ptr<NamedNetns> makeNetns(const std::string& role) {
    auto ns = NamedNetns::create(nsName(role));
    EXPECT_TRUE(ns) << ns.error().message();
    if (!ns) return nullptr;
    return std::make_unique<NamedNetns>(std::move(*ns));
  }

  struct Listener {
    UniqueFd fd;
    std::uint16_t port = 0;
  };
  static Listener listen(const std::filesystem::path& ns, const std::string& address) {
    auto fd = handoff::listenInNetns(ns, address, 0);
    EXPECT_TRUE(fd) << fd.error().message();
    if (!fd) return {};
    auto port = handoff::boundPort(fd->get());
    return Listener{std::move(*fd), port ? *port : std::uint16_t{0}};
  }

  std::filesystem::path confDir() const { return tmp_->path() / "conf"; }
  std::filesystem::path ipamDir() const { return tmp_->path() / "ipam"; }
  std::filesystem::path cacheDir() const { return tmp_->path() / "cache"; }
  std::filesystem::path fakeBinDir() const { return tmp_->path() / "bin"; }

  ExecutorOptions options() const {
    ExecutorOptions o;
    o.conf_dir = confDir();
    o.default_network = {
        .name = "fleetlet-test", .bridge = bridge_, .subnet = subnet_, .ipam_data_dir = ipamDir()};
    o.bin_dirs = {fakeBinDir(), "/usr/lib/cni", FLEETLET_FIREWALL_DIR};
    o.cache_dir = cacheDir();
    o.plugin_timeout = plugin_timeout_;
    o.node_netns = node_->path();
    return o;
  }

  // Writes a conflist: bridge + host-local, then `extra` plugins (JSON objects).
  void writeConflist(const std::vector<std::string>& extra) {
    std::filesystem::create_directories(confDir());
    std::string plugins =
        fmt::format(R"({{"type":"bridge","bridge":"{}","isGateway":true,"ipMasq":true,)"
                    R"("ipam":{{"type":"host-local","ranges":[[{{"subnet":"{}"}}]],)"
                    R"("routes":[{{"dst":"0.0.0.0/0"}}],"dataDir":"{}"}}}})",
                    bridge_, subnet_, ipamDir().string());
    for (const auto& e : extra) plugins += "," + e;
    std::ofstream(confDir() / "10-test.conflist")
        << R"({"cniVersion":"1.0.0","name":"fleetlet-test","plugins":[)" << plugins << "]}";
  }

  // A fake plugin: a shell script in fakeBinDir().
  void writeFakePlugin(const std::string& name, const std::string& body) {
    std::filesystem::create_directories(fakeBinDir());
    auto path = fakeBinDir() / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
  }

  void startExecutor() {
    runner_ = std::make_unique<ProcessPluginRunner>(node_->path());
    auto ex = Executor::create(options(), *runner_);
    ASSERT_TRUE(ex) << ex.error().message();
    executor_ = std::move(*ex);
  }

  Result<Attachment> attach(const std::string& id, const NamedNetns& ns,
                            std::optional<firewall::Policy> policy,
                            bool netns_may_hold_interface = false) {
    return executor_->add(AttachmentRequest{.container_id = id,
                                            .ifname = "eth0",
                                            .app = "app-" + id,
                                            .netns = ns.path(),
                                            .port_mappings = {},
                                            .firewall = std::move(policy),
                                            .extra_capability_args = Json::object(),
                                            .args = {},
                                            .netns_may_hold_interface = netns_may_hold_interface});
  }

  // host-local's lease files (named by address) in the test's IPAM directory.
  std::vector<std::string> leases() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& dir : std::filesystem::recursive_directory_iterator(ipamDir(), ec)) {
      auto name = dir.path().filename().string();
      if (parseCidr(name, true)) out.push_back(name);
    }
    return out;
  }

  // The fleetlet table in the node's namespace, or nullopt when absent.
  std::optional<firewall::TableState> table() const {
    std::optional<firewall::TableState> state;
    (void)netns::runInNetns(node_->path(), [&] {
      firewall::LibNftables nft;
      auto listing = nft.run(firewall::listTableCommand());
      if (listing) state = firewall::parseTableState(*listing);
    });
    return state;
  }

  std::string gateway() const {
    auto cidr = parseCidr(subnet_);
    Cidr gw = *cidr;
    gw.address[3] = 1;
    return gw.addressString();
  }

  std::string id_;
  std::string subnet_;
  std::string bridge_;
  std::chrono::milliseconds plugin_timeout_{20'000};
  std::unique_ptr<testing::TempDir> tmp_;
  std::unique_ptr<NamedNetns> node_, app_a_, app_b_, outside_;
  Listener outside_listener_, node_listener_, a_listener_, b_listener_;
  std::unique_ptr<ProcessPluginRunner> runner_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(NetworkTest, DefaultNetworkGivesTwoAppsTheirOwnAddressesOnTheBridge) {
  startExecutor();  // no conflist: the built-in default network with the test's names
  EXPECT_EQ(executor_->network().name, "fleetlet-test");
  auto a = attach("a", *app_a_, std::nullopt);
  ASSERT_TRUE(a) << a.error().message();
  auto b = attach("b", *app_b_, std::nullopt);
  ASSERT_TRUE(b) << b.error().message();

  auto subnet = *parseCidr(subnet_);
  EXPECT_TRUE(subnet.contains(a->result.ips.at(0).address));
  EXPECT_TRUE(subnet.contains(b->result.ips.at(0).address));
  EXPECT_NE(addressOf(*a), addressOf(*b));
  EXPECT_TRUE(linksIn(nsName("node")).contains(bridge_));
  EXPECT_TRUE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_TRUE(executor_->check("a"));
  EXPECT_TRUE(executor_->check("b"));
  EXPECT_EQ(leases().size(), 2U);
  // No policy given: egress all.
  EXPECT_TRUE(canConnect(app_a_->path(), addressOf(*b), b_listener_.port));
  EXPECT_TRUE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));

  ASSERT_TRUE(executor_->del("a"));
  ASSERT_TRUE(executor_->del("b"));
  EXPECT_FALSE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_TRUE(leases().empty());
  EXPECT_FALSE(table().has_value()) << "the fleetlet table goes with the last attachment";
  EXPECT_TRUE(executor_->del("a")) << "a second DEL succeeds";
}

TEST_F(NetworkTest, EgressNoneReachesNeitherTheOtherAppNorTheNodeNorOutside) {
  startExecutor();
  auto a = attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(a) << a.error().message();
  auto b = attach("b", *app_b_, firewall::Policy{.egress = firewall::Egress::kAll, .allow = {}});
  ASSERT_TRUE(b) << b.error().message();

  EXPECT_FALSE(canConnect(app_a_->path(), addressOf(*b), b_listener_.port));
  EXPECT_FALSE(canConnect(app_a_->path(), gateway(), node_listener_.port));
  EXPECT_FALSE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));
  // Connections to it still work: the replies are let through.
  EXPECT_TRUE(canConnect(app_b_->path(), addressOf(*a), a_listener_.port));
  EXPECT_TRUE(executor_->check("a"));
}

TEST_F(NetworkTest, ExposedPortOfAnEgressNoneAppIsReachableFromOutside) {
  startExecutor();
  AttachmentRequest request{
      .container_id = "a",
      .ifname = "eth0",
      .app = "app-a",
      .netns = app_a_->path(),
      .port_mappings = {PortMapping{.host_port = 18080, .container_port = a_listener_.port}},
      .firewall = firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}},
      .extra_capability_args = Json::object(),
      .args = {}};
  auto a = executor_->add(request);
  ASSERT_TRUE(a) << a.error().message();
  // portmap's DNAT on the node's address; the app's replies pass as established traffic.
  EXPECT_TRUE(canConnect(outside_->path(), "198.51.100.1", 18080));
  EXPECT_FALSE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));
  ASSERT_TRUE(executor_->del("a"));
  EXPECT_FALSE(canConnect(outside_->path(), "198.51.100.1", 18080)) << "the mapping went with DEL";
}

TEST_F(NetworkTest, EgressLocalReachesTheOtherAppButNotOutside) {
  startExecutor();
  auto a = attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kLocal, .allow = {}});
  ASSERT_TRUE(a) << a.error().message();
  auto b = attach("b", *app_b_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(b) << b.error().message();

  EXPECT_TRUE(canConnect(app_a_->path(), addressOf(*b), b_listener_.port));
  EXPECT_TRUE(canConnect(app_a_->path(), gateway(), node_listener_.port));
  EXPECT_FALSE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));
}

TEST_F(NetworkTest, EgressAllReachesTheOtherAppAndOutside) {
  startExecutor();
  auto a = attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kAll, .allow = {}});
  ASSERT_TRUE(a) << a.error().message();
  auto b = attach("b", *app_b_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(b) << b.error().message();

  EXPECT_TRUE(canConnect(app_a_->path(), addressOf(*b), b_listener_.port));
  EXPECT_TRUE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));
}

TEST_F(NetworkTest, AllowOpensExactlyThatPeer) {
  startExecutor();
  auto b = attach("b", *app_b_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(b) << b.error().message();
  auto peer = *parseCidr(addressOf(*b), true);
  auto a =
      attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {peer}});
  ASSERT_TRUE(a) << a.error().message();

  EXPECT_TRUE(canConnect(app_a_->path(), addressOf(*b), b_listener_.port));
  EXPECT_FALSE(canConnect(app_a_->path(), gateway(), node_listener_.port));
  EXPECT_FALSE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));
}

TEST_F(NetworkTest, CountersGrowWithTrafficPerApp) {
  startExecutor();
  auto a = attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kAll, .allow = {}});
  ASSERT_TRUE(a) << a.error().message();
  auto b = attach("b", *app_b_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(b) << b.error().message();

  auto before = executor_->trafficCounters();
  ASSERT_TRUE(before) << before.error().message();
  ASSERT_TRUE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port));
  ASSERT_TRUE(canConnect(app_a_->path(), addressOf(*b), b_listener_.port));
  ASSERT_FALSE(canConnect(app_b_->path(), kOutsideAddress, outside_listener_.port));
  auto after = executor_->trafficCounters();
  ASSERT_TRUE(after) << after.error().message();

  auto find = [](const std::vector<AppTraffic>& all, const std::string& id) {
    for (const auto& t : all) {
      if (t.container_id == id) return t;
    }
    return AppTraffic{};
  };
  auto a0 = find(*before, "a");
  auto a1 = find(*after, "a");
  auto b0 = find(*before, "b");
  auto b1 = find(*after, "b");
  EXPECT_EQ(a1.app, "app-a");
  EXPECT_EQ(a1.ifname, "eth0");
  EXPECT_GT(a1.counters.egress.packets, a0.counters.egress.packets);
  EXPECT_GT(a1.counters.egress.bytes, a0.counters.egress.bytes);
  EXPECT_GT(a1.counters.ingress.packets, a0.counters.ingress.packets) << "the SYN-ACKs";
  EXPECT_EQ(a1.counters.dropped.packets, 0U);
  EXPECT_GT(b1.counters.ingress.packets, b0.counters.ingress.packets) << "a's SYN";
  EXPECT_GT(b1.counters.dropped.packets, b0.counters.dropped.packets) << "b's refused SYN";
}

TEST_F(NetworkTest, FailingPluginIsNamedAndLeavesNothingBehind) {
  writeFakePlugin("fails", R"(if [ "$CNI_COMMAND" = ADD ]; then)"
                           "\n  echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"bad thing\","
                           "\"details\":\"the frobnicator is off\"}'\n  exit 1\nfi\nexit 0");
  writeConflist({R"({"type":"fleetlet-firewall"})", R"({"type":"fails"})"});
  startExecutor();
  auto a = attach("a", *app_a_, std::nullopt);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(a.error().message().find("\"fails\" ADD failed: bad thing: the frobnicator is off"),
            std::string::npos)
      << a.error().message();
  EXPECT_FALSE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_TRUE(leases().empty());
  EXPECT_FALSE(table().has_value());
  EXPECT_TRUE(std::filesystem::is_empty(cacheDir()));
}

TEST_F(NetworkTest, HangingPluginIsKilledNamedAndLeavesNothingBehind) {
  writeFakePlugin("hangs", R"(if [ "$CNI_COMMAND" = ADD ]; then exec sleep 60; fi)");
  writeConflist({R"({"type":"hangs"})"});
  plugin_timeout_ = std::chrono::milliseconds(300);
  startExecutor();
  auto a = attach("a", *app_a_, std::nullopt);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(a.error().message().find("\"hangs\" ADD did not finish within 300 ms"),
            std::string::npos)
      << a.error().message();
  EXPECT_FALSE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_TRUE(leases().empty());
  EXPECT_TRUE(std::filesystem::is_empty(cacheDir()));
}

TEST_F(NetworkTest, GarbageOutputIsNamedAndLeavesNothingBehind) {
  writeFakePlugin("babbles", R"(echo 'hello, world'; exit 0)");
  writeConflist({R"({"type":"babbles"})"});
  startExecutor();
  auto a = attach("a", *app_a_, std::nullopt);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("\"babbles\" ADD printed no valid result"), std::string::npos)
      << a.error().message();
  EXPECT_NE(a.error().message().find("hello, world"), std::string::npos);
  EXPECT_FALSE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_TRUE(leases().empty());
  EXPECT_TRUE(std::filesystem::is_empty(cacheDir()));
}

TEST_F(NetworkTest, DelAfterCrashCleansEverythingFromTheCache) {
  startExecutor();
  auto a = attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(leases().size(), 1U);
  ASSERT_TRUE(table().has_value());
  auto host_links = linksIn(nsName("node"));

  // The crash: every in-memory object is gone, the cache on disk stays. The conflist on disk
  // changes too; DEL must use what the attachment was made with.
  executor_.reset();
  runner_.reset();
  writeConflist({R"({"type":"does-not-exist"})"});
  startExecutor();
  ASSERT_TRUE(executor_->del("a"));

  EXPECT_FALSE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_LT(linksIn(nsName("node")).size(), host_links.size()) << "the host-side veth is gone";
  EXPECT_TRUE(leases().empty());
  EXPECT_FALSE(table().has_value());
  EXPECT_TRUE(std::filesystem::is_empty(cacheDir()));
  auto path = app_a_->path();
  EXPECT_TRUE(app_a_->reset());
  EXPECT_FALSE(std::filesystem::exists(path));
}

// The node lost its data directory (the cache and host-local's leases) while the app's
// namespace, which lives elsewhere, kept its eth0: the next ADD into that namespace, told it
// may hold an interface, replaces the old one instead of failing on its name.
TEST_F(NetworkTest, AnAttachmentTheCacheLostIsReplacedInItsNamespace) {
  startExecutor();
  const firewall::Policy policy{.egress = firewall::Egress::kAll, .allow = {}};
  ASSERT_TRUE(attach("a", *app_a_, policy));
  const auto host_links = linksIn(nsName("node"));
  executor_.reset();
  runner_.reset();
  std::filesystem::remove_all(cacheDir());
  std::filesystem::remove_all(ipamDir());
  ASSERT_TRUE(linksIn(nsName("a")).contains("eth0")) << "the old interface is still there";

  startExecutor();
  auto again = attach("a", *app_a_, policy, /*netns_may_hold_interface=*/true);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_EQ(linksIn(nsName("node")).size(), host_links.size())
      << "the old host-side veth went with the old interface";
  EXPECT_EQ(leases().size(), 1U);
  ASSERT_TRUE(table().has_value());
  EXPECT_TRUE(canConnect(app_a_->path(), kOutsideAddress, outside_listener_.port))
      << "the new interface carries the app's traffic";
}

TEST_F(NetworkTest, GcDeletesAttachmentsWhoseOwnerIsGone) {
  startExecutor();
  ASSERT_TRUE(
      attach("a", *app_a_, firewall::Policy{.egress = firewall::Egress::kLocal, .allow = {}}));
  auto b = attach("b", *app_b_, firewall::Policy{.egress = firewall::Egress::kNone, .allow = {}});
  ASSERT_TRUE(b);
  executor_.reset();
  startExecutor();

  auto report = executor_->gc({"b"});
  EXPECT_TRUE(report.errors.empty());
  EXPECT_EQ(report.removed, std::vector<std::string>{"a:eth0"});
  EXPECT_FALSE(linksIn(nsName("a")).contains("eth0"));
  EXPECT_TRUE(linksIn(nsName("b")).contains("eth0"));
  EXPECT_EQ(leases().size(), 1U);
  auto state = table().value_or(firewall::TableState{});
  EXPECT_TRUE(state.exists);
  EXPECT_FALSE(state.chains.contains(firewall::appChainName("a:eth0")));
  EXPECT_TRUE(state.chains.contains(firewall::appChainName("b:eth0")));
  EXPECT_TRUE(executor_->check("b"));
  auto left = executor_->attachments();
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1U);
  EXPECT_EQ(left->front().app, "app-b");
}

}  // namespace
}  // namespace fleetlet::cni
