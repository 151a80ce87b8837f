// Unit tests of the executor's protocol logic with a fake PluginRunner: request building,
// prevResult chaining, order, the cache, error mapping, clean-up after failures.
#include "executor/executor.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <map>
#include <vector>

#include "executor/attachment_cache.h"
#include "support/temp_dir.h"

namespace fleetlet::cni {
namespace {

// Records every invocation; answers with `respond` (default: success, ADD echoes a result
// naming the plugin so chaining is visible).
class FakeRunner final : public PluginRunner {
 public:
  struct Call {
    std::string plugin;
    std::string command;
    std::map<std::string, std::string> env;
    Json config;
  };
  Result<PluginOutput> run(const PluginInvocation& inv) override {
    Call call{.plugin = inv.binary.filename().string(),
              .command = inv.env.at("CNI_COMMAND"),
              .env = inv.env,
              .config = Json::parse(inv.stdin_data)};
    calls.push_back(call);
    if (respond) {
      if (auto out = respond(call)) return *out;
    }
    if (call.command != "ADD") return PluginOutput{.exit_code = 0};
    Json result =
        call.config.contains("prevResult")
            ? call.config["prevResult"]
            : Json{{"cniVersion", "1.0.0"},
                   {"interfaces", Json::array({Json{{"name", "eth0"}, {"sandbox", "/x"}}})},
                   {"ips", Json::array({Json{{"address", "10.9.0.2/24"}, {"interface", 0}}})}};
    result["seen"].push_back(call.plugin);
    return PluginOutput{.exit_code = 0, .out = result.dump()};
  }
  std::vector<std::string> sequence() const {
    std::vector<std::string> out;
    out.reserve(calls.size());
    for (const auto& c : calls) out.push_back(c.command + " " + c.plugin);
    return out;
  }

  std::function<std::optional<PluginOutput>(const Call&)> respond;
  std::vector<Call> calls;
};

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = testing::TempDir::create("fleetlet-cni-unit");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<testing::TempDir>(std::move(*tmp));
    std::filesystem::create_directories(tmp_->path() / "bin");
    std::filesystem::create_directories(tmp_->path() / "conf");
    for (const char* name : {"one", "two", "three"}) {
      std::ofstream(tmp_->path() / "bin" / name) << "#!/bin/sh\n";
      std::filesystem::permissions(tmp_->path() / "bin" / name, std::filesystem::perms::owner_all);
    }
    std::ofstream(tmp_->path() / "conf" / "50-test.conflist") << R"({
      "cniVersion": "0.4.0", "cniVersions": ["1.0.0", "2.0.0"], "name": "unit",
      "plugins": [
        {"type": "one", "keep": {"me": 1}},
        {"type": "two", "capabilities": {"portMappings": true, "other": false}},
        {"type": "three", "capabilities": {"fleetletFirewall": true}}]})";
  }

  std::unique_ptr<Executor> make() {
    ExecutorOptions o;
    o.conf_dir = tmp_->path() / "conf";
    o.bin_dirs = {tmp_->path() / "bin"};
    o.cache_dir = tmp_->path() / "cache";
    auto ex = Executor::create(o, runner_);
    EXPECT_TRUE(ex) << ex.error().message();
    return ex ? std::move(*ex) : nullptr;
  }

  AttachmentRequest request(const std::string& id = "app1") const {
    return AttachmentRequest{
        .container_id = id,
        .ifname = "eth0",
        .app = "camera",
        .netns = tmp_->path(),  // any existing path
        .port_mappings = {PortMapping{.host_port = 8080, .container_port = 80}},
        .firewall = firewall::Policy{.egress = firewall::Egress::kLocal, .allow = {}},
        .extra_capability_args = Json::object(),
        .args = {{"K8S_POD_NAME", "x"}}};
  }

  std::unique_ptr<testing::TempDir> tmp_;
  FakeRunner runner_;
};

TEST_F(ExecutorTest, AddChainsPrevResultAndPassesTheSpecsEnvironment) {
  auto ex = make();
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->network().cni_version, "1.0.0") << "the highest supported version offered";
  auto att = ex->add(request());
  ASSERT_TRUE(att) << att.error().message();
  EXPECT_EQ(runner_.sequence(), (std::vector<std::string>{"ADD one", "ADD two", "ADD three"}));
  EXPECT_EQ(att->result.raw["seen"], (Json{"one", "two", "three"}));
  EXPECT_EQ(att->result.ips.at(0).address.toString(), "10.9.0.2/24");

  const auto& first = runner_.calls[0];
  EXPECT_EQ(first.env.at("CNI_CONTAINERID"), "app1");
  EXPECT_EQ(first.env.at("CNI_IFNAME"), "eth0");
  EXPECT_EQ(first.env.at("CNI_NETNS"), tmp_->path().string());
  EXPECT_EQ(first.env.at("CNI_ARGS"), "K8S_POD_NAME=x");
  EXPECT_EQ(first.env.at("CNI_PATH"), (tmp_->path() / "bin").string());
  EXPECT_EQ(first.config["name"], "unit");
  EXPECT_EQ(first.config["cniVersion"], "1.0.0");
  EXPECT_EQ(first.config["keep"], (Json{{"me", 1}})) << "unknown fields pass through";
  EXPECT_FALSE(first.config.contains("prevResult")) << "none for the first plugin";
  EXPECT_FALSE(first.config.contains("runtimeConfig")) << "no capability declared";

  const auto& second = runner_.calls[1];
  EXPECT_FALSE(second.config.contains("capabilities"));
  EXPECT_EQ(second.config["prevResult"]["seen"], (Json{"one"}));
  EXPECT_EQ(second.config["runtimeConfig"],
            (Json{{"portMappings",
                   Json::array(
                       {Json{{"hostPort", 8080}, {"containerPort", 80}, {"protocol", "tcp"}}})}}));
  const auto& third = runner_.calls[2];
  EXPECT_EQ(third.config["runtimeConfig"],
            (Json{{"fleetletFirewall", {{"egress", "local"}, {"allow", Json::array()}}}}));
}

TEST_F(ExecutorTest, DelRunsInReverseWithTheCachedResultAfterARestart) {
  {
    auto ex = make();
    ASSERT_TRUE(ex->add(request()));
  }
  // The configuration on disk changes; DEL must use the one the attachment was made with.
  std::ofstream(tmp_->path() / "conf" / "50-test.conflist")
      << R"({"cniVersion":"1.0.0","name":"other","plugins":[{"type":"one"}]})";
  runner_.calls.clear();
  auto ex = make();
  ASSERT_TRUE(ex->del("app1"));
  EXPECT_EQ(runner_.sequence(), (std::vector<std::string>{"DEL three", "DEL two", "DEL one"}));
  for (const auto& call : runner_.calls) {
    EXPECT_EQ(call.config["name"], "unit");
    EXPECT_EQ(call.config["prevResult"]["seen"], (Json{"one", "two", "three"}));
  }
  runner_.calls.clear();
  EXPECT_TRUE(ex->del("app1")) << "DEL of an unknown attachment succeeds";
  EXPECT_TRUE(runner_.calls.empty());
  EXPECT_EQ(ex->check("app1").error().code(), ErrorCode::kNotFound);
}

TEST_F(ExecutorTest, UpdateFirewallRerunsOnlyThePolicyPluginAndRecordsThePolicy) {
  auto ex = make();
  ASSERT_TRUE(ex->add(request()));
  runner_.calls.clear();
  firewall::Policy open{.egress = firewall::Egress::kNone, .allow = {*parseCidr("10.90.0.7/32")}};
  ASSERT_TRUE(ex->updateFirewall("app1", "eth0", open));
  EXPECT_EQ(runner_.sequence(), (std::vector<std::string>{"ADD three"}))
      << "the interface and its address are not touched";
  const auto& call = runner_.calls.at(0);
  EXPECT_EQ(call.config["prevResult"]["seen"], (Json{"one", "two", "three"}));
  EXPECT_EQ(call.config["runtimeConfig"]["fleetletFirewall"],
            (Json{{"egress", "none"}, {"allow", {"10.90.0.7/32"}}}));
  // A later DEL (after a restart) passes the recorded policy.
  runner_.calls.clear();
  auto again = make();
  ASSERT_TRUE(again->del("app1"));
  EXPECT_EQ(runner_.calls.at(0).config["runtimeConfig"]["fleetletFirewall"]["egress"], "none");
  EXPECT_EQ(again->updateFirewall("app1", "eth0", open).error().code(), ErrorCode::kNotFound);
}

TEST_F(ExecutorTest, AFailedFirewallUpdateKeepsTheCachedPolicy) {
  auto ex = make();
  ASSERT_TRUE(ex->add(request()));
  runner_.respond = [](const FakeRunner::Call& c) -> std::optional<PluginOutput> {
    if (c.plugin == "three") {
      return PluginOutput{.exit_code = 1,
                          .out = R"({"cniVersion":"1.0.0","code":100,"msg":"nft refused"})"};
    }
    return std::nullopt;
  };
  auto st = ex->updateFirewall("app1", "eth0", firewall::Policy{.egress = firewall::Egress::kAll});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("\"three\" ADD failed: nft refused"), std::string::npos)
      << st.error().message();
  runner_.respond = nullptr;
  runner_.calls.clear();
  ASSERT_TRUE(ex->del("app1"));
  EXPECT_EQ(runner_.calls.at(0).config["runtimeConfig"]["fleetletFirewall"]["egress"], "local");
}

TEST_F(ExecutorTest, FailedAddDeletesWhatRanAndReportsThePluginsError) {
  runner_.respond = [](const FakeRunner::Call& c) -> std::optional<PluginOutput> {
    if (c.plugin == "two" && c.command == "ADD") {
      return PluginOutput{
          .exit_code = 1,
          .out = R"({"cniVersion":"1.0.0","code":11,"msg":"busy","details":"lock"})"};
    }
    return std::nullopt;
  };
  auto ex = make();
  auto att = ex->add(request());
  ASSERT_FALSE(att);
  EXPECT_EQ(att.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(
      att.error().message(),
      "add app1:eth0 to network unit: CNI plugin \"two\" ADD failed: busy: lock (CNI error 11)");
  EXPECT_EQ(runner_.sequence(),
            (std::vector<std::string>{"ADD one", "ADD two", "DEL three", "DEL two", "DEL one"}));
  EXPECT_EQ(runner_.calls[2].config["prevResult"]["seen"], (Json{"one"}));
  auto left = ex->attachments();
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty());
  EXPECT_TRUE(std::filesystem::is_empty(tmp_->path() / "cache"));
}

TEST_F(ExecutorTest, FailedCleanUpKeepsTheEntryForGc) {
  bool del_fails = true;
  runner_.respond = [&](const FakeRunner::Call& c) -> std::optional<PluginOutput> {
    if (c.plugin == "three" && c.command == "ADD")
      return PluginOutput{.exit_code = 2, .err = "boom"};
    if (c.plugin == "one" && c.command == "DEL" && del_fails) {
      return PluginOutput{.exit_code = 1, .err = "still busy"};
    }
    return std::nullopt;
  };
  auto ex = make();
  auto att = ex->add(request());
  ASSERT_FALSE(att);
  EXPECT_NE(att.error().message().find("\"three\" ADD failed: exit code 2: boom"),
            std::string::npos);
  EXPECT_NE(att.error().message().find("clean-up failed too"), std::string::npos);
  EXPECT_NE(att.error().message().find("\"one\" DEL failed: exit code 1: still busy"),
            std::string::npos);

  del_fails = false;
  runner_.calls.clear();
  auto report = ex->gc({});
  EXPECT_TRUE(report.errors.empty());
  EXPECT_EQ(report.removed, std::vector<std::string>{"app1:eth0"});
  EXPECT_EQ(runner_.sequence(), (std::vector<std::string>{"DEL three", "DEL two", "DEL one"}));
  EXPECT_FALSE(runner_.calls[0].config.contains("prevResult")) << "ADD never completed";
}

TEST_F(ExecutorTest, GcKeepsLiveAttachments) {
  auto ex = make();
  ASSERT_TRUE(ex->add(request("a")));
  ASSERT_TRUE(ex->add(request("b")));
  auto report = ex->gc({"b"});
  EXPECT_EQ(report.removed, std::vector<std::string>{"a:eth0"});
  auto left = ex->attachments();
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1U);
  EXPECT_EQ(left->front().container_id, "b");
  EXPECT_EQ(left->front().app, "camera");
}

TEST_F(ExecutorTest, RepeatedAddDeletesTheEarlierAttachmentFirst) {
  auto ex = make();
  ASSERT_TRUE(ex->add(request()));
  runner_.calls.clear();
  ASSERT_TRUE(ex->add(request()));
  EXPECT_EQ(runner_.sequence(), (std::vector<std::string>{"DEL three", "DEL two", "DEL one",
                                                          "ADD one", "ADD two", "ADD three"}));
}

TEST_F(ExecutorTest, TimeoutsAndStartFailuresNameThePlugin) {
  runner_.respond = [](const FakeRunner::Call& c) -> std::optional<PluginOutput> {
    if (c.plugin == "two" && c.command == "ADD") {
      return PluginOutput{.exit_code = -1, .term_signal = 9, .timed_out = true};
    }
    return std::nullopt;
  };
  auto ex = make();
  auto att = ex->add(request());
  ASSERT_FALSE(att);
  EXPECT_EQ(att.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(att.error().message().find("\"two\" ADD did not finish within 30000 ms"),
            std::string::npos)
      << att.error().message();

  std::filesystem::remove(tmp_->path() / "bin" / "three");
  runner_.respond = nullptr;
  att = ex->add(request());
  ASSERT_FALSE(att);
  EXPECT_EQ(att.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(att.error().message().find("CNI plugin \"three\" ADD: no executable in"),
            std::string::npos)
      << att.error().message();
}

TEST_F(ExecutorTest, BadRequestsRunNothing) {
  auto ex = make();
  auto bad_id = request("-bad");
  EXPECT_EQ(ex->add(bad_id).error().code(), ErrorCode::kInvalidArgument);
  auto bad_if = request();
  bad_if.ifname = "eth0:1";
  EXPECT_EQ(ex->add(bad_if).error().code(), ErrorCode::kInvalidArgument);
  auto no_ns = request();
  no_ns.netns = tmp_->path() / "nope";
  auto r = ex->add(no_ns);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("network namespace"), std::string::npos);
  auto bad_port = request();
  bad_port.port_mappings[0].protocol = "sctp";
  EXPECT_EQ(ex->add(bad_port).error().code(), ErrorCode::kInvalidArgument);
  auto bad_arg = request();
  bad_arg.args["A;B"] = "1";
  EXPECT_EQ(ex->add(bad_arg).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(runner_.calls.empty());
  EXPECT_FALSE(std::filesystem::exists(tmp_->path() / "cache"));
}

TEST_F(ExecutorTest, ABadConflistIsAnErrorNamingTheFile) {
  std::ofstream(tmp_->path() / "conf" / "50-test.conflist") << R"({"name": "x", "plugins": [})";
  ExecutorOptions o;
  o.conf_dir = tmp_->path() / "conf";
  auto ex = Executor::create(o, runner_);
  ASSERT_FALSE(ex);
  EXPECT_NE(ex.error().message().find("50-test.conflist"), std::string::npos)
      << ex.error().message();
}

TEST(InterpretPluginOutput, ErrorObjectOnStderrAndPlainFailures) {
  auto r = interpretPluginOutput(
      "bridge", "DEL",
      PluginOutput{.exit_code = 1, .err = R"({"code":3,"msg":"container unknown"})"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message(),
            "CNI plugin \"bridge\" DEL failed: container unknown (CNI error 3)");

  r = interpretPluginOutput("x", "ADD", PluginOutput{.exit_code = -1, .term_signal = 11});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "CNI plugin \"x\" ADD failed: killed by signal 11");

  r = interpretPluginOutput("x", "ADD",
                            PluginOutput{.exit_code = 0, .out = R"({"cniVersion":"1.0.0",
                              "ips":[{"address":"10.0.0.2"}]})"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("result.ips[0].address"), std::string::npos)
      << r.error().message();

  r = interpretPluginOutput("x", "CHECK", PluginOutput{.exit_code = 0, .out = "whatever"});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
}

TEST(DefaultNetwork, IsBridgeHostLocalPortmapAndFirewall) {
  auto net = defaultNetwork({});
  ASSERT_TRUE(net);
  EXPECT_EQ(net->name, "fleetlet");
  ASSERT_EQ(net->plugins.size(), 3U);
  EXPECT_EQ(net->plugins[0].type, "bridge");
  EXPECT_EQ(net->plugins[0].raw["bridge"], "fleetlet0");
  EXPECT_EQ(net->plugins[0].raw["ipam"]["type"], "host-local");
  EXPECT_EQ(net->plugins[0].raw["ipam"]["ranges"][0][0]["subnet"], "10.90.0.0/16");
  EXPECT_TRUE(net->plugins[1].capabilities.contains("portMappings"));
  EXPECT_EQ(net->plugins[2].type, "fleetlet-firewall");
  EXPECT_TRUE(net->plugins[2].capabilities.contains("fleetletFirewall"));
  // An empty configuration directory means the default too.
  auto loaded = loadNetwork("/nonexistent/fleetlet-conf", {});
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->raw, net->raw);
}

// kill -9 during put() leaves "<name>.json.tmp-<pid>"; list() removes it once that process is
// gone, and leaves a temp file of a live writer (this process) and the entries alone.
TEST(AttachmentCacheTest, ListRemovesTempFilesOfWritersThatAreGone) {
  auto tmp = testing::TempDir::create("fleetlet-cni-cache");
  ASSERT_TRUE(tmp) << tmp.error().message();
  AttachmentCache cache(tmp->path() / "attachments");
  ASSERT_TRUE(cache.put({.container_id = "a",
                         .ifname = "eth0",
                         .app = "a",
                         .netns = "/x",
                         .network = Json{{"name", "n"}}}));
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_GT(gone, 0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  auto dead = cache.dir() / fmt::format("b:eth0.json.tmp-{}", gone);
  auto live = cache.dir() / fmt::format("c:eth0.json.tmp-{}", ::getpid());
  std::ofstream(dead) << "{";
  std::ofstream(live) << "{";
  auto listed = cache.list();
  ASSERT_TRUE(listed) << listed.error().message();
  EXPECT_EQ(*listed, (std::vector<std::pair<std::string, std::string>>{{"a", "eth0"}}));
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live));
}

}  // namespace
}  // namespace fleetlet::cni
