#include "core/control_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::webview {
namespace {

using ::testing::HasSubstr;

TEST(ControlProtocolTest, ParsesCommands) {
  auto list = parseControlRequest(R"({"cmd":"list"})");
  ASSERT_TRUE(list) << list.error().describe();
  EXPECT_EQ(list->command, "list");
  auto load = parseControlRequest(
      R"({"cmd":"load","app":"ui","dir":"/var/lib/fleetlet/bundles/sha256/ab","services":{"events":"/run/fl/ui/events.sock"}})");
  ASSERT_TRUE(load) << load.error().describe();
  EXPECT_EQ(load->app, "ui");
  EXPECT_EQ(load->dir, "/var/lib/fleetlet/bundles/sha256/ab");
  EXPECT_EQ(load->services.at("events"), "/run/fl/ui/events.sock");
  auto limited =
      parseControlRequest(R"({"cmd":"load","app":"ui","dir":"/d","memoryLimitMiB":512})");
  ASSERT_TRUE(limited) << limited.error().describe();
  EXPECT_EQ(limited->memory_limit_mib, 512u);
  EXPECT_THAT(parseControlRequest(R"({"cmd":"load","app":"ui","dir":"/d","memoryLimitMiB":8})")
                  .error()
                  .message(),
              HasSubstr("request.memoryLimitMiB: expected an integer from 64 to 65536, got 8"));
  auto console = parseControlRequest(
      R"({"cmd":"load","app":"ui","dir":"/d","console":"/run/fl/ui/logs.sock"})");
  ASSERT_TRUE(console) << console.error().describe();
  EXPECT_EQ(console->console, "/run/fl/ui/logs.sock");
  EXPECT_THAT(parseControlRequest(R"({"cmd":"load","app":"ui","dir":"/d","console":"logs.sock"})")
                  .error()
                  .message(),
              HasSubstr("request.console: expected the absolute path of a unix socket"));
  EXPECT_FALSE(parseControlRequest(R"({"cmd":"load","app":"ui","dir":"/d","console":3})"));
  auto shot = parseControlRequest(R"({"cmd":"screenshot"})");
  ASSERT_TRUE(shot);
  EXPECT_TRUE(shot->app.empty());
}

TEST(ControlProtocolTest, RefusesBadRequestsNamingTheProblem) {
  auto msg = [](std::string_view line) { return parseControlRequest(line).error().message(); };
  EXPECT_THAT(msg("not json"), HasSubstr("request"));
  EXPECT_THAT(msg(R"({"cmd":"rm"})"), HasSubstr("unknown command \"rm\""));
  EXPECT_THAT(msg(R"({"cmd":"show"})"), HasSubstr("request.app: missing"));
  EXPECT_THAT(msg(R"({"cmd":"show","app":"../x"})"), HasSubstr("request.app"));
  EXPECT_THAT(msg(R"({"cmd":"load","app":"a","dir":"rel/dir"})"),
              HasSubstr("is not an absolute path"));
  EXPECT_THAT(msg(R"({"cmd":"load","app":"a","dir":"/d","services":{"events":1}})"),
              HasSubstr("request.services.events: expected the absolute path"));
  EXPECT_THAT(msg(R"({"cmd":"load","app":"a","dir":"/d","services":{"events":"rel.sock"}})"),
              HasSubstr("request.services.events: expected the absolute path"));
  EXPECT_THAT(msg(R"({"cmd":"load","app":"a","dir":"/d","services":{"mail":"/x.sock"}})"),
              HasSubstr("request.services.mail: unknown service"));
  EXPECT_THAT(msg(std::string(70000, ' ')), HasSubstr("longer than"));
}

TEST(ControlProtocolTest, ErrorsCarryACode) {
  auto line = controlError(Error(ErrorCode::kNotFound, "no app \"x\""));
  EXPECT_EQ(line, R"({"code":"ERR_NOT_FOUND","error":"no app \"x\"","ok":false})");
}

}  // namespace
}  // namespace fleetlet::webview
