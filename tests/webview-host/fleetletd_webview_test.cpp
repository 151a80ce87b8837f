// fleetletd end to end with runtime: webview: the real fleetletd (private containerd with
// containerd-shim-fleetlet-v1, a --desired directory, --display on the test's Xvfb) runs
// fleetlet-webview as its native system app, shows the bundle and reports the app through its
// local API.
#include <cairo.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "agent/bundle/archive_builder.h"
#include "crypto/sha256.h"
#include "http/client.h"
#include "kiosk_fixture.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/temp_dir.h"
#include "webview/kiosk_client.h"
#include "webview/webview_runtime.h"

namespace fleetlet::webview::testing {
namespace {

using bundle::testing::file;
using bundle::testing::makeTar;
using ::testing::HasSubstr;
using ::testing::Not;

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class FleetletdWebviewTest : public ::testing::Test {
 protected:
  // Flags added to fleetletd's (a subclass's services).
  virtual std::vector<std::string> extraAgentArgs() { return {}; }
  // Runs before fleetletd starts, after the temporary directory exists.
  virtual void beforeAgent() {}
  // The kiosk binary fleetletd runs (--webview).
  virtual std::string webviewBinary() { return FLEETLET_WEBVIEW_PATH; }

  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    ASSERT_TRUE(sharedXvfb()) << "Xvfb is not installed or would not start (xvfb)";
    // The kiosk is a native system app: the private containerd finds the build's
    // containerd-shim-fleetlet-v1 first on its PATH (PrivateContainerd::shimDir()).
    auto ctrd = fleetlet::testing::PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_ = std::make_unique<fleetlet::testing::PrivateContainerd>(std::move(*ctrd));
    ns_ = fleetlet::testing::PrivateContainerd::uniqueId("flweb");
    auto t = fleetlet::testing::TempDir::create("fleetletd-webview");
    ASSERT_TRUE(t);
    tmp_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*t));
    fs::create_directories(tmp_->path() / "desired");
    beforeAgent();
    if (HasFatalFailure()) return;
    startAgent();
  }

  void startAgent() {
    SpawnOptions spawn{.argv = {FLEETLETD_PATH, "--containerd", containerd_->socket().string(),
                                "--namespace", ns_, "--data-dir", (tmp_->path() / "data").string(),
                                "--api-socket", (tmp_->path() / "api.sock").string(), "--desired",
                                (tmp_->path() / "desired").string(), "--display", sharedDisplay(),
                                "--webview", webviewBinary(), "--config", config().string()},
                       .stdout_path = tmp_->path() / "fleetletd.log",
                       .stderr_path = tmp_->path() / "fleetletd.log"};
    for (auto& arg : extraAgentArgs()) spawn.argv.push_back(std::move(arg));
    auto child = ChildProcess::spawn(spawn);
    ASSERT_TRUE(child) << child.error().message();
    agent_ = std::make_unique<ChildProcess>(std::move(*child));
  }

  void TearDown() override {
    if (agent_) {
      auto status = agent_->stop(SIGTERM, 20s);
      EXPECT_EQ(status.term_signal, 0) << "fleetletd did not stop on SIGTERM";
    }
    if (HasFailure() && tmp_) {
      std::cerr << "--- fleetletd log ---\n"
                << std::ifstream(tmp_->path() / "fleetletd.log").rdbuf();
      std::error_code ec;
      for (const auto& entry : fs::recursive_directory_iterator(kioskLogDir(), ec)) {
        if (!entry.is_regular_file()) continue;
        std::cerr << "--- kiosk log " << entry.path().string() << " ---\n"
                  << std::ifstream(entry.path()).rdbuf();
      }
    }
    // The kiosk's task goes with the private containerd (every task of every namespace).
  }

  // Where the kiosk's output is logged: its system app's log directory (a subclass: its log
  // as fleetletd's child).
  virtual fs::path kioskLogDir() { return tmp_->path() / "data" / "logs" / webview::kKioskAppName; }

  // The kiosk's system app task as `ctr tasks ls` lists it: {container id, pid}; {} when
  // containerd has none running.
  std::pair<std::string, pid_t> kioskTask() {
    auto out = containerd_->ctrOk({"tasks", "ls"}, ns_).value_or("");
    std::istringstream in(out);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, pid, status;
      fields >> id >> pid >> status;
      if (id.starts_with(std::string(webview::kKioskAppName) + "-") && status == "RUNNING") {
        return {id, static_cast<pid_t>(std::stol(pid))};
      }
    }
    return {};
  }
  // The kiosk's pid (0 while it has no running task).
  pid_t kioskPid() { return kioskTask().second; }

  // Lines added to fleetletd's config file.
  virtual std::string extraConfig() { return ""; }

  fs::path config() {
    const fs::path path = tmp_->path() / "fleetletd.yaml";
    std::ofstream(path) << "webviewArgs: [\"--window\", \"1024x600\"]\n" << extraConfig();
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
    applyApps(revision, "  ui:\n    runtime: webview\n    bundle: " + bundle_line + "\n");
  }
  // `apps` is the YAML below `apps:`.
  void applyApps(int revision, const std::string& apps) {
    const auto tmp = tmp_->path() / "desired" / ".tmp";
    std::ofstream(tmp) << "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: " << revision
                       << "\napps:\n"
                       << apps;
    fs::rename(tmp, tmp_->path() / "desired" / "node.yaml");
  }
  // A bundle of one index.html; returns the manifest's bundle line.
  std::string pageBundle(const std::string& name, const std::string& html) {
    auto bytes = makeTar({file("index.html", html)});
    const fs::path path = tmp_->path() / (name + ".tar.gz");
    bundle::testing::writeFile(path, bytes);
    return fmt::format("{{url: \"file://{}\", sha256: \"{}\"}}", path.string(), sha256Hex(bytes));
  }
  // The kiosk's own status of `app` (title, console counters), through its control socket.
  Json kioskStatus(const std::string& app) {
    auto answer = KioskClient(tmp_->path() / "data" / "webview" / "control.sock")
                      .call({{"cmd", "status"}, {"app", app}});
    return answer ? (*answer)["status"] : Json();
  }

  // The body of a 200 answer of fleetletd's local API.
  std::optional<std::string> apiText(const std::string& path) {
    http::Client api({.unix_socket = (tmp_->path() / "api.sock").string(),
                      .total_timeout = std::chrono::seconds(10)});
    auto r = api.send({.url = "http://fleetletd" + path});
    if (!r || r->status != 200) return std::nullopt;
    return std::move(r->body);
  }

  std::optional<Json> apiGet(const std::string& path) {
    auto text = apiText(path);
    if (!text) return std::nullopt;
    auto body = parseJson(*text, "answer");
    return body ? std::optional<Json>(*body) : std::nullopt;
  }

  Json waitApp(const std::function<bool(const Json&)>& done, std::chrono::milliseconds timeout,
               const std::string& app = "ui") {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Json last;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto d = apiGet("/v1/apps/" + app)) {
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

  std::unique_ptr<fleetlet::testing::PrivateContainerd> containerd_;
  std::string ns_;
  std::unique_ptr<fleetlet::testing::TempDir> tmp_;
  std::unique_ptr<ChildProcess> agent_;
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

  // describe app shows the kiosk's view of it: url, load state, heartbeat, memory use.
  std::string described;
  for (int i = 0; i < 100; ++i) {
    auto out = runCommand({FLEETLETCTL_PATH, "--api-socket", (tmp_->path() / "api.sock").string(),
                           "describe", "app", "ui"});
    ASSERT_TRUE(out && out->status.success()) << (out ? out->err : out.error().message());
    described = out->out;
    if (described.find(" MiB") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_THAT(described,
              HasSubstr("Screen:\n  Shown:       yes\n  URL:         app://ui/index.html\n"
                        "  Load state:  loaded\n"));
  EXPECT_THAT(described, ::testing::ContainsRegex("Heartbeat: +[0-9]+ ms ago"));
  EXPECT_THAT(described, ::testing::ContainsRegex("Memory: +[0-9]+\\.[0-9] MiB"));
  auto detail = apiGet("/v1/apps/ui");
  if (!detail) FAIL() << "no /v1/apps/ui";
  EXPECT_TRUE((*detail)["screen"]["memoryMiB"].is_number()) << detail->dump();

  // A page crash is a restart of the app, with its reason in the node events.
  const pid_t kiosk = kioskPid();
  ASSERT_NE(kiosk, 0);
  // The page's web process (the oldest; the app's spare is younger).
  auto serving = oldestProcess(webProcessesBelow(kiosk));
  if (!serving) FAIL() << "no WebKitWebProcess below the kiosk";
  ::kill(*serving, SIGKILL);
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
  EXPECT_EQ(kioskPid(), kiosk) << "the kiosk restarted";

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

// The memory controller's line of /proc/<pid>/cgroup ("" when the process is gone).
std::string memoryCgroup(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.find(":memory:") != std::string::npos || line.starts_with("0::")) return line;
  }
  return "";
}

// Processes named fleetlet-webview (comm) in a cgroup under `ns`.
size_t kiosksIn(const std::string& ns) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream comm(entry.path() / "comm");
    std::string line;
    std::getline(comm, line);
    if (line == "fleetlet-webvie" &&
        memoryCgroup(std::stoi(name)).find("/" + ns + "/") != std::string::npos) {
      ++n;
    }
  }
  return n;
}

// The kiosk is fleetletd's native system app: a task of the fleetlet shim that containerd
// lists, in the task's cgroup with its web processes, in `fleetletctl get`. A kill -9 of
// fleetletd leaves it alone (adopted: the same process, no second kiosk, the page not even
// reloaded); a killed kiosk is restarted by fleetletd's restart policy and the page is back.
TEST_F(FleetletdWebviewTest, TheKioskIsANativeSystemAppRestartedByPolicyAndAdoptedAfterKillNine) {
  applyApps(1, "  ui:\n    runtime: webview\n    bundle: " +
                   pageBundle("green", R"(<!doctype html><html><head>
<script>document.title = 'loaded at ' + performance.timeOrigin;</script>
<style>html,body{margin:0;height:100%;background:rgb(0,128,0);}</style></head></html>)") +
                   "\n");
  Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 60s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();

  const auto [id, pid] = kioskTask();
  ASSERT_FALSE(id.empty()) << containerd_->ctrOk({"tasks", "ls"}, ns_).value_or("");
  auto info = containerd_->ctrOk({"containers", "info", id}, ns_);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ((*parseJson(*info, "ctr containers info"))["Runtime"].value("Name", ""),
            "io.containerd.fleetlet.v1");
  EXPECT_EQ(readFile(fs::path("/proc") / std::to_string(pid) / "comm"), "fleetlet-webvie\n");
  const std::string cgroup = memoryCgroup(pid);
  EXPECT_THAT(cgroup, HasSubstr("/" + ns_ + "/" + id)) << "the task's cgroup (the shim's)";
  auto web = webProcessesBelow(pid);
  ASSERT_FALSE(web.empty());
  for (pid_t p : web) EXPECT_EQ(memoryCgroup(p), cgroup) << "web process " << p;
  EXPECT_FALSE(processesBelow(pid, "bwrap").empty()) << "the web process left its sandbox";
  EXPECT_EQ(kiosksIn(ns_), 1u);

  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {FLEETLETCTL_PATH, "--api-socket",
                                     (tmp_->path() / "api.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = runCommand(argv);
    return out ? out->out : out.error().message();
  };
  EXPECT_THAT(ctl({"get", "apps"}),
              ::testing::ContainsRegex("fleetlet-webview +native \\(system\\) +running +0 "));
  EXPECT_THAT(ctl({"describe", "app", "fleetlet-webview"}), HasSubstr("Sandbox:       process\n"));
  const std::string title = kioskStatus("ui").value("title", "");
  ASSERT_THAT(title, HasSubstr("loaded at "));

  // kill -9 of fleetletd: the kiosk runs on; the next fleetletd adopts it as it is.
  ::kill(agent_->pid(), SIGKILL);
  agent_->wait();
  agent_.reset();
  EXPECT_EQ(kioskPid(), pid) << "the kiosk went with fleetletd";
  startAgent();
  ASSERT_TRUE(agent_);
  for (int i = 0; i < 200 && events().find("kiosk-started") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 30s);
  EXPECT_EQ(s.value("state", ""), "running") << s.dump();
  std::this_thread::sleep_for(1s);  // anything it would do twice, it has done by now
  EXPECT_EQ(kioskPid(), pid) << "the adopted kiosk was replaced";
  EXPECT_EQ(kiosksIn(ns_), 1u) << "a second kiosk";
  EXPECT_EQ(kioskStatus("ui").value("title", ""), title) << "the page was loaded again";
  EXPECT_EQ(kioskStatus("ui").value("failures", -1), 0);

  // A killed kiosk: the restart policy starts it again, the page is back on screen.
  ::kill(pid, SIGKILL);
  pid_t again = 0;
  for (int i = 0; i < 600; ++i) {
    again = kioskPid();
    if (again != 0 && again != pid) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(again, 0) << "no kiosk task after the kill";
  ASSERT_NE(again, pid);
  s = waitApp(
      [](const Json& st) { return st.value("state", "") == "running" && st["restarts"] == 1; },
      60s);
  EXPECT_EQ(s.value("state", ""), "running") << s.dump();
  EXPECT_EQ(s.value("restarts", 0), 1) << "the kiosk's restart counts for the app";
  const fs::path shot = tmp_->path() / "after-restart.png";
  ctl({"screenshot", "ui", "-o", shot.string()});
  auto image = Image::decodePng(readFile(shot));
  ASSERT_TRUE(image) << image.error().describe();
  EXPECT_EQ(image->at(20, 20), (Rgb{0, 128, 0}));
  EXPECT_THAT(ctl({"get", "apps"}),
              ::testing::ContainsRegex("fleetlet-webview +native \\(system\\) +running +1 "));
  EXPECT_EQ(kiosksIn(ns_), 1u);
}

// A kiosk whose control socket is gone (fleetletd's data directory removed under it, as the
// demo's second run does) cannot be reached though it runs: its system app's health check
// (`test -S` of the socket, every 10 s, 3 failures) restarts it, and the page is back.
TEST_F(FleetletdWebviewTest, AKioskWhoseControlSocketIsGoneIsRestartedByItsHealthCheck) {
  applyApps(1, "  ui:\n    runtime: webview\n    bundle: " +
                   pageBundle("green", R"(<!doctype html><html><head>
<style>html,body{margin:0;height:100%;background:rgb(0,128,0);}</style></head></html>)") +
                   "\n");
  Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 60s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  const pid_t pid = kioskPid();
  ASSERT_NE(pid, 0);

  const fs::path socket = tmp_->path() / "data" / "webview" / "control.sock";
  ASSERT_TRUE(fs::is_socket(socket));
  fs::remove(socket);
  pid_t again = 0;
  for (int i = 0; i < 900; ++i) {  // 3 probes 10 s apart, then the restart
    again = kioskPid();
    if (again != 0 && again != pid) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(again, pid) << "the unreachable kiosk was not restarted\n" << events();
  ASSERT_NE(again, 0);
  s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 60s);
  EXPECT_EQ(s.value("state", ""), "running") << s.dump();
  EXPECT_TRUE(fs::is_socket(socket));
  EXPECT_THAT(events(), HasSubstr(R"("app":"fleetlet-webview","kind":"unhealthy")")) << events();
  EXPECT_THAT(events(), HasSubstr("(failed health check: exec exited 1)")) << events();
}

// The kiosk as fleetletd's native system app where WebKit's web process sandbox cannot be set
// up (its binary wrapped to run without CAP_SYS_ADMIN, as a device whose kernel or container
// withholds it): one exit with code 3, one restart by the system app's restart policy, then the
// kiosk waits with the reason on every webview app, as one node event and on the screen,
// instead of crash-looping; with the capability back and the kiosk restarted, the app runs.
class FleetletdKioskWithoutSandboxTest : public FleetletdWebviewTest {
 protected:
  std::string webviewBinary() override { return (tmp_->path() / "kiosk.sh").string(); }
  void beforeAgent() override {
    ASSERT_TRUE(fs::exists("/usr/bin/setpriv"))
        << "setpriv (util-linux, Essential on Debian) is missing";
    writeWrapper("setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin ");
  }
  void writeWrapper(const std::string& prefix) {
    const fs::path wrapper = webviewBinary();
    const fs::path tmp = wrapper.string() + ".tmp";
    std::ofstream(tmp) << "#!/bin/sh\nexec " << prefix << FLEETLET_WEBVIEW_PATH << " \"$@\"\n";
    fs::permissions(tmp, fs::perms::owner_all);
    fs::rename(tmp, wrapper);
  }
  // The screen of `app` as `fleetletctl screenshot` saves it, taken again until `done` holds
  // for it (at most ~10 s); the last one read, nullopt when none could be.
  std::optional<Image> screenUntil(const std::string& app,
                                   const std::function<bool(const Image&)>& done) {
    const fs::path shot = tmp_->path() / "screen.png";
    std::optional<Image> last;
    for (int i = 0; i < 100 && !(last && done(*last)); ++i) {
      if (i > 0) std::this_thread::sleep_for(100ms);
      auto ctl = runCommand({FLEETLETCTL_PATH, "--api-socket", (tmp_->path() / "api.sock").string(),
                             "screenshot", app, "-o", shot.string()});
      if (!ctl || !ctl->status.success()) continue;
      if (auto image = Image::decodePng(readFile(shot))) last = std::move(*image);
    }
    return last;
  }
};

TEST_F(FleetletdKioskWithoutSandboxTest, ReportsWhyOnItsAppsInsteadOfCrashLooping) {
  apply(1, bundle("red", "rgb(255,0,0)"));
  Json s = waitApp(
      [](const Json& st) {
        return st.value("state", "") == "backoff" &&
               st.value("message", "").find("CAP_SYS_ADMIN") != std::string::npos;
      },
      60s);
  ASSERT_EQ(s.value("state", ""), "backoff") << s.dump();
  EXPECT_THAT(s.value("message", ""),
              HasSubstr("WebKit's web process sandbox (bubblewrap, /usr/bin/bwrap) cannot be set "
                        "up"));
  EXPECT_THAT(s.value("message", ""), HasSubstr("Fix: give the kiosk CAP_SYS_ADMIN"));
  const pid_t waiting = kioskPid();
  ASSERT_NE(waiting, 0) << "the kiosk does not run (waiting) after its one failed start";

  // The screen says why (white text on black), read back through fleetletctl.
  auto whitePixels = [](const Image& image) {
    return image.count({255, 255, 255}, 0, 0, image.width(), image.height());
  };
  auto notice = screenUntil("ui", [&](const Image& image) { return whitePixels(image) >= 200; });
  if (!notice) FAIL() << "no screenshot of the waiting app";
  EXPECT_GE(whitePixels(*notice), 200) << "no notice on the screen";

  std::this_thread::sleep_for(3s);  // a crash loop would have exited again by now
  EXPECT_EQ(kioskPid(), waiting) << "the waiting kiosk exited again";
  const std::string log = events();
  EXPECT_EQ(countOf(log, "exit code 3"), 1u) << log;
  EXPECT_EQ(countOf(log, "the kiosk cannot show apps: WebKit's web process sandbox"), 1u) << log;
  EXPECT_EQ(waitApp([](const Json&) { return true; }, 1s).value("state", ""), "backoff");

  // The capability back: the kiosk, restarted by its policy, finds the sandbox working.
  writeWrapper("");
  ::kill(waiting, SIGTERM);
  s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 90s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  EXPECT_EQ(s.value("message", ""), "") << s.dump();
  EXPECT_EQ(countOf(events(), "the kiosk shows apps again"), 1u) << events();
  auto red = screenUntil("ui", [](const Image& image) {
    return image.at(20, 20) == Rgb{255, 0, 0};
  });
  if (!red) FAIL() << "no screenshot of the app";
  EXPECT_EQ(red->at(20, 20), (Rgb{255, 0, 0}));
}

// fleetletd with the real fleetlet-streams and fleetlet-blobs (host processes with handoff
// sockets, as in docs/services.md).
class FleetletdWebviewServicesTest : public FleetletdWebviewTest {
 protected:
  std::vector<std::string> extraAgentArgs() override {
    return {"--streams-handoff", (tmp_->path() / "streams-handoff.sock").string(),
            "--blobs-handoff", (tmp_->path() / "blobs-handoff.sock").string()};
  }

  // Starts a service; returns the port of the host listener its log names after `marker`.
  std::string startService(std::unique_ptr<ChildProcess>& slot, const std::string& name,
                           std::vector<std::string> argv, const std::string& marker) {
    const fs::path log = tmp_->path() / (name + ".log");
    auto child =
        ChildProcess::spawn({.argv = std::move(argv), .stdout_path = log, .stderr_path = log});
    EXPECT_TRUE(child) << child.error().message();
    if (!child) return "";
    slot = std::make_unique<ChildProcess>(std::move(*child));
    std::string port;
    for (int i = 0; i < 400 && port.empty(); ++i) {
      std::ifstream in(log);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (auto at = text.find(marker); at != std::string::npos) {
        at += marker.size();
        port = text.substr(at, text.find_first_not_of("0123456789", at) - at);
      }
      if (port.empty()) std::this_thread::sleep_for(50ms);
    }
    EXPECT_FALSE(port.empty()) << name << " did not start";
    return port;
  }

  void beforeAgent() override {
    events_port_ =
        startService(streams_, "streams",
                     {FLEETLET_STREAMS_PATH, "--data-dir", (tmp_->path() / "streams").string(),
                      "--listen", "127.0.0.1:0", "--console-listen", "127.0.0.1:0",
                      "--handoff-socket", (tmp_->path() / "streams-handoff.sock").string()},
                     "events listening on 127.0.0.1:");
    ASSERT_FALSE(events_port_.empty());
    {
      std::ifstream in(tmp_->path() / "streams.log");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const std::string marker = "console listening on 127.0.0.1:";
      auto at = text.find(marker);
      ASSERT_NE(at, std::string::npos) << text;
      at += marker.size();
      console_port_ = text.substr(at, text.find_first_not_of("0123456789", at) - at);
    }
    blobs_port_ =
        startService(blobs_, "blobs",
                     {FLEETLET_BLOBS_PATH, "--data-dir", (tmp_->path() / "blobs").string(),
                      "--listen", "127.0.0.1:0", "--events-url", "http://127.0.0.1:" + events_port_,
                      "--handoff-socket", (tmp_->path() / "blobs-handoff.sock").string()},
                     "listening on 127.0.0.1:");
    ASSERT_FALSE(blobs_port_.empty());
  }

  void TearDown() override {
    FleetletdWebviewTest::TearDown();
    if (HasFailure() && tmp_) {
      for (const char* name : {"streams", "blobs"}) {
        std::cerr << "--- " << name << " log ---\n"
                  << std::ifstream(tmp_->path() / (std::string(name) + ".log")).rdbuf();
      }
    }
    if (streams_) streams_->stop(SIGTERM, 10s);
    if (blobs_) blobs_->stop(SIGTERM, 10s);
  }

  // GET or POST on a service's host listener; the body, or "" on failure.
  std::string hostCall(const std::string& port, const std::string& path,
                       const std::string& body = "") {
    http::Client client({.total_timeout = std::chrono::seconds(10)});
    http::ClientRequest request{.method = body.empty() ? "GET" : "POST",
                                .url = "http://127.0.0.1:" + port + path};
    if (!body.empty()) {
      request.headers.add("Content-Type", "application/json");
      request.body = body;
    }
    auto r = client.send(request);
    return r && r->status / 100 == 2 ? r->body : std::string();
  }
  // Every event in fleetlet-streams (NDJSON).
  std::string allEvents() {
    const std::string offsets = hostCall(events_port_, "/api/v1/events/offsets");
    if (offsets.empty()) return "";
    return hostCall(
        events_port_, "/api/v1/events/query",
        R"({"subscriptions":[{"semantics":"kiosk-e2e"}],"order":"lamport","upperBound":)" +
            offsets + "}");
  }

  std::unique_ptr<ChildProcess> streams_;
  std::unique_ptr<ChildProcess> blobs_;
  std::string events_port_, console_port_, blobs_port_;
};

// An SPA publishes an event, stores and reads a blob through window.ax; the services store
// both as the SPA's app (the listener fleetletd made for it decides, not the request); its
// console reaches the console service under its name. A second SPA naming the first in its
// event and calling the first's origin stays itself.
constexpr std::string_view kServicesPage = R"(<!doctype html><html><body>
<script>
async function run() {
  const pub = await fetch(ax.eventServiceUri + '/api/v1/events/publish', {method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({data: [{semantics: 'kiosk-e2e', name: 'n', sourceApp: 'cam',
                                  payload: {from: ax.appName}}]})});
  let stolen = 'refused';
  try {
    const other = ax.appName === 'cam' ? 'mallory' : 'cam';
    const r = await fetch('app://' + other + '/.ax/events/api/v1/events/publish', {method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({data: [{semantics: 'kiosk-e2e', name: 'stolen', payload: 1}]})});
    stolen = 'answered ' + r.status;
  } catch (e) { stolen = 'refused'; }
  const b = 'fleetletboundary';
  const form = '--' + b + '\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n' +
    '{"semantics":"kiosk-e2e-blob","retentionPolicy":{"policy":"keepForever"}}\r\n' +
    '--' + b + '\r\nContent-Disposition: form-data; name="blob"; filename="a.txt"\r\n' +
    'Content-Type: text/plain\r\n\r\nhello from ' + ax.appName + '\r\n--' + b + '--\r\n';
  const up = await fetch(ax.blobServiceUri + '/api/v1/blobs', {method: 'POST',
    headers: {'Content-Type': 'multipart/form-data; boundary=' + b}, body: form});
  const handle = (await up.json()).handle;
  const text = await (await fetch(ax.blobServiceUri + '/api/v1/blobs/' + handle)).text();
  const meta = await (await fetch(ax.blobServiceUri + '/api/v1/blobs/' + handle +
                                  '/metadata')).json();
  console.warn('console of ' + ax.appName);
  document.title = 'published ' + pub.status + '; other origin ' + stolen + '; blob ' +
    up.status + ' read "' + text + '" stored by ' + meta.sourceApp;
}
run().catch(e => { document.title = 'error ' + e; });
</script></body></html>)";

TEST_F(FleetletdWebviewServicesTest, SpasReachTheServicesAsThemselvesAndCannotPoseAsAnother) {
  const std::string services = "    services: [events, blobs]\n";
  applyApps(
      1,
      "  cam:\n    runtime: webview\n    bundle: " + pageBundle("cam", std::string(kServicesPage)) +
          "\n" + services + "  mallory:\n    runtime: webview\n    bundle: " +
          pageBundle("mallory", std::string(kServicesPage) + "<!-- m -->") + "\n" + services);
  for (const char* app : {"cam", "mallory"}) {
    Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s, app);
    ASSERT_EQ(s.value("state", ""), "running") << app << ": " << s.dump();
  }
  auto title = [&](const std::string& app) { return kioskStatus(app).value("title", ""); };
  for (int i = 0; i < 400 && (title("cam").empty() || title("mallory").empty()); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  for (const std::string app : {"cam", "mallory"}) {
    EXPECT_EQ(title(app), fmt::format("published 201; other origin refused; blob 201 read "
                                      "\"hello from {}\" stored by {}",
                                      app, app))
        << kioskStatus(app).dump();
  }

  // fleetlet-streams stored each app's event under the app it came from: cam's own, and
  // mallory's (which named cam in its body) as mallory's. Nothing came through cam's origin
  // from mallory's page.
  std::string events;
  for (int i = 0; i < 100; ++i) {
    events = allEvents();
    if (events.find(R"("sourceApp":"mallory")") != std::string::npos &&
        events.find(R"("sourceApp":"cam")") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(countOf(events, R"("sourceApp":"cam")"), 1u) << events;
  EXPECT_EQ(countOf(events, R"("sourceApp":"mallory")"), 1u) << events;
  EXPECT_EQ(countOf(events, R"("from":"mallory")"), 1u) << events;
  EXPECT_THAT(events, Not(HasSubstr("stolen")));
  std::istringstream lines(events);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(R"("from":"mallory")") != std::string::npos) {
      EXPECT_THAT(line, HasSubstr(R"("sourceApp":"mallory")"));
    }
  }

  // The blob service's own record of the blobs.
  const std::string blobs =
      hostCall(blobs_port_, "/api/v1/blobs?semantics=kiosk-e2e-blob&limit=10");
  EXPECT_EQ(countOf(blobs, R"("sourceApp":"cam")"), 1u) << blobs;
  EXPECT_EQ(countOf(blobs, R"("sourceApp":"mallory")"), 1u) << blobs;

  // Console messages in the console service, each under its app's name.
  std::string logs;
  for (int i = 0; i < 100; ++i) {
    logs = hostCall(console_port_, "/api/v1/logs?logName=console");
    if (countOf(logs, "console of ") >= 2) break;
    std::this_thread::sleep_for(50ms);
  }
  std::istringstream entries(logs);
  int seen = 0;
  for (std::string line; std::getline(entries, line);) {
    for (const std::string app : {"cam", "mallory"}) {
      if (line.find("console of " + app) == std::string::npos) continue;
      ++seen;
      EXPECT_THAT(line, HasSubstr(R"("app":")" + app + "\"")) << line;
      EXPECT_THAT(line, HasSubstr(R"("severity":"warn")")) << line;
    }
  }
  EXPECT_EQ(seen, 2) << logs;
  // `fleetletctl logs cam`: the kiosk's lines about cam (its console, the request it tried
  // through mallory's origin), none of mallory's.
  std::string cam_logs;
  for (int i = 0; i < 100 && cam_logs.find("console of cam") == std::string::npos; ++i) {
    cam_logs = apiText("/v1/apps/cam/logs").value_or("");
    if (cam_logs.find("console of cam") == std::string::npos) std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(cam_logs, HasSubstr("[cam] console.warn: console of cam"));
  EXPECT_THAT(cam_logs, HasSubstr("[cam] refused request for app://mallory/"));
  EXPECT_THAT(cam_logs, Not(HasSubstr("[mallory]")));
  EXPECT_THAT(cam_logs, Not(HasSubstr("console of mallory")));

  // Each app's listeners are unix sockets only its kiosk view uses, under fleetletd's data.
  const fs::path cam = tmp_->path() / "data" / "webview" / "services" / "cam";
  EXPECT_TRUE(fs::is_socket(cam / "events.sock"));
  EXPECT_TRUE(fs::is_socket(cam / "blobs.sock"));
  EXPECT_TRUE(fs::is_socket(cam / "logs.sock")) << "the console service, for console messages";
  EXPECT_EQ(fs::status(cam / "events.sock").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  // Removing an app closes its listeners.
  applyApps(2, "  cam:\n    runtime: webview\n    bundle: " +
                   pageBundle("cam", std::string(kServicesPage)) + "\n" + services);
  for (int i = 0; i < 200 && fs::exists(tmp_->path() / "data" / "webview" / "services" / "mallory");
       ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(fs::exists(tmp_->path() / "data" / "webview" / "services" / "mallory"));
}

// An SPA subscribes to the event service through its own origin (/.ax/events/...): a
// long-lived streamed answer whose events reach the page as they are published. The first
// comes from a host process; the page then publishes one itself, which comes back through
// the same subscription under the SPA's own name.
constexpr std::string_view kSubscribePage = R"(<!doctype html><html><body>
<script>
document.title = 'subscribing';
async function run() {
  const r = await fetch('/.ax/events/api/v1/events/subscribe', {method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({subscriptions: [{semantics: 'kiosk-live'}]})});
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  const seen = [];
  let buffered = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) { document.title += ' (ended)'; return; }
    buffered += decoder.decode(value, {stream: true});
    for (let nl; (nl = buffered.indexOf('\n')) >= 0;) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const e = JSON.parse(line);
      if (!e.payload) continue;
      seen.push(e.payload.n + ' by ' + e.sourceApp);
      document.title = 'events: ' + seen.join('; ');
      if (seen.length === 1) {
        fetch(ax.eventServiceUri + '/api/v1/events/publish', {method: 'POST',
          headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({data: [{semantics: 'kiosk-live', name: 'n',
                                         payload: {n: 'mine'}}]})});
      }
    }
  }
}
run().catch(e => { document.title = 'error ' + e; });
</script></body></html>)";

TEST_F(FleetletdWebviewServicesTest, AnSpasEventSubscriptionDeliversEventsAsTheyArePublished) {
  applyApps(1, "  live:\n    runtime: webview\n    bundle: " +
                   pageBundle("live", std::string(kSubscribePage)) + "\n    services: [events]\n");
  Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s, "live");
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  auto title = [&] { return kioskStatus("live").value("title", ""); };
  std::this_thread::sleep_for(500ms);  // the subscription is open (and has nothing yet)
  EXPECT_EQ(title(), "subscribing");

  ASSERT_FALSE(
      hostCall(events_port_, "/api/v1/events/publish",
               R"({"data":[{"semantics":"kiosk-live","name":"n","payload":{"n":"first"}}]})")
          .empty());
  // The page saw the host's event while the answer is still open, then its own came back.
  std::string seen;
  for (int i = 0; i < 200 && seen.find("mine by") == std::string::npos; ++i) {
    seen = title();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(seen, ::testing::StartsWith("events: first by ")) << seen;
  EXPECT_THAT(seen, HasSubstr("; mine by live")) << seen;
  EXPECT_THAT(seen, Not(HasSubstr("ended")));

  // More events keep arriving on the same answer.
  ASSERT_FALSE(
      hostCall(events_port_, "/api/v1/events/publish",
               R"({"data":[{"semantics":"kiosk-live","name":"n","payload":{"n":"third"}}]})")
          .empty());
  for (int i = 0; i < 200 && seen.find("third") == std::string::npos; ++i) {
    seen = title();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(seen, HasSubstr("; mine by live; third by ")) << seen;

  // A reloaded page subscribes again; the old subscription's call ends although no event
  // comes (the kiosk notices that WebKit let go of the page's end), within about a second.
  ASSERT_TRUE(KioskClient(tmp_->path() / "data" / "webview" / "control.sock")
                  .call({{"cmd", "reload"}, {"app", "live"}}));
  const fs::path kiosk_log =
      tmp_->path() / "data" / "logs" / webview::kKioskAppName / "current.log";
  const std::string ended = "[live] streamed answer of /api/v1/events/subscribe ended: ";
  std::string log;
  for (int i = 0; i < 100 && log.find(ended) == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    log = readFile(kiosk_log);
  }
  EXPECT_THAT(log, HasSubstr(ended)) << "the old subscription's call is still open";
  // Ended because WebKit let go of it ("cancelled"), not by a failed write of a later event.
  EXPECT_THAT(log, ::testing::ContainsRegex("streamed answer of /api/v1/events/subscribe ended: "
                                            "POST [^ ]+: cancelled"))
      << log;
  for (int i = 0; i < 200 && !title().starts_with("events: "); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(title(), ::testing::StartsWith("events: first by ")) << "subscribed again";
}

// A PNG of one colour (cairo).
std::string solidPng(int width, int height, double r, double g, double b) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, r, g, b);
  cairo_paint(cr);
  cairo_destroy(cr);
  std::string png;
  cairo_surface_write_to_png_stream(
      surface,
      [](void* closure, const unsigned char* bytes, unsigned int length) {
        static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(bytes), length);
        return CAIRO_STATUS_SUCCESS;
      },
      &png);
  cairo_surface_destroy(surface);
  return png;
}

// The demo's photo viewer (manifests/examples/photo-viewer/) under fleetletd with the real
// services: photos stored in the blob service appear on screen, the latest one shown.
TEST_F(FleetletdWebviewServicesTest, ThePhotoViewerShowsTheLatestPhoto) {
  std::vector<bundle::testing::TarEntry> files;
  for (const char* name : {"index.html", "fleetlet-app.json"}) {
    std::ifstream in(fs::path(PHOTO_VIEWER_DIR) / name);
    files.push_back(file(
        name, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())));
  }
  auto bytes = makeTar(files);
  bundle::testing::writeFile(tmp_->path() / "viewer.tar.gz", bytes);
  applyApps(1, fmt::format("  viewer:\n    runtime: webview\n    bundle: {{url: \"file://{}\", "
                           "sha256: \"{}\"}}\n    services: [events, blobs]\n",
                           (tmp_->path() / "viewer.tar.gz").string(), sha256Hex(bytes)));
  Json s =
      waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s, "viewer");
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();

  auto upload = [&](const std::string& png, const std::string& name) {
    http::ClientRequest request{.method = "POST",
                                .url = "http://127.0.0.1:" + blobs_port_ + "/api/v1/blobs"};
    const std::string boundary = "photoboundary";
    request.headers.add("Content-Type", "multipart/form-data; boundary=" + boundary);
    request.body =
        "--" + boundary +
        "\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
        R"({"semantics":"com.example.inspection-photos","retentionPolicy":{"policy":"keepForever"}})"
        "\r\n--" +
        boundary + "\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"" + name +
        "\"\r\nContent-Type: image/png\r\n\r\n" + png + "\r\n--" + boundary + "--\r\n";
    auto r = http::Client().send(request);
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : r.error().message());
    return r ? Json::parse(r->body).value("handle", "") : std::string();
  };
  auto screen = [&] {
    const fs::path shot = tmp_->path() / "viewer.png";
    auto ctl = runCommand({FLEETLETCTL_PATH, "--api-socket", (tmp_->path() / "api.sock").string(),
                           "screenshot", "viewer", "-o", shot.string()});
    EXPECT_TRUE(ctl && ctl->status.success());
    std::ifstream in(shot, std::ios::binary);
    auto image = Image::decodePng(
        std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
    return image ? image->at(512, 270) : Rgb{-1, -1, -1};
  };
  auto waitTitle = [&](const std::string& handle) {
    std::string title;
    for (int i = 0; i < 200 && title != "photo " + handle; ++i) {
      title = kioskStatus("viewer").value("title", "");
      std::this_thread::sleep_for(50ms);
    }
    return title;
  };

  const std::string red = upload(solidPng(64, 48, 1, 0, 0), "shot-1.png");
  ASSERT_FALSE(red.empty());
  EXPECT_EQ(waitTitle(red), "photo " + red);
  std::this_thread::sleep_for(500ms);  // the image decodes and paints
  EXPECT_EQ(screen(), (Rgb{255, 0, 0}));

  const std::string blue = upload(solidPng(64, 48, 0, 0, 1), "shot-2.png");
  ASSERT_FALSE(blue.empty());
  EXPECT_EQ(waitTitle(blue), "photo " + blue) << "the latest photo is shown";
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(screen(), (Rgb{0, 0, 255}));
}

}  // namespace
}  // namespace fleetlet::webview::testing

namespace fleetlet::webview::testing {
namespace {

// `webviewChild: true`: the kiosk is fleetletd's supervised child, not a system app.
class FleetletdWebviewChildTest : public FleetletdWebviewTest {
 protected:
  std::string extraConfig() override { return "webviewChild: true\n"; }
  fs::path kioskLogDir() override { return tmp_->path() / "data" / "webview" / "log"; }
};

// The child kiosk's output is logged as the system app's is (CRI records, rotated, in
// <data>/webview/log), so `fleetletctl logs` shows a webview app's lines in this mode too.
TEST_F(FleetletdWebviewChildTest, AWebviewAppsLinesAreInItsLogsWhenTheKioskIsAChild) {
  applyApps(1, "  ui:\n    runtime: webview\n    bundle: " +
                   pageBundle("ui",
                              "<html><body><script>console.warn('console of ui')</script>"
                              "</body></html>") +
                   "\n  other:\n    runtime: webview\n    bundle: " +
                   bundle("other", "rgb(0,0,255)") + "\n");
  Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  EXPECT_TRUE(kioskTask().first.empty()) << "a child kiosk, not a system app's task";

  std::string logs;
  for (int i = 0; i < 100 && logs.find("console of ui") == std::string::npos; ++i) {
    auto out = runCommand(
        {FLEETLETCTL_PATH, "--api-socket", (tmp_->path() / "api.sock").string(), "logs", "ui"});
    ASSERT_TRUE(out && out->status.success()) << (out ? out->err : out.error().message());
    logs = out->out;
    if (logs.find("console of ui") == std::string::npos) std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(logs, HasSubstr("[ui] console.warn: console of ui"));
  EXPECT_THAT(logs, HasSubstr("[ui] loaded app://ui/index.html"));
  EXPECT_THAT(logs, Not(HasSubstr("[other]")));
  // Records as a logger writes them (time, stream, tag, line), not the kiosk's bare output.
  EXPECT_THAT(readFile(kioskLogDir() / "current.log"),
              ::testing::ContainsRegex("Z stderr F [^\n]*\\[other\\] loaded app://other/"));
  EXPECT_FALSE(fs::exists(tmp_->path() / "data" / "webview" / "kiosk.log"));
  // The kiosk's own log, all of it, under its name as in system-app mode.
  auto own = runCommand({FLEETLETCTL_PATH, "--api-socket", (tmp_->path() / "api.sock").string(),
                         "logs", webview::kKioskAppName});
  ASSERT_TRUE(own && own->status.success()) << (own ? own->err : own.error().message());
  EXPECT_THAT(own->out, HasSubstr("control socket "));
  EXPECT_THAT(own->out, HasSubstr("[ui] loaded app://ui/index.html"));
  EXPECT_THAT(own->out, HasSubstr("[other] loaded app://other/index.html"));
}

// A child kiosk ends with the fleetletd that started it, also when that one is killed: the
// next fleetletd starts the only kiosk on the display, none is left over.
TEST_F(FleetletdWebviewChildTest, AKilledFleetletdLeavesNoKioskBehind) {
  apply(1, bundle("v1", "rgb(255,0,0)"));
  Json s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  const std::string socket = (tmp_->path() / "data" / "webview" / "control.sock").string();
  ASSERT_EQ(processesWithArg(socket).size(), 1u);

  ::kill(agent_->pid(), SIGKILL);
  (void)agent_->wait();
  agent_.reset();
  std::vector<pid_t> left = processesWithArg(socket);
  for (int i = 0; i < 100 && !left.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    left = processesWithArg(socket);
  }
  EXPECT_TRUE(left.empty()) << "the kiosk outlived its fleetletd";
  for (pid_t pid : left) ::kill(pid, SIGKILL);  // not left to the next tests

  startAgent();
  s = waitApp([](const Json& st) { return st.value("state", "") == "running"; }, 40s);
  ASSERT_EQ(s.value("state", ""), "running") << s.dump();
  EXPECT_EQ(processesWithArg(socket).size(), 1u);
}

}  // namespace
}  // namespace fleetlet::webview::testing
