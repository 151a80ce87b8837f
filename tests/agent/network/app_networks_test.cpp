// AppNetworks over the real executor with a fake PluginRunner: when plugins run (a new app, a
// changed port, a changed policy, nothing changed), how `allow` names are resolved and kept
// up to date as peers come and go, and that a restarted fleetletd resumes from the cache.
// Namespace pins are real (in a test directory): needs root, skipped otherwise.
#include "network/app_networks.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <fstream>

#include "netns/netns.h"
#include "support/require_root.h"
#include "support/temp_dir.h"

namespace fleetlet::network {
namespace {

TEST(ResolvePolicy, AppNamesBecomeTheirAddressesAndUnknownOnesWait) {
  manifest::Network net;
  net.egress = manifest::Network::Egress::kNone;
  net.allow = {"10.1.0.0/16", "db", "192.168.7.20", "later"};
  std::map<std::string, std::vector<cni::Cidr>> addresses = {
      {"db", {*cni::parseCidr("10.90.0.7/32")}}};
  auto r = resolvePolicy(net, addresses);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->policy.egress, cni::firewall::Egress::kNone);
  std::vector<std::string> allow;
  for (const auto& c : r->policy.allow) allow.push_back(c.toString());
  EXPECT_EQ(allow, (std::vector<std::string>{"10.1.0.0/16", "10.90.0.7/32", "192.168.7.20/32"}));
  EXPECT_EQ(r->waiting_for, (std::vector<std::string>{"later"}));
  net.allow = {"not an address!"};
  EXPECT_EQ(resolvePolicy(net, addresses).error().code(), ErrorCode::kInvalidArgument);
}

TEST(PortMappings, FollowExpose) {
  manifest::Network net;
  net.expose = {{.port = 8080, .host_port = 18080, .protocol = "tcp"},
                {.port = 53, .host_port = 1053, .protocol = "udp"}};
  auto m = portMappings(net);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].host_port, 18080);
  EXPECT_EQ(m[0].container_port, 8080);
  EXPECT_EQ(m[1].protocol, "udp");
}

// Hands out 10.90.0.<n> in ADD order and records every invocation.
class FakeRunner final : public cni::PluginRunner {
 public:
  Result<cni::PluginOutput> run(const cni::PluginInvocation& inv) override {
    const std::string plugin = inv.binary.filename().string();
    const std::string command = inv.env.at("CNI_COMMAND");
    const std::string id = inv.env.at("CNI_CONTAINERID");
    calls.push_back(command + " " + plugin + " " + id);
    Json config = Json::parse(inv.stdin_data);
    if (plugin == "fw" && command == "ADD")
      policies[id] = config["runtimeConfig"]["fleetletFirewall"];
    if (command != "ADD") return cni::PluginOutput{.exit_code = 0};
    if (config.contains("prevResult")) {
      return cni::PluginOutput{.exit_code = 0, .out = config["prevResult"].dump()};
    }
    Json result = {{"cniVersion", "1.0.0"},
                   {"ips", Json::array({Json{{"address", fmt::format("10.90.0.{}/16", ++next)}}})}};
    return cni::PluginOutput{.exit_code = 0, .out = result.dump()};
  }
  std::vector<std::string> calls;
  std::map<std::string, Json> policies;  // the last policy fw was given, by container id
  int next = 1;
};

class AppNetworksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    auto tmp = testing::TempDir::create("fleetlet-appnet");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    root_ = tmp_->path();
    std::filesystem::create_directories(root_ / "bin");
    std::filesystem::create_directories(root_ / "conf");
    for (const char* name : {"if", "fw"}) {
      std::ofstream(root_ / "bin" / name) << "#!/bin/sh\n";
      std::filesystem::permissions(root_ / "bin" / name, std::filesystem::perms::owner_all);
    }
    std::ofstream(root_ / "conf" / "10-test.conflist")
        << R"({"cniVersion": "1.0.0", "name": "unit", "plugins": [
              {"type": "if", "capabilities": {"portMappings": true}},
              {"type": "fw", "capabilities": {"fleetletFirewall": true}}]})";
    start();
  }
  void TearDown() override {
    if (!tmp_) return;
    std::error_code ec;
    for (const auto& pin : std::filesystem::directory_iterator(netnsDir(), ec)) {
      (void)netns::NamedNetns::remove(pin.path());
    }
    ::umount2(netnsDir().c_str(), MNT_DETACH);
  }

  std::filesystem::path netnsDir() const { return root_ / "netns"; }

  void start() {
    networks_.reset();
    executor_.reset();
    cni::ExecutorOptions o;
    o.conf_dir = root_ / "conf";
    o.bin_dirs = {root_ / "bin"};
    o.cache_dir = root_ / "cache";
    auto ex = cni::Executor::create(o, runner_);
    ASSERT_TRUE(ex) << ex.error().message();
    executor_ = std::move(*ex);
    auto n = AppNetworks::create(*executor_, {.netns_dir = netnsDir()});
    ASSERT_TRUE(n) << n.error().message();
    networks_ = std::move(*n);
  }

  static manifest::App app(const std::string& name, manifest::Network net = {}) {
    manifest::App a;
    a.name = name;
    a.network = std::move(net);
    return a;
  }

  std::optional<testing::TempDir> tmp_;
  std::filesystem::path root_;  // tmp_'s path
  FakeRunner runner_;
  std::unique_ptr<cni::Executor> executor_;
  std::unique_ptr<AppNetworks> networks_;
};

// kill -9 between creating the pin file and mounting the namespace on it leaves a plain file:
// the next attach makes the namespace again instead of handing the file to the plugins.
TEST_F(AppNetworksTest, APinFileLeftWithoutItsNamespaceIsMadeAgain) {
  const auto pin = netnsDir() / "fleetlet-a";
  std::filesystem::create_directories(netnsDir());
  { std::ofstream(pin.string()).flush(); }
  ASSERT_FALSE(netns::NamedNetns::isPinned(pin));
  ASSERT_TRUE(networks_->attach(app("a")));
  EXPECT_TRUE(netns::NamedNetns::isPinned(pin));
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"ADD if a", "ADD fw a"}));
}

// The node lost its data directory (the CNI cache in it) while the apps' namespaces, kept
// elsewhere, stayed with their interfaces (and addresses IPAM no longer knows). Nothing runs
// until an ADD is due; then every such namespace is cleared first (the app being attached by
// its own ADD's DEL), so no address can be handed out twice. Without the DEL the bridge plugin
// refuses the ADD ("eth0 already exists").
TEST_F(AppNetworksTest, ANamespaceKeptWithoutARecordIsClearedBeforeTheAdd) {
  ASSERT_TRUE(networks_->attach(app("a")));
  ASSERT_TRUE(networks_->attach(app("b")));
  EXPECT_FALSE(networks_->forgotten("a"));
  std::filesystem::remove_all(root_ / "cache");
  runner_.calls.clear();
  start();
  EXPECT_TRUE(runner_.calls.empty()) << "their apps may run: left alone until an ADD is due";
  EXPECT_TRUE(networks_->forgotten("a"));
  EXPECT_TRUE(networks_->forgotten("b"));

  ASSERT_TRUE(networks_->attach(app("a")));
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"DEL fw b", "DEL if b", "DEL fw a", "DEL if a",
                                                     "ADD if a", "ADD fw a"}));
  EXPECT_FALSE(networks_->forgotten("a"));
  EXPECT_TRUE(networks_->forgotten("b")) << "cleared, not attached yet";

  runner_.calls.clear();
  ASSERT_TRUE(networks_->attach(app("b")));
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"ADD if b", "ADD fw b"}));
  EXPECT_FALSE(networks_->forgotten("b"));

  // A namespace made by this attach holds nothing: no DEL.
  runner_.calls.clear();
  ASSERT_TRUE(networks_->attach(app("c")));
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"ADD if c", "ADD fw c"}));
}

// A forgotten app that is gone: gc() DELs what its namespace held (rules, the host-side veth),
// then removes the namespace.
TEST_F(AppNetworksTest, GcClearsTheNamespaceOfAForgottenAppThatIsGone) {
  ASSERT_TRUE(networks_->attach(app("a")));
  std::filesystem::remove_all(root_ / "cache");
  start();
  runner_.calls.clear();
  networks_->gc({});
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"DEL fw a", "DEL if a"}));
  EXPECT_FALSE(networks_->forgotten("a"));
  EXPECT_FALSE(std::filesystem::exists(netnsDir() / "fleetlet-a"));
}

TEST_F(AppNetworksTest, PluginsRunOnlyWhenTheNetworkChanges) {
  ASSERT_TRUE(networks_->attach(app("a")));
  EXPECT_TRUE(std::filesystem::exists(netnsDir() / "fleetlet-a"));
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"ADD if a", "ADD fw a"}));
  EXPECT_EQ(networks_->addresses("a"), (std::vector<std::string>{"10.90.0.2/16"}));

  runner_.calls.clear();
  ASSERT_TRUE(networks_->attach(app("a")));
  EXPECT_TRUE(runner_.calls.empty()) << "nothing changed: no plugin runs";

  manifest::Network none;
  none.egress = manifest::Network::Egress::kNone;
  ASSERT_TRUE(networks_->attach(app("a", none)));
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"ADD fw a"}))
      << "a policy is updated in place";
  EXPECT_EQ(runner_.policies["a"]["egress"], "none");
  EXPECT_EQ(networks_->addresses("a"), (std::vector<std::string>{"10.90.0.2/16"}));

  runner_.calls.clear();
  none.expose = {{.port = 80, .host_port = 8080, .protocol = "tcp"}};
  ASSERT_TRUE(networks_->attach(app("a", none)));
  EXPECT_EQ(runner_.calls,
            (std::vector<std::string>{"DEL fw a", "DEL if a", "ADD if a", "ADD fw a"}))
      << "changed ports: attached again";

  // A restarted fleetletd resumes: still nothing to do for the same spec.
  start();
  runner_.calls.clear();
  ASSERT_TRUE(networks_->attach(app("a", none)));
  EXPECT_TRUE(runner_.calls.empty());
}

TEST_F(AppNetworksTest, AllowFollowsThePeersAddressAsItComesAndGoes) {
  manifest::Network to_db;
  to_db.egress = manifest::Network::Egress::kNone;
  to_db.allow = {"db"};
  ASSERT_TRUE(networks_->attach(app("ui", to_db)));
  EXPECT_EQ(runner_.policies["ui"]["allow"], Json::array()) << "db has no address yet";
  ASSERT_TRUE(networks_->attach(app("db")));
  EXPECT_EQ(runner_.policies["ui"]["allow"], (Json{"10.90.0.3/32"})) << "updated when db came";

  // After a restart the names are still known: db leaving closes ui's opening.
  start();
  ASSERT_TRUE(networks_->detach("db"));
  EXPECT_FALSE(std::filesystem::exists(netnsDir() / "fleetlet-db"));
  EXPECT_EQ(runner_.policies["ui"]["allow"], Json::array());
}

TEST_F(AppNetworksTest, GcRemovesAppsThatAreGoneAndModeHostDetaches) {
  ASSERT_TRUE(networks_->attach(app("a")));
  ASSERT_TRUE(networks_->attach(app("b")));
  // A pin left by a crash before its attachment was made.
  auto left = netns::NamedNetns::create("fleetlet-c", netnsDir());
  ASSERT_TRUE(left) << left.error().message();
  left->release();
  runner_.calls.clear();
  networks_->gc({"a"});
  EXPECT_EQ(runner_.calls, (std::vector<std::string>{"DEL fw b", "DEL if b"}));
  EXPECT_TRUE(std::filesystem::exists(netnsDir() / "fleetlet-a"));
  EXPECT_FALSE(std::filesystem::exists(netnsDir() / "fleetlet-b"));
  EXPECT_FALSE(std::filesystem::exists(netnsDir() / "fleetlet-c"));

  manifest::Network host;
  host.mode = manifest::Network::Mode::kHost;
  ASSERT_TRUE(networks_->attach(app("a", host)));
  EXPECT_FALSE(std::filesystem::exists(netnsDir() / "fleetlet-a"));
  EXPECT_TRUE(networks_->addresses("a").empty());
}

}  // namespace
}  // namespace fleetlet::network
