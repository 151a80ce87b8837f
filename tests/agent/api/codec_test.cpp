// The JSON codec of the API types and the text fleetletctl prints from them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/json_codec.h"
#include "cli/app_commands.h"
#include "fake_node_service.h"

namespace fleetlet::api {
namespace {

using namespace std::chrono_literals;

core::Clock::time_point at(std::string_view text) {
  auto t = parseTime(text);
  EXPECT_TRUE(t) << text;
  return t.value_or(core::Clock::time_point());
}

TEST(ApiCodec, TimesAreRfc3339UtcWithMilliseconds) {
  auto t = at("2026-11-21T06:00:56.123456789Z");
  EXPECT_EQ(formatTime(t), "2026-11-21T06:00:56.123Z");
  EXPECT_EQ(at("2026-11-21T08:00:56.5+02:00"), at("2026-11-21T06:00:56.500Z"));
  EXPECT_EQ(at("2026-11-21T06:00:56Z") - at("2026-11-21T06:00:55.999999999Z"), 1ns);
  EXPECT_EQ(formatTime(core::Clock::time_point()), "1970-01-01T00:00:00.000Z");
  for (auto bad : {"", "2026-11-21", "2026-11-21T06:00:56", "2026-13-01T00:00:00Z",
                   "2026-11-21T06:00:56.Z", "2026-11-21T06:00:56Zjunk"}) {
    auto r = parseTime(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(ApiCodec, AppDetailRoundTrips) {
  test::FakeNodeService service;
  auto now = at("2026-11-21T06:00:00Z");
  service.seedExample(now);
  auto detail = service.describe("camera");
  ASSERT_TRUE(detail);
  auto back = appDetailFromJson(toJson(*detail), "app");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(toJson(*back), toJson(*detail));
  EXPECT_EQ(back->status.started_at, detail->status.started_at);
  EXPECT_EQ(back->recent_events.size(), 2u);
}

TEST(ApiCodec, DecodingNamesTheBadMember) {
  Json j = {{"name", "camera"}, {"state", "running"}, {"restarts", "two"}};
  auto r = appStatusFromJson(j, "apps[3]");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "apps[3].restarts: expected an integer, got string");
  auto e = nodeEventFromJson({{"seq", 1}, {"kind", "x"}, {"time", "yesterday"}}, "event");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("event.time: \"yesterday\" is not an RFC 3339 time"),
            std::string::npos)
      << e.error().message();
  EXPECT_FALSE(nodeStatusFromJson({{"desiredRevision", 1}}, "status"));
}

TEST(CliFormat, HumanAgeUsesTheLargestWholeUnit) {
  EXPECT_EQ(cli::humanAge(5s), "5s");
  EXPECT_EQ(cli::humanAge(59s), "59s");
  EXPECT_EQ(cli::humanAge(3min + 59s), "3m");
  EXPECT_EQ(cli::humanAge(2h + 30min), "2h");
  EXPECT_EQ(cli::humanAge(24h * 4 + 3h), "4d");
  EXPECT_EQ(cli::humanAge(-3s), "0s");
}

TEST(CliFormat, AppsTableAlignsColumns) {
  test::FakeNodeService service;
  auto now = at("2026-11-21T06:00:00Z");
  service.seedExample(now);
  auto table = cli::formatAppsTable(*service.apps(), now);
  EXPECT_EQ(table,
            "NAME        RUNTIME    STATE                RESTARTS  IMAGE                         "
            "  AGE\n"
            "camera      container  running              2         "
            "127.0.0.1:5000/acme/camera:1.4  3m\n"
            "plc-bridge  native     backoff (unhealthy)  5         -                             "
            "  -\n");
}

TEST(CliFormat, SystemAppsAreMarkedInTheTableTheApiAndDescribe) {
  auto now = at("2026-11-21T06:00:00Z");
  core::AppStatus streams{.name = "fleetlet-streams", .runtime = "container", .state = "running"};
  streams.system = true;
  core::AppStatus camera{.name = "camera", .runtime = "container", .state = "running"};
  EXPECT_EQ(cli::formatAppsTable({streams, camera}, now),
            "NAME              RUNTIME             STATE    RESTARTS  IMAGE  AGE\n"
            "fleetlet-streams  container (system)  running  0         -      -\n"
            "camera            container           running  0         -      -\n");
  // The API carries the mark only where it is set, and decodes its absence as an ordinary app.
  EXPECT_EQ(toJson(streams).value("system", false), true);
  EXPECT_FALSE(toJson(camera).contains("system"));
  auto back = appStatusFromJson(toJson(streams), "apps[0]");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_TRUE(back->system);
  EXPECT_FALSE(appStatusFromJson(toJson(camera), "apps[1]")->system);
  auto bad = appStatusFromJson({{"name", "x"}, {"state", "running"}, {"system", "yes"}}, "apps[2]");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "apps[2].system: expected a boolean, got string");
  EXPECT_THAT(cli::formatDescribe({.status = streams}, now), ::testing::HasSubstr("System:"));
  EXPECT_THAT(cli::formatDescribe({.status = camera}, now),
              ::testing::Not(::testing::HasSubstr("System:")));
}

TEST(CliFormat, YamlishQuotesOnlyWhatNeedsIt) {
  Json spec = Json::parse(R"({"args":["/bin/camera","--fps","2"],"env":{"A":"","B":"yes"},
    "expose":[{"port":8080,"hostPort":18080}],"volumes":[],"tty":true})");
  EXPECT_EQ(cli::yamlish(spec, 0),
            "args:\n"
            "  - /bin/camera\n"
            "  - \"--fps\"\n"
            "  - \"2\"\n"
            "env:\n"
            "  A: \"\"\n"
            "  B: \"yes\"\n"
            "expose:\n"
            "  - hostPort: 18080\n"
            "    port: 8080\n"
            "tty: true\n"
            "volumes: []\n");
}

TEST(CliFormat, NodeStatusListsErrors) {
  EXPECT_EQ(cli::formatNodeStatus({.desired_revision = 7,
                                   .applied_revision = 6,
                                   .last_good_revision = 5,
                                   .converged = false,
                                   .errors = {"apps.a: x", "apps.b: y"}}),
            "Desired revision:   7\n"
            "Applied revision:   6\n"
            "Last good revision: 5\n"
            "Converged:          no\n"
            "Errors:\n"
            "  apps.a: x\n"
            "  apps.b: y\n");
}

// An open rollback window and failed revisions: through the API's JSON and shown by
// `fleetletctl status`.
TEST(CliFormat, NodeStatusShowsTheRollbackWindowAndFailedRevisions) {
  core::NodeStatus status{
      .desired_revision = 9,
      .applied_revision = 9,
      .last_good_revision = 8,
      .converged = true,
      .errors = {},
      .failed = {{.revision = 7, .reason = "app web: exited 3 times"}},
      .rollback_window = core::RollbackWindow{
          .revision = 9, .back_to = 8, .until = *parseTime("2026-12-07T01:02:03.000Z")}};
  auto back = nodeStatusFromJson(toJson(status), "status");
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_TRUE(back->rollback_window);
  EXPECT_EQ(back->rollback_window->revision, 9);
  EXPECT_EQ(back->rollback_window->back_to, 8);
  EXPECT_EQ(back->rollback_window->until, status.rollback_window->until);
  EXPECT_EQ(cli::formatNodeStatus(*back),
            "Desired revision:   9\n"
            "Applied revision:   9\n"
            "Last good revision: 8\n"
            "Converged:          yes\n"
            "Errors:             none\n"
            "Rollback window:    revision 9 until 2026-12-07T01:02:03.000Z (a failure rolls back "
            "to 8)\n"
            "Failed revisions:\n"
            "  7: app web: exited 3 times\n");
  // Without a window the member is left out.
  status.rollback_window.reset();
  EXPECT_FALSE(toJson(status).contains("rollbackWindow"));
}

}  // namespace
}  // namespace fleetlet::api
