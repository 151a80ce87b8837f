// The local API's routes: the real server on a temp unix socket over a FakeNodeService.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "api/api_server.h"
#include "api/json_codec.h"
#include "fake_node_service.h"
#include "raw_client.h"
#include "support/temp_dir.h"

namespace fleetlet::api {
namespace {

using namespace std::chrono_literals;
using test::FakeNodeService;
using test::Reply;

constexpr auto kPatience = 10s;

const char* kManifest = R"(apiVersion: fleetlet.io/v1
kind: NodeState
revision: 8
apps:
  camera:
    runtime: container
    image: 127.0.0.1:5000/acme/camera:1.4
  plc-bridge:
    runtime: native
    exec: {path: /opt/plc/bridge}
)";

Json parse(const Reply& r) {
  auto j = parseJson(r.body, "reply");
  EXPECT_TRUE(j) << r.body;
  return j.value_or(Json());
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("api-test");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    root_ = dir_->path();
    // The parent directory does not exist yet: the server creates it.
    socket_ = (root_ / "run" / "fleetletd.sock").string();
    service_.seedExample(core::Clock::now());
    auto server =
        ApiServer::start(service_, {.socket_path = socket_, .routes = {.log_poll = 10ms}});
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  Reply call(const std::string& method, const std::string& path, const std::string& body = {},
             std::chrono::milliseconds patience = kPatience) {
    return test::call(socket_, method, path, body, patience);
  }

  void expectError(const Reply& r, long status, std::string_view code, std::string_view text) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = parse(r);
    EXPECT_EQ(j.value("code", ""), code) << r.body;
    EXPECT_NE(j.value("message", "").find(text), std::string::npos) << r.body;
  }

  // A log directory for `app` with the given files (name → content).
  std::filesystem::path makeLogs(const std::string& app,
                                 const std::map<std::string, std::string>& files) {
    auto dir = root_ / "logs" / app;
    std::filesystem::create_directories(dir);
    for (const auto& [name, content] : files) std::ofstream(dir / name) << content;
    service_.setLogDir(app, dir);
    return dir;
  }

  // `n` streamed GETs of `path` whose response heads arrived: followers holding their
  // connections open.
  std::vector<std::unique_ptr<test::OpenStream>> openFollowers(const std::string& path, int n) {
    std::vector<std::unique_ptr<test::OpenStream>> followers;
    for (int i = 0; i < n; ++i) {
      std::string error;
      auto follower = test::OpenStream::open(socket_, path, error);
      EXPECT_NE(follower, nullptr) << error;
      if (!follower) break;
      followers.push_back(std::move(follower));
    }
    for (auto& f : followers) EXPECT_EQ(f->waitForHead(kPatience), 200);
    return followers;
  }

  // Whether status and apply, which need the blocking pool, are answered within 5 s: a
  // deadline for the test, not a measure of speed.
  bool poolAnswers() {
    auto status = call("GET", "/v1/status", {}, 5s);
    EXPECT_EQ(status.status, 200) << status.body;
    auto applied = call("POST", "/v1/apply", kManifest, 5s);
    EXPECT_EQ(applied.status, 201) << applied.body;
    return status.status == 200 && applied.status == 201;
  }

  FakeNodeService service_;
  std::optional<fleetlet::testing::TempDir> dir_;
  std::filesystem::path root_;  // dir_'s path
  std::string socket_;
  std::unique_ptr<ApiServer> server_;  // last: stops before the service and dir go
};

TEST_F(ApiTest, SocketIsCreatedWithMode0660InANewDirectory) {
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(ApiTest, SecondServerOnTheSameSocketIsRefused) {
  auto second = ApiServer::start(service_, {.socket_path = socket_});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(call("GET", "/v1/status").status, 200);  // the first one still answers
}

TEST_F(ApiTest, StopRemovesTheSocket) {
  server_->stop();
  EXPECT_FALSE(std::filesystem::exists(socket_));
  EXPECT_EQ(call("GET", "/v1/status").status, 0);
}

TEST_F(ApiTest, ApplyReturns201WithRevisionAndAppCount) {
  auto r = call("POST", "/v1/apply?source=node.yaml", kManifest);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  auto result = applyResultFromJson(parse(r), "reply");
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->revision, 8);
  EXPECT_EQ(result->apps, 2);
  auto applied = service_.applied();
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].first, kManifest);
  EXPECT_EQ(applied[0].second, "node.yaml");
}

TEST_F(ApiTest, BadManifestIs400NamingTheField) {
  std::string bad = std::string(kManifest) + "    resources: {memory: 64Q}\n";
  auto r = call("POST", "/v1/apply?source=node.yaml", bad);
  expectError(r, 400, "ERR_BAD_REQUEST",
              "node.yaml: apps.camera.resources.memory: \"64Q\" is not a quantity");
  EXPECT_TRUE(service_.applied().empty());
  EXPECT_EQ(service_.status()->desired_revision, 7);
}

TEST_F(ApiTest, OldRevisionIs409) {
  std::string old = kManifest;
  old.replace(old.find("revision: 8"), 11, "revision: 7");
  auto r = call("POST", "/v1/apply", old);
  expectError(r, 409, "ERR_FAILED_PRECONDITION",
              "revision 7 is not newer than the applied revision 7");
  EXPECT_TRUE(service_.applied().empty());
}

TEST_F(ApiTest, EmptyApplyBodyIs400) {
  expectError(call("POST", "/v1/apply", "\n  \n"), 400, "ERR_BAD_REQUEST", "empty request body");
}

TEST_F(ApiTest, ApplyBodyOverOneMebibyteIs413) {
  std::string huge = std::string(kManifest) + "# " + std::string(2 << 20, 'x') + "\n";
  auto r = call("POST", "/v1/apply", huge);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("exceeds the limit of 1048576 bytes"), std::string::npos) << r.body;
  EXPECT_TRUE(service_.applied().empty());
  EXPECT_EQ(call("GET", "/v1/status").status, 200);
}

TEST_F(ApiTest, AppsListsEveryAppWithItsStatus) {
  auto r = call("GET", "/v1/apps");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = parse(r);
  ASSERT_TRUE(j["apps"].is_array());
  ASSERT_EQ(j["apps"].size(), 2u);
  auto camera = appStatusFromJson(j["apps"][0], "apps[0]");
  ASSERT_TRUE(camera) << camera.error().message();
  EXPECT_EQ(camera->name, "camera");
  EXPECT_EQ(camera->state, "running");
  EXPECT_EQ(camera->restarts, 2);
  EXPECT_EQ(camera->pid, 4242u);
  EXPECT_EQ(camera->last_exit_code, 137);
  EXPECT_TRUE(camera->started_at.has_value());
  auto plc = appStatusFromJson(j["apps"][1], "apps[1]");
  ASSERT_TRUE(plc) << plc.error().message();
  EXPECT_EQ(plc->state, "backoff");
  EXPECT_FALSE(plc->healthy);
  EXPECT_FALSE(plc->started_at.has_value());
  EXPECT_FALSE(j["apps"][1].contains("startedAt"));  // unset optionals are left out
}

TEST_F(ApiTest, DescribeReturnsSpecStatusAndRecentEvents) {
  auto r = call("GET", "/v1/apps/camera");
  ASSERT_EQ(r.status, 200) << r.body;
  auto detail = appDetailFromJson(parse(r), "app");
  ASSERT_TRUE(detail) << detail.error().message();
  EXPECT_EQ(detail->status.name, "camera");
  EXPECT_EQ(detail->spec["args"][2], "2");
  EXPECT_EQ(detail->spec["network"]["expose"][0]["hostPort"], 18080);
  ASSERT_EQ(detail->recent_events.size(), 2u);
  EXPECT_EQ(detail->recent_events[1].kind, "started");
}

TEST_F(ApiTest, UnknownAppIs404Everywhere) {
  expectError(call("GET", "/v1/apps/nope"), 404, "ERR_NOT_FOUND", "app \"nope\" not found");
  expectError(call("POST", "/v1/apps/nope/restart"), 404, "ERR_NOT_FOUND", "\"nope\"");
  expectError(call("GET", "/v1/apps/nope/logs"), 404, "ERR_NOT_FOUND", "\"nope\"");
  EXPECT_TRUE(service_.restarted().empty());
}

TEST_F(ApiTest, RestartRestartsTheApp) {
  auto r = call("POST", "/v1/apps/camera/restart");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r), (Json{{"app", "camera"}, {"restarted", true}}));
  EXPECT_EQ(service_.restarted(), std::vector<std::string>{"camera"});
}

TEST_F(ApiTest, ScreenshotAndShowWithoutADisplayAre409) {
  expectError(call("GET", "/v1/screenshot"), 409, "ERR_FAILED_PRECONDITION",
              "no display configured");
  expectError(call("POST", "/v1/apps/camera/show"), 409, "ERR_FAILED_PRECONDITION",
              "no display configured");
}

TEST_F(ApiTest, ScreenshotIsThePngAndShowSwitches) {
  const std::string png("\x89PNG\r\n\x1a\n\0binary", 14);
  service_.setScreen(png);
  auto r = call("GET", "/v1/screenshot");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, png);
  EXPECT_EQ(r.content_type, "image/png");
  EXPECT_EQ(call("GET", "/v1/screenshot?app=camera").body, png);
  expectError(call("GET", "/v1/screenshot?app=nope"), 404, "ERR_NOT_FOUND", "\"nope\"");
  auto shown = call("POST", "/v1/apps/camera/show");
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(parse(shown), (Json{{"app", "camera"}, {"shown", true}}));
  EXPECT_EQ(service_.shown(), std::vector<std::string>{"camera"});
  expectError(call("POST", "/v1/apps/..%2Fx/show"), 400, "ERR_BAD_REQUEST", "invalid app name");
}

TEST_F(ApiTest, StatusReportsRevisionsAndErrors) {
  auto r = call("GET", "/v1/status");
  ASSERT_EQ(r.status, 200) << r.body;
  auto status = nodeStatusFromJson(parse(r), "status");
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->desired_revision, 7);
  EXPECT_EQ(status->applied_revision, 6);
  EXPECT_EQ(status->last_good_revision, 6);
  EXPECT_FALSE(status->converged);
  EXPECT_EQ(status->errors, std::vector<std::string>{"apps.plc-bridge: exited with code 1"});
}

TEST_F(ApiTest, UnknownPathIs404AndWrongMethodIs405) {
  EXPECT_EQ(call("GET", "/v1/nodes").status, 404);
  EXPECT_EQ(call("GET", "/v2/apps").status, 404);
  EXPECT_EQ(call("GET", "/v1/apps/camera/reboot").status, 404);
  EXPECT_EQ(call("GET", "/v1/apply").status, 405);
  EXPECT_EQ(call("DELETE", "/v1/apps/camera").status, 405);
}

TEST_F(ApiTest, EventsAfterSeqAreNdjsonOldestFirst) {
  service_.publish("camera", "pulled", "image 1.4");
  service_.publish("camera", "created", "");
  service_.publish("", "applied", "revision 8");
  auto r = call("GET", "/v1/events?after=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  std::vector<core::NodeEvent> events;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    auto e = nodeEventFromJson(*parseJson(line, "line"), "event");
    ASSERT_TRUE(e) << e.error().message();
    events.push_back(*e);
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seq, 2);
  EXPECT_EQ(events[0].kind, "created");
  EXPECT_EQ(events[1].seq, 3);
  EXPECT_EQ(events[1].app, "");
  EXPECT_EQ(events[1].message, "revision 8");
  EXPECT_EQ(call("GET", "/v1/events?after=3").body, "");
  auto limited = call("GET", "/v1/events?limit=1");
  EXPECT_EQ(std::count(limited.body.begin(), limited.body.end(), '\n'), 1);
}

TEST_F(ApiTest, BadEventsQueryIs400) {
  expectError(call("GET", "/v1/events?after=abc"), 400, "ERR_BAD_REQUEST", "after");
  expectError(call("GET", "/v1/events?after=-1"), 400, "ERR_BAD_REQUEST", "after");
  expectError(call("GET", "/v1/events?limit=0"), 400, "ERR_BAD_REQUEST", "limit");
  expectError(call("GET", "/v1/events?follow=maybe"), 400, "ERR_BAD_REQUEST", "follow");
  expectError(call("GET", "/v1/apps/camera/logs?tail=x"), 400, "ERR_BAD_REQUEST", "tail");
}

TEST_F(ApiTest, EventsFollowReceivesEventsPublishedAfterTheRequest) {
  service_.publish("camera", "pulled", "before");
  std::atomic<size_t> received{0};
  std::vector<std::string> lines;
  Reply reply;
  std::thread follower([&] {
    reply = test::collectLines(
        socket_, "/v1/events?follow=true",
        [&](const std::vector<std::string>& l) {
          received = l.size();
          return l.size() >= 3;
        },
        lines);
  });
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (received < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_EQ(received, 1u) << "the stored event did not arrive";
  // Published while the follower waits: both must arrive, in order.
  service_.publish("camera", "started", "after 1");
  service_.publish("", "applied", "after 2");
  follower.join();
  EXPECT_EQ(reply.status, 200) << reply.body;
  ASSERT_EQ(lines.size(), 3u);
  auto last = nodeEventFromJson(*parseJson(lines[2], "line"), "event");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->seq, 3);
  EXPECT_EQ(last->message, "after 2");
  // The follower hung up; the server goes on serving.
  EXPECT_EQ(call("GET", "/v1/status").status, 200);
}

TEST_F(ApiTest, StoppingTheServerEndsFollowers) {
  std::atomic<bool> streaming{false};
  std::vector<std::string> lines;
  Reply reply;
  std::thread follower([&] {
    reply = test::collectLines(
        socket_, "/v1/events?follow",
        [&](const std::vector<std::string>& l) {
          streaming = true;
          return l.size() > 1;
        },
        lines);
  });
  service_.publish("", "applied", "one");
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!streaming && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(streaming);
  server_->stop(kPatience);
  follower.join();  // returns: the stream ended
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(lines.size(), 1u);
}

TEST_F(ApiTest, LogsTailJoinsPartialLinesAcrossRotatedFiles) {
  makeLogs("camera",
           {{"current.log.2", "2026-11-21T06:00:00.000000001Z stdout F one\n"},
            {"current.log.1",
             "2026-11-21T06:00:01.000000001Z stdout F two\n"
             "2026-11-21T06:00:02.000000001Z stderr P thr\n"},
            {"current.log",
             "2026-11-21T06:00:02.000000002Z stderr F ee\n"
             "not a cri line\n"
             "2026-11-21T06:00:03.000000001Z stdout F four\n"
             "2026-11-21T06:00:04.000000001Z stdout F fi"}});  // unterminated: not yet a line
  auto all = call("GET", "/v1/apps/camera/logs");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.content_type, "application/x-ndjson");
  std::vector<std::string> texts;
  std::istringstream lines(all.body);
  for (std::string line; std::getline(lines, line);) {
    auto l = logEntryFromJson(*parseJson(line, "line"), "line");
    ASSERT_TRUE(l) << l.error().message();
    texts.push_back(std::string(logs::toString(l->stream)) + ":" + l->text);
  }
  // A partial piece at the end of a rotated file is continued in the next one.
  EXPECT_EQ(texts,
            (std::vector<std::string>{"stdout:one", "stdout:two", "stderr:three", "stdout:four"}));
  auto tail = call("GET", "/v1/apps/camera/logs?tail=1");
  ASSERT_EQ(tail.status, 200);
  EXPECT_EQ(
      tail.body,
      "{\"log\":\"four\",\"stream\":\"stdout\",\"time\":\"2026-11-21T06:00:03.000000001Z\"}\n");
}

// A webview app has no log of its own: its lines are the kiosk's that name it. The tail and
// the follower count and send only those.
TEST_F(ApiTest, LogsOfAnAppReadFromAnothersLogHoldOnlyItsLines) {
  auto dir =
      makeLogs("kiosk", {{"current.log",
                          "2026-11-21T06:00:00Z stderr F info [webview] [ui] loaded\n"
                          "2026-11-21T06:00:01Z stderr F info [webview] [other] loaded\n"
                          "2026-11-21T06:00:02Z stderr F info [webview] [ui] console.log: a\n"
                          "2026-11-21T06:00:03Z stderr F info [webview] [other] console.log: b\n"
                          "2026-11-21T06:00:04Z stderr F info [webview] shown\n"}});
  service_.setLogSource("ui", dir, " [ui] ");
  auto texts = [](const std::string& body) {
    std::vector<std::string> out;
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      auto l = logEntryFromJson(*parseJson(line, "line"), "line");
      if (l) out.push_back(l->text);
    }
    return out;
  };
  auto all = call("GET", "/v1/apps/ui/logs");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(texts(all.body), (std::vector<std::string>{"info [webview] [ui] loaded",
                                                       "info [webview] [ui] console.log: a"}));
  auto tail = call("GET", "/v1/apps/ui/logs?tail=1");
  EXPECT_EQ(texts(tail.body), (std::vector<std::string>{"info [webview] [ui] console.log: a"}));
  auto since = call("GET", "/v1/apps/ui/logs?since=2026-11-21T06:00:01Z");
  EXPECT_EQ(texts(since.body), (std::vector<std::string>{"info [webview] [ui] console.log: a"}));

  std::vector<std::string> lines;
  Reply reply;
  std::thread follower([&] {
    reply = test::collectLines(
        socket_, "/v1/apps/ui/logs?tail=1&follow=true",
        [](const std::vector<std::string>& l) { return l.size() >= 2; }, lines);
  });
  std::this_thread::sleep_for(100ms);
  std::ofstream(dir / "current.log", std::ios::app)
      << "2026-11-21T06:00:05Z stderr F info [webview] [other] console.log: c\n"
      << "2026-11-21T06:00:06Z stderr F info [webview] [ui] console.log: d\n";
  follower.join();
  EXPECT_EQ(reply.status, 200) << reply.body;
  std::string joined;
  for (const auto& l : lines) joined += l + "\n";
  EXPECT_EQ(texts(joined), (std::vector<std::string>{"info [webview] [ui] console.log: a",
                                                     "info [webview] [ui] console.log: d"}));
}

TEST_F(ApiTest, LogsOfAnAppWithoutFilesAreEmpty) {
  service_.setLogDir("camera", root_ / "never-written");
  auto r = call("GET", "/v1/apps/camera/logs?tail=10");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "");
}

TEST_F(ApiTest, LogsFollowWaitsForAnAppThatHasNotLoggedYet) {
  auto dir = root_ / "logs" / "late";
  service_.setLogDir("late", dir);
  std::vector<std::string> lines;
  Reply reply;
  std::thread follower([&] {
    reply = test::collectLines(
        socket_, "/v1/apps/late/logs?follow=true",
        [](const std::vector<std::string>& l) { return !l.empty(); }, lines);
  });
  std::this_thread::sleep_for(50ms);  // let the follower find no directory first
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "current.log") << "2026-11-21T06:00:00Z stdout F hello\n";
  follower.join();
  EXPECT_EQ(reply.status, 200) << reply.body;
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"hello\""), std::string::npos) << lines[0];
}

TEST_F(ApiTest, LogsFollowStreamsAppendedLinesAndFollowsRotation) {
  auto dir = makeLogs("camera", {{"current.log", "2026-11-21T06:00:00Z stdout F old\n"}});
  std::atomic<size_t> received{0};
  std::vector<std::string> lines;
  Reply reply;
  std::thread follower([&] {
    reply = test::collectLines(
        socket_, "/v1/apps/camera/logs?tail=1&follow=true",
        [&](const std::vector<std::string>& l) {
          received = l.size();
          return l.size() >= 3;
        },
        lines);
  });
  auto wait_for = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (received < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    return received >= n;
  };
  ASSERT_TRUE(wait_for(1));
  std::ofstream(dir / "current.log", std::ios::app) << "2026-11-21T06:00:01Z stdout F new\n";
  ASSERT_TRUE(wait_for(2));
  // Rotate: what was written to the old file before the rename is not lost.
  std::ofstream(dir / "current.log", std::ios::app)
      << "2026-11-21T06:00:02Z stderr F last-in-old\n";
  std::filesystem::rename(dir / "current.log", dir / "current.log.1");
  std::ofstream(dir / "current.log") << "2026-11-21T06:00:03Z stdout F first-in-new\n";
  follower.join();
  ASSERT_GE(lines.size(), 3u);
  EXPECT_NE(lines[0].find("\"old\""), std::string::npos);
  EXPECT_NE(lines[1].find("\"new\""), std::string::npos);
  EXPECT_NE(lines[2].find("last-in-old"), std::string::npos) << lines[2];
}

// Issue 17, D8: a {name} that is no app name (here one that climbs out of the log root, as
// logs/<name> would in the agent) is 400 on every route, and the service is never asked.
TEST_F(ApiTest, NamesThatAreNoAppNamesAre400OnEveryRoute) {
  auto root = root_ / "data" / "logs";
  std::filesystem::create_directories(root / "camera");
  std::filesystem::create_directories(root_ / "data" / "secret");
  std::ofstream(root_ / "data" / "secret" / "current.log")
      << "2026-11-21T06:00:00Z stdout F the secret\n";
  std::filesystem::create_directories(root_ / "secret");
  std::ofstream(root_ / "secret" / "current.log")
      << "2026-11-21T06:00:00Z stdout F the other secret\n";
  service_.setLogRoot(root);
  ASSERT_EQ(call("GET", "/v1/apps/camera/logs").status, 200);  // the root is in use
  const std::vector<std::string> names = {"..",
                                          "..%2Fsecret",
                                          "..%2F..%2Fsecret",
                                          "%2e%2e",
                                          "%2E%2E%2Fsecret",
                                          "a%2Fb",
                                          ".",
                                          "Camera",
                                          "a%00b",
                                          "-camera",
                                          "a.b",
                                          "%20camera",
                                          std::string(64, 'a')};
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", ""}, {"POST", "/restart"}, {"GET", "/logs"}, {"GET", "/logs?follow=true&tail=1"}};
  for (const auto& name : names) {
    for (const auto& [method, suffix] : routes) {
      const std::string route = fmt::format("/v1/apps/{}{}", name, suffix);
      SCOPED_TRACE(fmt::format("{} {}", method, route));
      auto r = call(method, route);
      expectError(r, 400, "ERR_BAD_REQUEST", "invalid app name");
      EXPECT_EQ(r.body.find("the secret"), std::string::npos) << r.body;
      EXPECT_EQ(r.body.find("the other secret"), std::string::npos) << r.body;
    }
  }
  EXPECT_TRUE(service_.restarted().empty());
  // An empty segment binds no {name}, and slashes that are not escaped make another path: no
  // route serves them.
  for (const auto& [method, suffix] : routes) {
    expectError(call(method, "/v1/apps/" + suffix), 404, "ERR_NOT_FOUND", "no route");
  }
  EXPECT_EQ(call("GET", "/v1/apps/a/b/logs").status, 404);
  EXPECT_EQ(call("GET", "/v1/apps/../secret/logs").status, 404);
  // The longest valid name passes the check (and is unknown).
  expectError(call("GET", "/v1/apps/" + std::string(63, 'a') + "/logs"), 404, "ERR_NOT_FOUND",
              "has no logs");
}

// Issue 17, D4: idle events followers wait without a thread. 200 of them are more than the
// blocking pool's 4 threads many times over; status and apply, which need the pool, are still
// answered (a follower that held a pool thread while it waits would leave them queued behind
// the followers for as long as no event comes). The patience below is a deadline for the
// test, not a measure of speed.
TEST_F(ApiTest, TwoHundredIdleEventsFollowersLeaveThePoolToOtherRequests) {
  auto followers = openFollowers("/v1/events?follow=true", 200);
  ASSERT_EQ(followers.size(), 200u);
  // Each of them follows: an event reaches them all.
  service_.publish("", "applied", "revision 7");
  for (auto& f : followers) ASSERT_EQ(f->waitForLines(1, kPatience).size(), 1u);
  // All idle now. Requests that need the pool are answered.
  ASSERT_TRUE(poolAnswers());
  // And they still follow: the apply's event reaches each of them.
  for (auto& f : followers) {
    const auto& lines = f->waitForLines(2, kPatience);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("revision 8"), std::string::npos) << lines[1];
  }
}

// Issue 17, D4, logs side: 200 logs followers at the default poll interval hold a pool thread
// only for each short poll, so status and apply are still answered.
TEST_F(ApiTest, TwoHundredLogsFollowersLeaveThePoolToOtherRequests) {
  server_->stop();
  auto server = ApiServer::start(service_, {.socket_path = socket_});  // default log_poll
  ASSERT_TRUE(server) << server.error().message();
  server_ = std::move(*server);
  auto dir = makeLogs("camera", {{"current.log", "2026-11-21T06:00:00Z stdout F first\n"}});
  auto followers = openFollowers("/v1/apps/camera/logs?follow=true", 200);
  ASSERT_EQ(followers.size(), 200u);
  for (auto& f : followers) ASSERT_EQ(f->waitForLines(1, kPatience).size(), 1u);
  ASSERT_TRUE(poolAnswers());
  std::ofstream(dir / "current.log", std::ios::app) << "2026-11-21T06:00:01Z stdout F second\n";
  for (auto& f : followers) {
    const auto& lines = f->waitForLines(2, kPatience);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("\"second\""), std::string::npos) << lines[1];
  }
}

}  // namespace
}  // namespace fleetlet::api

namespace fleetlet::api {
namespace {

// /metrics and /v1/top are served when fleetletd gives them, as their endpoints produce them.
TEST(ApiMetrics, MetricsAndTopAreServedFromTheirEndpoints) {
  auto dir = fleetlet::testing::TempDir::create("api-metrics");
  ASSERT_TRUE(dir) << dir.error().message();
  const auto socket = (dir->path() / "api.sock").string();
  test::FakeNodeService service;
  std::atomic<int> scrapes = 0;
  auto server = ApiServer::start(
      service, {.socket_path = socket,
                .routes = {.metrics = {.exposition =
                                           [&] {
                                             ++scrapes;
                                             return std::string("# TYPE up gauge\nup 1\n");
                                           },
                                       .top =
                                           [] {
                                             return Json{{"apps", Json::array()}};
                                           }}}});
  ASSERT_TRUE(server) << server.error().message();
  auto metrics = test::call(socket, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.body, "# TYPE up gauge\nup 1\n");
  EXPECT_EQ(scrapes.load(), 1);
  auto top = test::call(socket, "GET", "/v1/top");
  EXPECT_EQ(top.status, 200);
  EXPECT_EQ(top.body, R"({"apps":[]})");
}

TEST(ApiMetrics, WithoutEndpointsThereIsNoMetricsRoute) {
  auto dir = fleetlet::testing::TempDir::create("api-metrics");
  ASSERT_TRUE(dir) << dir.error().message();
  const auto socket = (dir->path() / "api.sock").string();
  test::FakeNodeService service;
  auto server = ApiServer::start(service, {.socket_path = socket});
  ASSERT_TRUE(server) << server.error().message();
  EXPECT_EQ(test::call(socket, "GET", "/metrics").status, 404);
  EXPECT_EQ(test::call(socket, "GET", "/v1/top").status, 404);
}

TEST(ApiMetrics, ListenAddressesParseAndBadOnesAreRefused) {
  using Parsed = std::pair<std::string, std::uint16_t>;
  EXPECT_EQ(parseListenAddress("9477").value_or(Parsed{}), Parsed("127.0.0.1", 9477));
  EXPECT_EQ(parseListenAddress("0.0.0.0:80").value_or(Parsed{}), Parsed("0.0.0.0", 80));
  EXPECT_EQ(parseListenAddress("[::1]:0").value_or(Parsed{}), Parsed("::1", 0));
  for (const auto* bad : {"", "x", "70000", "localhost:9477", "127.0.0.1:", "1.2.3.4:9x"}) {
    auto r = parseListenAddress(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << r.error().message();
  }
}

}  // namespace
}  // namespace fleetlet::api
