// Unit tests of fleetlet-firewall's pure parts: the nftables batches it builds from a table
// listing, counters parsing, and the plugin protocol (skel) around a fake nftables.
#include <gtest/gtest.h>

#include "firewall/counters.h"
#include "firewall/plugin.h"
#include "firewall/ruleset.h"
#include "skel/skel.h"

namespace fleetlet::cni::firewall {
namespace {

std::string dump(const Json& j) { return j.dump(); }

AttachmentRules rulesFor(Egress egress) {
  return AttachmentRules{.key = "app1:eth0",
                         .policy = Policy{.egress = egress, .allow = {*parseCidr("192.0.2.7/32")}},
                         .addresses = {*parseCidr("10.90.0.5/16")},
                         .local_networks = {*parseCidr("172.16.3.9/24")}};
}

TEST(Ruleset, EgressDecidesWhatTheAppChainAccepts) {
  auto none = dump(addBatch(rulesFor(Egress::kNone), {}));
  auto local = dump(addBatch(rulesFor(Egress::kLocal), {}));
  auto all = dump(addBatch(rulesFor(Egress::kAll), {}));
  const std::string accept_all = R"("expr":[{"accept":null}])";
  EXPECT_EQ(none.find(accept_all), std::string::npos);
  EXPECT_EQ(local.find(accept_all), std::string::npos);
  EXPECT_NE(all.find(accept_all), std::string::npos);
  EXPECT_NE(local.find(R"("addr":"172.16.3.0","len":24)"), std::string::npos);
  EXPECT_NE(local.find(R"("addr":"10.90.0.0","len":16)"), std::string::npos) << "own subnet";
  EXPECT_EQ(none.find("172.16.3.0"), std::string::npos);
  for (const auto& batch : {none, local, all}) {
    EXPECT_NE(batch.find(R"("right":"192.0.2.7")"), std::string::npos) << "allow";
    EXPECT_NE(batch.find(R"("jump":{"target":"app:app1:eth0"})"), std::string::npos);
    EXPECT_NE(batch.find(R"("counter":"dropped:app1:eth0")"), std::string::npos);
    EXPECT_NE(batch.find("admin-prohibited"), std::string::npos);
  }
}

Json listing(const std::vector<std::string>& keys) {
  Json items = Json::array({Json{{"table", {{"family", "inet"}, {"name", "fleetlet"}}}}});
  for (std::string_view base : kBaseChains) {
    items.push_back(Json{{"chain", {{"table", "fleetlet"}, {"name", base}}}});
  }
  std::int64_t handle = 10;
  for (const auto& key : keys) {
    items.push_back(Json{{"chain", {{"table", "fleetlet"}, {"name", appChainName(key)}}}});
    items.push_back(Json{
        {"rule", {{"table", "fleetlet"}, {"chain", appChainName(key)}, {"handle", handle++}}}});
    for (const char* chain : {"forward", "forward", "input", "output"}) {
      items.push_back(Json{
          {"rule",
           {{"table", "fleetlet"}, {"chain", chain}, {"handle", handle++}, {"comment", key}}}});
    }
    for (const char* kind : {"egress", "ingress", "dropped"}) {
      items.push_back(Json{{"counter",
                            {{"table", "fleetlet"},
                             {"name", counterName(kind, key)},
                             {"packets", 3},
                             {"bytes", 300}}}});
    }
  }
  return Json{{"nftables", items}};
}

TEST(Ruleset, DeleteRemovesOnlyItsOwnAndTheTableWithTheLast) {
  auto both = parseTableState(listing({"a:eth0", "b:eth0"}));
  auto batch = dump(deleteBatch("a:eth0", both));
  EXPECT_NE(batch.find(R"("name":"app:a:eth0")"), std::string::npos);
  EXPECT_EQ(batch.find("b:eth0"), std::string::npos);
  EXPECT_EQ(batch.find(R"("delete":{"table")"), std::string::npos);
  EXPECT_EQ(deleteBatch("a:eth0", both)["nftables"].size(), 4U + 2U + 3U);

  auto last = parseTableState(listing({"a:eth0"}));
  EXPECT_EQ(dump(deleteBatch("a:eth0", last)),
            R"({"nftables":[{"delete":{"table":{"family":"inet","name":"fleetlet"}}}]})");
  EXPECT_TRUE(deleteBatch("a:eth0", TableState{})["nftables"].empty()) << "no table: no-op";
  EXPECT_TRUE(deleteBatch("c:eth0", both)["nftables"].empty()) << "unknown key: no-op";
}

TEST(Ruleset, AddReplacesTheKeysOldHookRules) {
  auto state = parseTableState(listing({"app1:eth0"}));
  auto batch = addBatch(rulesFor(Egress::kAll), state);
  int deletes = 0;
  for (const auto& cmd : batch["nftables"]) deletes += cmd.contains("delete") ? 1 : 0;
  EXPECT_EQ(deletes, 4);
}

TEST(Ruleset, CheckNamesWhatIsMissing) {
  auto rules = rulesFor(Egress::kNone);
  EXPECT_TRUE(checkState(rules, parseTableState(listing({"app1:eth0"}))));
  auto r = checkState(rules, parseTableState(listing({"other:eth0"})));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("chain app:app1:eth0 is missing"), std::string::npos);
}

TEST(Counters, ParsedPerAttachment) {
  auto counters = parseCounters(listing({"a:eth0", "b:eth1"}));
  ASSERT_EQ(counters.size(), 2U);
  EXPECT_EQ(counters["a:eth0"].egress, (Counter{3, 300}));
  EXPECT_EQ(counters["b:eth1"].dropped, (Counter{3, 300}));
}

// A fake nftables that records batches and answers listings with `table`.
class FakeNft final : public Nftables {
 public:
  Result<Json> run(const Json& batch) override {
    batches.push_back(batch);
    if (batch["nftables"][0].contains("list")) {
      if (!table) return fail(ErrorCode::kNotFound, "No such file or directory");
      return *table;
    }
    return Json::object();
  }
  std::optional<Json> table;
  std::vector<Json> batches;
};

class FakeHost final : public HostNetwork {
 public:
  Result<std::vector<Cidr>> directlyConnected() override {
    return std::vector<Cidr>{*parseCidr("192.168.1.0/24")};
  }
  Status ensureBridgeNetfilter(bool) override { return bridge_nf; }
  Status bridge_nf;
};

class FirewallPluginTest : public ::testing::Test {
 protected:
  SkelOutcome run(const std::string& command, const std::string& config) {
    FirewallPlugin plugin(nft_, host_, ::testing::TempDir() + "fleetlet-firewall-test.lock");
    return runPlugin(plugin,
                     {{"CNI_COMMAND", command},
                      {"CNI_CONTAINERID", "app1"},
                      {"CNI_NETNS", "/run/netns/x"},
                      {"CNI_IFNAME", "eth0"}},
                     config, "test");
  }
  FakeNft nft_;
  FakeHost host_;
};

constexpr const char* kConfig = R"({"cniVersion":"1.0.0","name":"n","type":"fleetlet-firewall",
  "egress":"all","runtimeConfig":{"fleetletFirewall":{"egress":"local"}},
  "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"br"},{"name":"eth0","sandbox":"/x"}],
    "ips":[{"address":"10.90.0.5/16","interface":1}],"custom":1}})";

TEST_F(FirewallPluginTest, AddPassesPrevResultThroughAndInstallsTheRules) {
  auto out = run("ADD", kConfig);
  ASSERT_EQ(out.exit_code, 0) << out.out;
  auto printed = Json::parse(out.out);
  EXPECT_EQ(printed["custom"], 1);
  EXPECT_EQ(printed["ips"][0]["address"], "10.90.0.5/16");
  ASSERT_EQ(nft_.batches.size(), 2U);  // list, then the change
  auto batch = dump(nft_.batches[1]);
  EXPECT_NE(batch.find(R"("addr":"192.168.1.0","len":24)"), std::string::npos)
      << "runtimeConfig's egress local won over the config's all";
}

TEST_F(FirewallPluginTest, ErrorsAreSpecErrorObjects) {
  auto out = run("ADD", R"({"cniVersion":"1.0.0","name":"n","egress":"sideways",
                              "prevResult":{"cniVersion":"1.0.0","ips":[]}})");
  EXPECT_EQ(out.exit_code, 1);
  auto e = parseErrorObject(out.out);
  ASSERT_TRUE(e) << out.out;
  EXPECT_EQ(e->code, 7);
  EXPECT_NE(e->msg.find("config.egress"), std::string::npos) << e->msg;

  out = run("ADD", R"({"cniVersion":"1.0.0","name":"n"})");
  EXPECT_NE(parseErrorObject(out.out)->msg.find("prevResult is missing"), std::string::npos);

  out = run("ADD", R"({"cniVersion":"0.3.0","name":"n"})");
  EXPECT_EQ(parseErrorObject(out.out)->code, 1);

  out = run("ADD", "{not json");
  EXPECT_EQ(parseErrorObject(out.out)->code, 6);

  host_.bridge_nf = fail(ErrorCode::kFailedPrecondition, "br_netfilter is not loaded");
  out = run("ADD", kConfig);
  EXPECT_EQ(parseErrorObject(out.out)->code, 50);
  EXPECT_EQ(nft_.batches.size(), 0U) << "nothing applied";
}

TEST_F(FirewallPluginTest, DelWithoutPrevResultOrTableSucceeds) {
  auto out = run("DEL", R"({"cniVersion":"1.0.0","name":"n"})");
  EXPECT_EQ(out.exit_code, 0) << out.out;
  nft_.table = listing({"app1:eth0"});
  out = run("DEL", R"({"cniVersion":"1.0.0","name":"n"})");
  EXPECT_EQ(out.exit_code, 0) << out.out;
  EXPECT_EQ(dump(nft_.batches.back()),
            R"({"nftables":[{"delete":{"table":{"family":"inet","name":"fleetlet"}}}]})");
}

TEST(Skel, VersionAndEnvironment) {
  FakeNft nft;
  FakeHost host;
  FirewallPlugin plugin(nft, host, ::testing::TempDir() + "fleetlet-firewall-test.lock");
  auto v = runPlugin(plugin, {{"CNI_COMMAND", "VERSION"}}, "", "t");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(Json::parse(v.out)["supportedVersions"], (Json{"0.4.0", "1.0.0"}));
  auto missing = runPlugin(plugin, {{"CNI_COMMAND", "ADD"}}, "{}", "t");
  auto e = parseErrorObject(missing.out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 4);
  EXPECT_NE(e->msg.find("CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS"), std::string::npos) << e->msg;
}

}  // namespace
}  // namespace fleetlet::cni::firewall
