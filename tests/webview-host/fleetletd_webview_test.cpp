// fleetletd end to end with runtime: webview: the real fleetletd (private containerd, a
// --desired directory, --display on the test's Xvfb) starts fleetlet-webview, shows the
// bundle and reports the app through its local API.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "agent/bundle/archive_builder.h"
#include "crypto/sha256.h"
#include "http/client.h"
#include "kiosk_fixture.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/temp_dir.h"

namespace fleetlet::webview::testing {
namespace {

using bundle::testing::file;
using bundle::testing::makeTar;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class FleetletdWebviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    if (!sharedXvfb()) GTEST_SKIP() << "Xvfb is not installed or would not start (xvfb)";
    auto ctrd = fleetlet::testing::PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    auto t = fleetlet::testing::TempDir::create("fleetletd-webview");
    ASSERT_TRUE(t);
    tmp_.emplace(std::move(*t));
    fs::create_directories(tmp_->path() / "desired");
    SpawnOptions spawn{
        .argv = {FLEETLETD_PATH, "--containerd", containerd_->socket().string(), "--namespace",
                 fleetlet::testing::PrivateContainerd::uniqueId("flweb"), "--data-dir",
                 (tmp_->path() / "data").string(), "--api-socket",
                 (tmp_->path() / "api.sock").string(), "--desired",
                 (tmp_->path() / "desired").string(), "--display", sharedXvfb()->display(),
                 "--webview", FLEETLET_WEBVIEW_PATH, "--config", config().string()},
        .stdout_path = tmp_->path() / "fleetletd.log",
        .stderr_path = tmp_->path() / "fleetletd.log"};
    auto child = ChildProcess::spawn(spawn);
    ASSERT_TRUE(child) << child.error().message();
    agent_.emplace(std::move(*child));
  }

  void TearDown() override {
    if (agent_) {
      auto status = agent_->stop(SIGTERM, 20s);
      EXPECT_EQ(status.term_signal, 0) << "fleetletd did not stop on SIGTERM";
      EXPECT_TRUE(processesBelow(::getpid(), "fleetlet-webvie").empty())
          << "the kiosk outlived fleetletd";
    }
    if (HasFailure() && tmp_) {
      std::cerr << "--- fleetletd log ---\n"
                << std::ifstream(tmp_->path() / "fleetletd.log").rdbuf();
      std::cerr << "--- kiosk log ---\n"
                << std::ifstream(tmp_->path() / "data" / "webview" / "kiosk.log").rdbuf();
    }
  }

  fs::path config() {
    const fs::path path = tmp_->path() / "fleetletd.yaml";
    std::ofstream(path) << "webviewArgs: [\"--window\", \"1024x600\"]\n";
    return path;
  }

  // Writes a bundle of one colour; returns the manifest's bundle line.
  std::string bundle(const std::string& name, std::string_view colour, bool bad_hash = false) {
    auto bytes = makeTar({file("index.html", colourPage(colour))});
    const fs::path path = tmp_->path() / (name + ".tar.gz");
    bundle::testing::writeFile(path, bytes);
    return fmt::format("{{url: \"file://{}\", sha256: \"{}\"}}", path.string(),
                       sha256Hex(bad_hash ? "x" + bytes : bytes));
  }

  void apply(int revision, const std::string& bundle_line) {
    const auto tmp = tmp_->path() / "desired" / ".tmp";
    std::ofstream(tmp) << "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: " << revision
                       << "\napps:\n  ui:\n    runtime: webview\n    bundle: " << bundle_line
                       << "\n";
    fs::rename(tmp, tmp_->path() / "desired" / "node.yaml");
  }

  std::optional<Json> apiGet(const std::string& path) {
    http::Client api({.unix_socket = (tmp_->path() / "api.sock").string(),
                      .total_timeout = std::chrono::seconds(10)});
    auto r = api.send({.url = "http://fleetletd" + path});
    if (!r || r->status != 200) return std::nullopt;
    auto body = parseJson(r->body, "answer");
    return body ? std::optional<Json>(*body) : std::nullopt;
  }

  Json waitApp(const std::function<bool(const Json&)>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Json last;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto d = apiGet("/v1/apps/ui")) {
        last = (*d)["status"];
        if (done(last)) break;
      }
      std::this_thread::sleep_for(50ms);
    }
    return last;
  }

  std::string events() {
    http::Client api({.unix_socket = (tmp_->path() / "api.sock").string()});
    auto r = api.send({.url = "http://fleetletd/v1/events"});
    return r ? r->body : "";
  }

  std::optional<fleetlet::testing::PrivateContainerd> containerd_;
  std::optional<fleetlet::testing::TempDir> tmp_;
  std::optional<ChildProcess> agent_;
};

TEST_F(FleetletdWebviewTest, AWebviewAppRunsOnTheDisplayAndReportsRestartsAndRefusedBundles) {
  apply(1, bundle("v1", "rgb(255,0,0)"));
  Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  EXPECT_EQ(s["runtime"], "webview");
  EXPECT_EQ(s.value("restarts", 0), 0);

  // fleetletctl reads the screen back through fleetletd.
  const fs::path shot = tmp_->path() / "shot.png";
  auto ctl = runCommand({FLEETLETCTL_PATH, "--api-socket", (tmp_->path() / "api.sock").string(),
                         "screenshot", "ui", "-o", shot.string()});
  ASSERT_TRUE(ctl && ctl->status.success()) << (ctl ? ctl->err : ctl.error().message());
  std::ifstream in(shot, std::ios::binary);
  std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto image = Image::decodePng(png);
  ASSERT_TRUE(image) << image.error().describe();
  EXPECT_EQ(image->at(20, 20), (Rgb{255, 0, 0}));

  // A page crash is a restart of the app, with its reason in the node events.
  auto kiosk = processesBelow(agent_->pid(), "fleetlet-webvie");
  ASSERT_EQ(kiosk.size(), 1u);
  for (pid_t pid : webProcessesBelow(kiosk[0])) ::kill(pid, SIGKILL);
  s = waitApp(
      [](const Json& st) { return st.value("restarts", 0) == 1 && st["state"] == "running"; }, 20s);
  EXPECT_EQ(s.value("restarts", 0), 1) << s.dump();
  EXPECT_THAT(events(), HasSubstr("crashed: web process crashed"));

  // A bundle with a bad hash: refused, the app keeps running its old bundle.
  apply(2, bundle("v2", "rgb(0,0,255)", /*bad_hash=*/true));
  s = waitApp(
      [](const Json& st) { return st.value("message", "").find("refused") != std::string::npos; },
      20s);
  EXPECT_THAT(s.value("message", ""), HasSubstr("sha256 mismatch")) << s.dump();
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(processesBelow(agent_->pid(), "fleetlet-webvie"), kiosk) << "the kiosk restarted";

  // The app leaves the manifest: unloaded from the kiosk, gone from the list.
  const auto tmp = tmp_->path() / "desired" / ".tmp";
  std::ofstream(tmp) << "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 3\napps: {}\n";
  fs::rename(tmp, tmp_->path() / "desired" / "node.yaml");
  for (int i = 0; i < 200 && events().find("unloaded from the kiosk") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(events(), HasSubstr("unloaded from the kiosk"));
  EXPECT_FALSE(apiGet("/v1/apps/ui").has_value());
}

}  // namespace
}  // namespace fleetlet::webview::testing
