// fleetletctl's node commands, run as the real binary against the real API server on a temp
// unix socket over a FakeNodeService.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/api_server.h"
#include "fake_node_service.h"
#include "manifest/yaml_json.h"
#include "os/child_process.h"
#include "support/temp_dir.h"

namespace fleetlet::api {
namespace {

using namespace std::chrono_literals;
using test::FakeNodeService;
using ::testing::HasSubstr;

constexpr auto kPatience = 10s;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("api-cli-test");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    socket_ = (dir_->path() / "fleetletd.sock").string();
    service_.seedExample(core::Clock::now());
    auto server = ApiServer::start(
        service_,
        {.socket_path = socket_,
         .routes = {.log_poll = 10ms, .metrics = {.top = [this] { return topReading(); }}}});
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  // GET /v1/top: each reading one second after the last; camera burns half a core, the node
  // is half busy.
  Json topReading() {
    const double n = top_readings_++;
    return Json{
        {"time", 1000 + n},
        {"node",
         {{"containerdUp", true},
          {"cpuSeconds", 100 + n},
          {"idleSeconds", 50 + (0.5 * n)},
          {"cpus", 2},
          {"memoryTotalBytes", 4.0 * 1024 * 1024 * 1024},
          {"memoryAvailableBytes", 1.0 * 1024 * 1024 * 1024},
          {"diskTotalBytes", 10.0 * 1024 * 1024 * 1024},
          {"diskFreeBytes", 512.0 * 1024 * 1024}}},
        {"apps",
         {{{"name", "camera"},
           {"state", "running"},
           {"healthy", true},
           {"restarts", 2},
           {"cpuSeconds", 10 + (0.5 * n)},
           {"memoryBytes", 16 * 1024 * 1024},
           {"memoryLimitBytes", 64 * 1024 * 1024},
           {"pids", 3},
           {"network", {{"ingressBytes", 1536}, {"egressBytes", 100}}}},
          {{"name", "plc-bridge"}, {"state", "backoff"}, {"healthy", false}, {"restarts", 0}}}}};
  }

  CommandOutput ctl(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {FLEETLETCTL_PATH};
    if (!env.contains("FLEETLET_API_SOCKET")) {
      argv.push_back("--api-socket");
      argv.push_back(socket_);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = runCommand(argv, env);
    EXPECT_TRUE(out) << out.error().message();
    return out.value_or(CommandOutput{});
  }

  std::filesystem::path write(const std::string& name, const std::string& content) {
    auto path = dir_->path() / name;
    std::ofstream(path) << content;
    return path;
  }

  // Starts fleetletctl with stdout into a file, for the commands that follow.
  ChildProcess spawnCtl(std::vector<std::string> args, const std::filesystem::path& out) {
    std::vector<std::string> argv = {FLEETLETCTL_PATH, "--api-socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    auto child = ChildProcess::spawn({.argv = argv, .stdout_path = out});
    EXPECT_TRUE(child) << child.error().message();
    return std::move(*child);
  }

  static std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Waits until the file holds `text`; returns its content.
  static std::string waitFor(const std::filesystem::path& path, std::string_view text) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    std::string content;
    while (std::chrono::steady_clock::now() < deadline) {
      content = slurp(path);
      if (content.find(text) != std::string::npos) break;
      std::this_thread::sleep_for(10ms);
    }
    return content;
  }

  FakeNodeService service_;
  std::optional<fleetlet::testing::TempDir> dir_;
  std::string socket_;
  std::atomic<int> top_readings_ = 0;
  std::unique_ptr<ApiServer> server_;
};

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

TEST_F(CliTest, ApplyPrintsRevisionAndAppCount) {
  auto file = write("node.yaml", kManifest);
  auto out = ctl({"apply", "-f", file.string()});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "applied revision 8 (2 apps)\n");
  EXPECT_EQ(out.err, "");
  auto applied = service_.applied();
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].first, kManifest);
  EXPECT_EQ(applied[0].second, file.string());
}

TEST_F(CliTest, ApplyOfABadManifestPrintsTheFieldAndFails) {
  auto file = write("bad.yaml", std::string(kManifest) + "    resources: {memory: 64Q}\n");
  auto out = ctl({"apply", "-f", file.string()});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_EQ(out.out, "");
  EXPECT_EQ(out.err, "fleetletctl: " + file.string() +
                         ": apps.camera.resources.memory: \"64Q\" is not a quantity\n");
  EXPECT_TRUE(service_.applied().empty());
}

TEST_F(CliTest, ApplyOfAnOldRevisionFails) {
  std::string old = kManifest;
  old.replace(old.find("revision: 8"), 11, "revision: 3");
  auto out = ctl({"apply", "-f", write("old.yaml", old).string()});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_EQ(out.err, "fleetletctl: revision 3 is not newer than the applied revision 7\n");
}

TEST_F(CliTest, ApplyOfAMissingFileFailsWithoutCallingFleetletd) {
  auto out = ctl({"apply", "-f", (dir_->path() / "nope.yaml").string()});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_NE(out.err.find("nope.yaml"), std::string::npos) << out.err;
  EXPECT_NE(out.err.find("No such file or directory"), std::string::npos) << out.err;
  EXPECT_TRUE(service_.applied().empty());
}

TEST_F(CliTest, ApplyOfAHugeManifestReportsTheLimit) {
  auto file = write("huge.yaml", std::string(kManifest) + "# " + std::string(2 << 20, 'x'));
  auto out = ctl({"apply", "-f", file.string()});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_NE(out.err.find("exceeds the limit of 1048576 bytes"), std::string::npos) << out.err;
}

TEST_F(CliTest, GetAppsPrintsATable) {
  auto out = ctl({"get", "apps"});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  std::istringstream lines(out.out);
  std::string header, camera, plc, extra;
  std::getline(lines, header);
  std::getline(lines, camera);
  std::getline(lines, plc);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_EQ(
      header,
      "NAME        RUNTIME    STATE                RESTARTS  IMAGE                           AGE");
  EXPECT_EQ(
      camera,
      "camera      container  running              2         127.0.0.1:5000/acme/camera:1.4  3m");
  EXPECT_EQ(
      plc,
      "plc-bridge  native     backoff (unhealthy)  5         -                               -");
}

TEST_F(CliTest, GetAppsAsJson) {
  auto out = ctl({"get", "apps", "-o", "json"});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  auto j = parseJson(out.out, "stdout");
  ASSERT_TRUE(j) << out.out;
  EXPECT_EQ((*j)["apps"][0]["name"], "camera");
  EXPECT_EQ((*j)["apps"][1]["lastExitCode"], 1);
}

TEST_F(CliTest, DescribeAppShowsStatusSpecAndEvents) {
  auto out = ctl({"describe", "app", "camera"});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  for (auto expected :
       {"Name:          camera\n", "State:         running\n", "Restarts:      2\n",
        "PID:           4242\n", "Last exit:     code 137 at ", "(4m ago)\n",
        "Spec:\n  args:\n    - /bin/camera\n",
        "    expose:\n      - hostPort: 18080\n        port: 8080\n",
        "Events:\n  4m       exited      code 137\n", "  3m       started     pid 4242\n"}) {
    EXPECT_NE(out.out.find(expected), std::string::npos) << "missing: " << expected << "\n"
                                                         << out.out;
  }
  auto json = ctl({"describe", "app", "plc-bridge", "--output", "json"});
  EXPECT_EQ(json.status.exit_code, 0) << json.err;
  auto j = parseJson(json.out, "stdout");
  ASSERT_TRUE(j) << json.out;
  EXPECT_EQ((*j)["spec"]["exec"]["path"], "/opt/plc/bridge");
}

TEST_F(CliTest, DescribeOfAnUnknownAppFails) {
  auto out = ctl({"describe", "app", "nope"});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_EQ(out.out, "");
  EXPECT_EQ(out.err, "fleetletctl: app \"nope\" not found\n");
}

TEST_F(CliTest, RestartRestartsTheApp) {
  auto out = ctl({"restart", "camera"});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "restarted camera\n");
  EXPECT_EQ(service_.restarted(), std::vector<std::string>{"camera"});
  auto unknown = ctl({"restart", "nope"});
  EXPECT_EQ(unknown.status.exit_code, 1);
  EXPECT_EQ(unknown.err, "fleetletctl: app \"nope\" not found\n");
}

TEST_F(CliTest, ScreenshotWritesThePngAndShowSwitches) {
  auto none = ctl({"screenshot", "-o", (dir_->path() / "none.png").string()});
  EXPECT_EQ(none.status.exit_code, 1);
  EXPECT_EQ(none.err, "fleetletctl: this node shows no apps (no display configured)\n");

  const std::string png("\x89PNG\r\n\x1a\n\0binary", 14);
  service_.setScreen(png);
  const auto file = dir_->path() / "shot.png";
  auto out = ctl({"screenshot", "camera", "-o", file.string()});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(slurp(file), png);
  auto show = ctl({"show", "camera"});
  EXPECT_EQ(show.status.exit_code, 0) << show.err;
  EXPECT_EQ(show.out, "showing camera\n");
  EXPECT_EQ(service_.shown(), std::vector<std::string>{"camera"});
  EXPECT_EQ(ctl({"show", "Bad_Name"}).status.exit_code, 1);
}

TEST_F(CliTest, StatusPrintsRevisionsAndErrors) {
  auto out = ctl({"status"});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(out.out,
            "Desired revision:   7\n"
            "Applied revision:   6\n"
            "Last good revision: 6\n"
            "Converged:          no\n"
            "Errors:\n"
            "  apps.plc-bridge: exited with code 1\n");
  auto json = ctl({"status", "-o", "json"});
  auto j = parseJson(json.out, "stdout");
  ASSERT_TRUE(j) << json.out;
  EXPECT_EQ((*j)["desiredRevision"], 7);
}

TEST_F(CliTest, EventsPrintsStoredEvents) {
  service_.publish("camera", "pulled", "127.0.0.1:5000/acme/camera:1.4");
  service_.publish("", "applied", "revision 8");
  auto out = ctl({"events"});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  std::istringstream lines(out.out);
  std::string first, second, extra;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_NE(first.find("Z  #1     camera           pulled      127.0.0.1:5000/acme/camera:1.4"),
            std::string::npos)
      << first;
  EXPECT_NE(second.find("Z  #2     -                applied     revision 8"), std::string::npos)
      << second;
  auto after = ctl({"events", "--after", "1"});
  EXPECT_EQ(std::count(after.out.begin(), after.out.end(), '\n'), 1) << after.out;
}

TEST_F(CliTest, EventsFollowPrintsEventsAsTheyHappen) {
  service_.publish("camera", "pulled", "first");
  auto out = dir_->path() / "events.out";
  auto child = spawnCtl({"events", "-f"}, out);
  EXPECT_NE(waitFor(out, "first").find("first"), std::string::npos);
  service_.publish("camera", "started", "second");
  auto content = waitFor(out, "second");
  EXPECT_NE(content.find("started     second"), std::string::npos) << content;
  EXPECT_FALSE(child.poll().has_value()) << "events -f must keep following";
  child.stop(SIGTERM, kPatience);
}

TEST_F(CliTest, LogsPrintsTheTailAndFollows) {
  auto dir = dir_->path() / "logs";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "current.log") << "2026-11-21T06:00:00Z stdout F one\n"
                                        "2026-11-21T06:00:01Z stderr F two\n"
                                        "2026-11-21T06:00:02Z stdout P thr\n"
                                        "2026-11-21T06:00:02Z stdout F ee\n";
  service_.setLogDir("camera", dir);
  auto all = ctl({"logs", "camera"});
  EXPECT_EQ(all.status.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "one\ntwo\nthree\n");
  auto tail = ctl({"logs", "camera", "--tail", "2"});
  EXPECT_EQ(tail.out, "two\nthree\n");

  auto out = dir_->path() / "logs.out";
  auto child = spawnCtl({"logs", "camera", "-f", "--tail", "1"}, out);
  EXPECT_EQ(waitFor(out, "three\n"), "three\n");
  std::ofstream(dir / "current.log", std::ios::app) << "2026-11-21T06:00:03Z stdout F four\n";
  EXPECT_EQ(waitFor(out, "four\n"), "three\nfour\n");
  EXPECT_FALSE(child.poll().has_value()) << "logs -f must keep following";
  child.stop(SIGTERM, kPatience);

  auto unknown = ctl({"logs", "nope"});
  EXPECT_EQ(unknown.status.exit_code, 1);
  EXPECT_EQ(unknown.err, "fleetletctl: app \"nope\" has no logs\n");
}

TEST_F(CliTest, LogsSinceAndUntilPickATimeRangeAndBadTimesAreUsageErrors) {
  auto dir = dir_->path() / "logs";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "current.log") << "2026-11-21T06:00:00Z stdout F one\n"
                                        "2026-11-21T06:00:01Z stderr F two\n"
                                        "2026-11-21T06:00:02.5Z stdout F three\n";
  service_.setLogDir("camera", dir);
  auto range = ctl({"logs", "camera", "--since", "2026-11-21T06:00:01Z", "--until",
                    "2026-11-21T07:00:02.5+01:00"});
  EXPECT_EQ(range.status.exit_code, 0) << range.err;
  EXPECT_EQ(range.out, "two\n");  // since inclusive, until exclusive
  // Relative times count back from now: these lines are older than 10 minutes.
  EXPECT_EQ(ctl({"logs", "camera", "--since", "10m"}).out, "");
  EXPECT_EQ(ctl({"logs", "camera", "--since", "36500d", "--until", "1h30m"}).out,
            "one\ntwo\nthree\n");
  EXPECT_EQ(ctl({"logs", "camera", "--since", "2026-11-21T06:00:01Z", "--tail", "1"}).out,
            "three\n");

  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"logs", "camera", "--since", "10x"},
       "--since: \"10x\" is neither an RFC 3339 time (2026-12-07T06:00:00Z) nor a duration "
       "before now (10m, 2h, 1d)"},
      {{"logs", "camera", "--until", "m10"}, "--until: \"m10\" is neither"},
      {{"logs", "camera", "--since", ""}, "--since: \"\" is neither"},
      {{"logs", "camera", "--since", "2026-13-01T00:00:00Z"}, "--since: \"2026-13-01T00:00:00Z\""},
      {{"logs", "camera", "--since", "1h", "--until", "2h"}, "logs: --since ("},
      {{"logs", "camera", "--node"}, "logs: give an app or --node, not both"},
      {{"logs"}, "logs: give an app, or --node for fleetletd's log"},
      {{"logs", "camera", "-f", "--since", "1h"},
       "logs: --follow cannot be combined with --node, --since or --until"},
  };
  for (const auto& [args, message] : bad) {
    SCOPED_TRACE(args.back());
    auto out = ctl(args);
    EXPECT_EQ(out.status.exit_code, 1);
    EXPECT_EQ(out.out, "");
    EXPECT_TRUE(out.err.starts_with("fleetletctl: " + message)) << out.err;
  }
}

TEST_F(CliTest, EveryCommandSaysWhenFleetletdIsNotRunning) {
  auto absent = (dir_->path() / "absent.sock").string();
  auto file = write("node.yaml", kManifest);
  for (std::vector<std::string> args : {std::vector<std::string>{"apply", "-f", file.string()},
                                        {"get", "apps"},
                                        {"describe", "app", "camera"},
                                        {"logs", "camera"},
                                        {"restart", "camera"},
                                        {"status"},
                                        {"events"},
                                        {"events", "-f"},
                                        {"get", "apps", "-o", "json"}}) {
    auto out = ctl(args, {{"FLEETLET_API_SOCKET", absent}});
    EXPECT_EQ(out.status.exit_code, 1) << args[0];
    EXPECT_EQ(out.out, "") << args[0];
    EXPECT_EQ(out.err, "fleetletctl: fleetletd is not running at " + absent +
                           " (connect: No such file or directory)\n")
        << args[0];
  }
}

TEST_F(CliTest, StoppedFleetletdIsReportedAsNotRunning) {
  server_->stop();
  auto out = ctl({"status"});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_EQ(out.err, "fleetletctl: fleetletd is not running at " + socket_ +
                         " (connect: No such file or directory)\n");
}

// Issue 17, D8: names that are no app names are refused before fleetletd is asked (the
// socket here does not exist: asking it would say so instead).
TEST_F(CliTest, NamesThatAreNoAppNamesAreRefusedWithoutAskingFleetletd) {
  auto absent = (dir_->path() / "absent.sock").string();
  for (const std::string& name : std::vector<std::string>{"../../x", "..", "a/b", "%2e%2e", "",
                                                          "Camera", std::string(64, 'a')}) {
    for (std::vector<std::string> args : {std::vector<std::string>{"logs", name},
                                          {"logs", name, "-f"},
                                          {"describe", "app", name},
                                          {"restart", name}}) {
      SCOPED_TRACE(args[0] + " \"" + name + "\"");
      auto out = ctl(args, {{"FLEETLET_API_SOCKET", absent}});
      EXPECT_EQ(out.status.exit_code, 1);
      EXPECT_EQ(out.out, "");
      EXPECT_TRUE(out.err.starts_with("fleetletctl: name: invalid app name \"" + name + "\" ("))
          << out.err;
    }
  }
}

// Issue 17, D20: every usage error exits 1 (the one exit-code contract, docs/local-api.md)
// with a message that names the problem, and runs nothing.
TEST_F(CliTest, UsageErrorsExit1AndNameTheProblem) {
  auto manifest_dir = dir_->path() / "manifests";
  std::filesystem::create_directories(manifest_dir);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus"}, "unknown option --bogus"},
      {{"status", "--bogus"}, "unknown option --bogus"},
      {{"get", "apps", "--bogus=1"}, "unknown option --bogus=1"},
      {{},
       "a command is required (expected image, apply, get, describe, logs, restart, "
       "screenshot, show, status, events, top, manifest, completion)"},
      {{"bogus"},
       "unknown command \"bogus\" (expected image, apply, get, describe, logs, "
       "restart, screenshot, show, status, events, top, manifest, completion)"},
      {{"get", "pods"}, "unknown resource \"pods\" (expected apps)"},
      {{"get"}, "get needs a resource (expected apps)"},
      {{"describe", "pod", "camera"}, "unknown resource \"pod\" (expected app)"},
      {{"image", "push"}, "unknown image command \"push\" (expected pull, import, ls, rm)"},
      {{"status", "now"}, "unexpected argument \"now\""},
      {{"apply", "-f", manifest_dir.string()},
       "--filename: " + manifest_dir.string() + " is a directory; give a manifest file"},
      {{"apply"}, "--filename is required"},
      {{"events", "--after", "1.5"}, "--after: \"1.5\" is not a non-negative integer"},
      {{"events", "--after", "-1"}, "--after: \"-1\" is not a non-negative integer"},
      {{"events", "--after", "x"}, "--after: \"x\" is not a non-negative integer"},
      {{"events", "--after", "99999999999999999999"},
       "--after: \"99999999999999999999\" is not a non-negative integer"},
      {{"logs", "camera", "--tail", "2.5"}, "--tail: \"2.5\" is not a non-negative integer"},
      {{"get", "apps", "-o", "xml"}, "--output: xml not in {text,wide,json,yaml}"},
      {{"--log-level", "loud", "status"}, "--log-level: loud not in"},
  };
  for (const auto& [args, message] : cases) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    SCOPED_TRACE(line);
    auto out = ctl(args);
    EXPECT_EQ(out.status.exit_code, 1);
    EXPECT_EQ(out.out, "");
    EXPECT_TRUE(out.err.starts_with("fleetletctl: " + message)) << out.err;
    EXPECT_NE(out.err.find("--help' for usage.\n"), std::string::npos) << out.err;
  }
  EXPECT_TRUE(service_.applied().empty());
}

TEST_F(CliTest, HelpExits0AndGlobalOptionsMayFollowTheCommand) {
  auto help = ctl({"--help"});
  EXPECT_EQ(help.status.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("fleetletctl apply -f node.yaml"), std::string::npos) << help.out;
  auto get_help = ctl({"get", "--help"});
  EXPECT_EQ(get_help.status.exit_code, 0) << get_help.err;
  EXPECT_NE(get_help.out.find("apps"), std::string::npos) << get_help.out;
  auto out = runCommand({FLEETLETCTL_PATH, "status", "-o", "json", "--api-socket", socket_});
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->status.exit_code, 0) << out->err;
  auto large = ctl({"events", "--after", "9223372036854775807"});
  EXPECT_EQ(large.status.exit_code, 0) << large.err;
  EXPECT_EQ(large.out, "");
}

TEST_F(CliTest, WideAddsColumnsAndYamlIsTheJsonDocument) {
  auto wide = ctl({"get", "apps", "-o", "wide"});
  EXPECT_EQ(wide.status.exit_code, 0) << wide.err;
  std::istringstream lines(wide.out);
  std::string header, camera;
  std::getline(lines, header);
  std::getline(lines, camera);
  EXPECT_THAT(header, ::testing::MatchesRegex("NAME +RUNTIME +STATE +RESTARTS +IMAGE +AGE +PID +"
                                              "CONTAINER +MESSAGE"));
  EXPECT_THAT(camera, ::testing::MatchesRegex("camera +container +running +2 +\\S+ +3m +4242 .*"));
  for (std::vector<std::string> args :
       {std::vector<std::string>{"get", "apps"}, {"describe", "app", "camera"}, {"status"}}) {
    auto as = [&](const char* format) {
      auto with = args;
      with.insert(with.end(), {"-o", format});
      auto out = ctl(with);
      EXPECT_EQ(out.status.exit_code, 0) << out.err;
      EXPECT_EQ(out.err, "");
      return out.out;
    };
    auto json = parseJson(as("json"), "json");
    ASSERT_TRUE(json) << json.error().message();
    auto yaml = manifest::yamlToJson(as("yaml"));
    ASSERT_TRUE(yaml) << yaml.error().message();
    EXPECT_EQ(*yaml, *json) << args[0];
    EXPECT_EQ(as("wide").empty(), false) << args[0];
  }
  auto bad = ctl({"get", "apps", "-o", "xml"});
  EXPECT_EQ(bad.status.exit_code, 1);
  EXPECT_EQ(bad.out, "");
  EXPECT_THAT(bad.err, HasSubstr("xml"));
}

// Global options may come anywhere on the line, after the command too (as kubectl allows).
TEST_F(CliTest, GlobalOptionsAnywhereOnTheLine) {
  auto out = runCommand({FLEETLETCTL_PATH, "get", "apps", "--api-socket", socket_, "-o", "json"});
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->status.exit_code, 0) << out->err;
  auto absent = (dir_->path() / "containerd.sock").string();
  auto image = runCommand({FLEETLETCTL_PATH, "image", "ls", "--address", absent, "-n", "x"});
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_EQ(image->status.exit_code, 1);
  EXPECT_EQ(image->out, "");
  EXPECT_THAT(image->err, HasSubstr(absent));  // the flag was taken, not refused
  EXPECT_THAT(image->err, ::testing::Not(HasSubstr("unknown option")));
}

// `fleetletctl completion bash|zsh`: the generated script, run by the shell, completes commands,
// resources and options, the global ones after a command too.
TEST_F(CliTest, CompletionScriptsComplete) {
  auto bash = ctl({"completion", "bash"});
  ASSERT_EQ(bash.status.exit_code, 0) << bash.err;
  auto bash_script = write("fleetletctl.bash", bash.out);
  auto complete = [&](const std::string& shell, const std::string& line) {
    std::string program;
    if (shell == "bash") {
      program = fmt::format(
          "source {} && COMP_WORDS=({}) && COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) && "
          "_fleetletctl && echo \"${{COMPREPLY[*]}}\"",
          bash_script.string(), line);
    } else {
      program = fmt::format(
          "compdef() {{ :; }}; compadd() {{ print -r -- ${{(P)2}}; }}; source {} && "
          "words=({}) && CURRENT=${{#words}} && _fleetletctl",
          (dir_->path() / "_fleetletctl").string(), line);
    }
    auto out = runCommand({shell, "-c", program});
    EXPECT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->status.exit_code, 0) << shell << ": " << out->err;
    return out->out;
  };
  EXPECT_EQ(complete("bash", "fleetletctl ap"), "apply\n");
  EXPECT_EQ(complete("bash", "fleetletctl image p"), "pull\n");
  EXPECT_EQ(complete("bash", "fleetletctl get apps -o json --api"), "--api-socket\n");
  EXPECT_EQ(complete("bash", "fleetletctl describe app camera --out"), "--output\n");
  EXPECT_EQ(complete("bash", "fleetletctl completion ''"),
            "--help -h --version --address --namespace "
            "-n --api-socket --log-level\n");
  auto zsh = ctl({"completion", "zsh"});
  ASSERT_EQ(zsh.status.exit_code, 0) << zsh.err;
  EXPECT_TRUE(zsh.out.starts_with("#compdef fleetletctl\n")) << zsh.out;
  write("_fleetletctl", zsh.out);
  EXPECT_THAT(complete("zsh", "fleetletctl image ''"), HasSubstr("pull import ls rm"));
  EXPECT_THAT(complete("zsh", "fleetletctl get ''"), HasSubstr("apps app"));
}

// `fleetletctl manifest`: keys from keygen or openssl, sign, verify; no fleetletd involved.
TEST_F(CliTest, ManifestKeygenSignVerify) {
  const auto key = (dir_->path() / "fleet.key").string();
  auto gen = ctl({"manifest", "keygen", "--out", key});
  ASSERT_EQ(gen.status.exit_code, 0) << gen.err;
  const std::string id = gen.out.substr(0, 64);
  EXPECT_EQ(std::filesystem::status(key).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // The key id is what openssl and sha256sum compute from the public key.
  auto openssl_id = runCommand(
      {"/bin/sh", "-c", "openssl pkey -pubin -in " + key + ".pub -outform DER | sha256sum"}, {});
  ASSERT_TRUE(openssl_id);
  EXPECT_EQ(openssl_id->out.substr(0, 64), id);
  EXPECT_EQ(ctl({"manifest", "keyid", key + ".pub"}).out, id + "  " + key + ".pub\n");

  auto manifest = write("n1.yaml", std::string(kManifest) + "node: n1\n");
  const auto envelope = (dir_->path() / "n1.dsse.json").string();
  auto sign = ctl({"manifest", "sign", "-f", manifest.string(), "--key", key, "-o", envelope});
  ASSERT_EQ(sign.status.exit_code, 0) << sign.err;
  auto verify = ctl({"manifest", "verify", "-f", envelope, "--key", key + ".pub", "--node", "n1"});
  EXPECT_EQ(verify.status.exit_code, 0) << verify.err;
  EXPECT_EQ(verify.out, "verified: revision 8 for node n1, signed by " + id + "\n");

  // Another node, another key (made by openssl), a threshold not met.
  auto other_node =
      ctl({"manifest", "verify", "-f", envelope, "--key", key + ".pub", "--node", "n2"});
  EXPECT_EQ(other_node.status.exit_code, 1);
  EXPECT_EQ(other_node.err,
            "fleetletctl: node: manifest is for node \"n1\", this node is \"n2\"\n");
  const auto other = (dir_->path() / "other.key").string();
  ASSERT_TRUE(runCommand({"openssl", "genpkey", "-algorithm", "ed25519", "-out", other}, {}));
  auto wrong = ctl({"manifest", "verify", "-f", envelope, "--key", other});
  EXPECT_EQ(wrong.status.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("signature: no valid signature by a trusted key"));
  auto two = ctl({"manifest", "verify", "-f", envelope, "--key", key + ".pub", "--key", other,
                  "--threshold", "2"});
  EXPECT_THAT(two.err, HasSubstr("1 of the 2 required trusted keys signed"));
  // An openssl key signs too; both signatures then count.
  auto both = ctl({"manifest", "sign", "-f", manifest.string(), "--key", key, "--key", other});
  ASSERT_EQ(both.status.exit_code, 0) << both.err;
  auto envelope2 = write("both.json", both.out);
  EXPECT_EQ(ctl({"manifest", "verify", "-f", envelope2.string(), "--key", key + ".pub", "--key",
                 other, "--threshold", "2"})
                .status.exit_code,
            0);

  // Only valid manifests are signed.
  auto bad = write("bad.yaml", "apiVersion: fleetlet.io/v1\nkind: NodeState\napps: {}\n");
  auto refused = ctl({"manifest", "sign", "-f", bad.string(), "--key", key});
  EXPECT_EQ(refused.status.exit_code, 1);
  EXPECT_EQ(refused.err, "fleetletctl: " + bad.string() + ": revision: required\n");
  EXPECT_EQ(refused.out, "");
}

TEST_F(CliTest, EnvironmentSelectsTheSocket) {
  auto out = ctl({"status", "-o", "json"}, {{"FLEETLET_API_SOCKET", socket_}});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
}

TEST_F(CliTest, TopPrintsOneTableWhenStdoutIsNotATerminal) {
  auto out = ctl({"top", "--interval", "0.05"});
  ASSERT_TRUE(out.status.success()) << out.err;
  EXPECT_EQ(top_readings_.load(), 2);
  EXPECT_EQ(
      out.out,
      "node: cpu 50.0% of 2 cpus, memory 1.0GiB available of 4.0GiB, disk 512.0MiB free "
      "of 10.0GiB, containerd up\n"
      "NAME        STATE                CPU    MEMORY                 PIDS  RESTARTS  NET IN/OUT\n"
      "camera      running              50.0%  16.0MiB/64.0MiB (25%)  3     2         1.5KiB/100B\n"
      "plc-bridge  backoff (unhealthy)  -      -                      -     0         -\n")
      << out.out;
}

TEST_F(CliTest, TopRedrawsOnATerminalUntilStopped) {
  // script(1) gives fleetletctl a pseudo-terminal and copies what it draws to the file; its
  // stdin stays open (script ends the session at EOF). SIGTERM to the shell ends script, whose
  // pseudo-terminal's hangup ends fleetletctl; the sleep holds none of the test's outputs.
  const auto typescript = dir_->path() / "typescript";
  auto child = ChildProcess::spawn(
      {.argv = {"sh", "-c",
                "trap 'kill $! 2>/dev/null; exit 0' TERM; sleep 60 2>/dev/null | script -qfec '" +
                    std::string(FLEETLETCTL_PATH) + " --api-socket " + socket_ +
                    " top --interval 0.05' " + typescript.string() + " & wait"},
       .stdout_path = "/dev/null"});
  ASSERT_TRUE(child) << child.error().message();
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  // Each redraw homes the cursor, clears the screen and draws the whole table.
  const std::string redraw = "\x1b[H\x1b[2Jnode: cpu 50.0%";
  auto redraws = [&](const std::string& text) {
    size_t n = 0;
    for (auto at = text.find(redraw); at != std::string::npos; at = text.find(redraw, at + 1)) {
      ++n;
    }
    return n;
  };
  std::string drawn;
  while (std::chrono::steady_clock::now() < deadline && redraws(drawn) < 3) {
    std::this_thread::sleep_for(10ms);
    drawn = slurp(typescript);
  }
  child->stop(SIGTERM, kPatience);
  EXPECT_GE(redraws(drawn), 3U) << drawn;
  EXPECT_GE(top_readings_.load(), 4);
  EXPECT_THAT(drawn, HasSubstr("camera      running"));
}

TEST_F(CliTest, TopWithoutATopRouteFailsNamingIt) {
  server_->stop();
  auto server = ApiServer::start(service_, {.socket_path = socket_});
  ASSERT_TRUE(server) << server.error().message();
  server_ = std::move(*server);
  auto out = ctl({"top", "--interval", "0.05"});
  EXPECT_EQ(out.status.exit_code, 1);
  EXPECT_THAT(out.err, HasSubstr("/v1/top"));
}

}  // namespace
}  // namespace fleetlet::api
