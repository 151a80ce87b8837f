// Unit tests of the CNI data types: CIDRs, results, error objects, conflists, requests.
#include <gtest/gtest.h>

#include "firewall/policy.h"
#include "spec/types.h"

namespace fleetlet::cni {
namespace {

TEST(Cidr, ParsesAndNormalizes) {
  auto v4 = parseCidr("10.1.2.3/16");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->network().toString(), "10.1.0.0/16");
  EXPECT_TRUE(v4->contains(*parseCidr("10.1.255.1/32")));
  EXPECT_FALSE(v4->contains(*parseCidr("10.2.0.1/32")));
  auto v6 = parseCidr("fd00::1", true);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->toString(), "fd00::1/128");
  for (const char* bad : {"10.1.2.3", "10.1.2.3/33", "10.1.2/8", "x/8", "10.0.0.0/", "::/129",
                          "10.0.0.0/8/8", "10.0.0.0/-1"}) {
    auto r = parseCidr(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(bad), std::string::npos);
  }
}

TEST(AddResult, ParsesTheSpecExampleAndKeepsUnknownFields) {
  auto r = parseAddResult(R"({"cniVersion":"1.0.0",
    "interfaces":[{"name":"cni0","mac":"00:11:22:33:44:55"},
                  {"name":"eth0","mac":"99:88:77:66:55:44","sandbox":"/var/run/netns/blue"}],
    "ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1","interface":1}],
    "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.1.0.1"]},"extra":true})");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->ips.size(), 1U);
  EXPECT_EQ(r->ips[0].address.toString(), "10.1.0.5/16");
  EXPECT_EQ(r->ips[0].gateway.value_or(Cidr{}).toString(), "10.1.0.1/32");
  EXPECT_EQ(r->ips[0].interface, 1);
  EXPECT_EQ(r->interfaces[1].sandbox, "/var/run/netns/blue");
  EXPECT_EQ(r->routes[0].dst.toString(), "0.0.0.0/0");
  EXPECT_EQ(r->raw["extra"], true);
}

TEST(AddResult, RejectsWhatItCannotUseNamingTheField) {
  struct Case {
    const char* text;
    const char* field;
  };
  for (const auto& c :
       {Case{R"([])", "result"}, Case{R"({"ips":[]})", "result.cniVersion"},
        Case{R"({"cniVersion":"1.0.0","ips":{}})", "result.ips"},
        Case{R"({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1/24",
                               "interface":0}]})",
             "result.ips[0].interface"},
        Case{R"({"cniVersion":"1.0.0","routes":[{"gw":"1.2.3.4"}]})", "result.routes[0].dst"},
        Case{R"({"cniVersion":"1.0.0","interfaces":[{"mac":"x"}]})", "result.interfaces[0].name"},
        Case{"not json", "result"}}) {
    auto r = parseAddResult(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos) << r.error().message();
  }
}

TEST(ErrorObject, ParsesAndMapsCodes) {
  auto e = parseErrorObject(R"({"cniVersion":"1.0.0","code":7,"msg":"Invalid Configuration",
                                "details":"Network 192.168.0.0/31 too small"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 7);
  EXPECT_EQ(e->details, "Network 192.168.0.0/31 too small");
  EXPECT_FALSE(parseErrorObject(R"({"code":"7","msg":"x"})"));
  EXPECT_FALSE(parseErrorObject(R"({"code":7})"));
  EXPECT_EQ(fromCniCode(3), ErrorCode::kNotFound);
  EXPECT_EQ(fromCniCode(11), ErrorCode::kUnavailable);
  EXPECT_EQ(fromCniCode(1), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(fromCniCode(7), ErrorCode::kInvalidArgument);
  EXPECT_EQ(fromCniCode(123), ErrorCode::kInternal);
  EXPECT_EQ(toCniCode(ErrorCode::kInvalidArgument), 7);
  EXPECT_EQ(toCniCode(ErrorCode::kUnavailable), 11);
  EXPECT_EQ(toCniCode(ErrorCode::kInternal), 100);
}

TEST(ConfList, ValidatesNamesVersionsAndPlugins) {
  auto ok = parseConfList(R"({"cniVersion":"0.4.0","cniVersions":["1.0.0","1.1.0"],"name":"n",
      "plugins":[{"type":"bridge","capabilities":{"portMappings":true,"mac":false}}]})",
                          "f");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->cni_version, "1.0.0");
  EXPECT_EQ(ok->plugins[0].capabilities, (std::set<std::string>{"portMappings"}));

  struct Case {
    const char* text;
    const char* says;
    ErrorCode code = ErrorCode::kInvalidArgument;
  };
  for (const auto& c : {
           Case{R"({"cniVersion":"1.0.0","name":"-n","plugins":[{"type":"a"}]})", "name \"-n\""},
           Case{R"({"cniVersion":"0.3.1","name":"n","plugins":[{"type":"a"}]})",
                "none of the CNI versions [0.3.1]", ErrorCode::kFailedPrecondition},
           Case{R"({"name":"n","plugins":[{"type":"a"}]})", "cniVersion: missing"},
           Case{R"({"cniVersion":"1.0.0","name":"n","type":"bridge"})", "plugins"},
           Case{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../sh"}]})",
                "plugins[0].type: \"../sh\" is not a file name"},
           Case{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","prevResult":{}}]})",
                "plugins[0].prevResult: reserved"},
           Case{R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a",
                "capabilities":{"x":1}}]})",
                "plugins[0].capabilities.x"},
       }) {
    auto r = parseConfList(c.text, "/etc/x.conflist");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code(), c.code) << r.error().message();
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("/etc/x.conflist"), std::string::npos);
  }
}

TEST(Names, ContainerIdsAndInterfaces) {
  EXPECT_TRUE(isValidContainerId("app_1.x-y"));
  EXPECT_FALSE(isValidContainerId(""));
  EXPECT_FALSE(isValidContainerId("_x"));
  EXPECT_FALSE(isValidContainerId("a:b"));
  EXPECT_TRUE(isValidInterfaceName("eth0"));
  EXPECT_FALSE(isValidInterfaceName("a-very-long-name0"));
  EXPECT_FALSE(isValidInterfaceName("a/b"));
}

TEST(Policy, ParsesOnTopOfABase) {
  using firewall::Egress;
  auto p = firewall::parsePolicy(Json::parse(R"({"egress":"local","allow":["10.0.0.5/24"]})"), "c");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->egress, Egress::kLocal);
  EXPECT_EQ(p->allow.at(0).toString(), "10.0.0.0/24");
  auto q = firewall::parsePolicy(Json::parse(R"({"egress":"none"})"), "rc", *p);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->egress, Egress::kNone);
  EXPECT_EQ(q->allow.size(), 1U) << "allow kept from the base";
  auto bad = firewall::parsePolicy(Json::parse(R"({"egress":"some"})"), "rc");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("rc.egress"), std::string::npos);
  bad = firewall::parsePolicy(Json::parse(R"({"allow":["camera"]})"), "rc");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("rc.allow[0]"), std::string::npos);
}

}  // namespace
}  // namespace fleetlet::cni
