// fleetletd's WebviewRuntime (agent/src/webview) with the real fleetlet-webview under Xvfb:
// desired states in, the kiosk supervised, bundles verified and handed over, states and
// restarts read back.
#include "webview/webview_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "agent/bundle/archive_builder.h"
#include "crypto/sha256.h"
#include "kiosk_fixture.h"
#include "support/temp_dir.h"

namespace fleetlet::webview::testing {
namespace {

using bundle::testing::file;
using bundle::testing::makeTar;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class WebviewRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(sharedXvfb()) << "Xvfb is not installed or would not start (xvfb)";
    auto t = fleetlet::testing::TempDir::create("webview-runtime");
    ASSERT_TRUE(t) << t.error().describe();
    tmp_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*t));
    options_ = WebviewOptions{.display = sharedDisplay(),
                              .binary = FLEETLET_WEBVIEW_PATH,
                              .work_dir = tmp_->path() / "webview",
                              .bundles = {.root = tmp_->path() / "bundles"},
                              .kiosk_args = {"--window", "1024x600"},
                              .poll_interval = 100ms,
                              .retry_interval = 60s,
                              .on_event = [this](const std::string& app, const std::string& kind,
                                                 const std::string& message) {
                                std::lock_guard lock(mu_);
                                events_.push_back(app + " " + kind + " " + message);
                              }};
    runtime_ = std::make_unique<WebviewRuntime>(options_);
  }

  void TearDown() override {
    if (HasFailure() && tmp_) {
      std::ifstream log(kioskChildLogDir(options_) / "current.log");
      std::cerr << "--- kiosk log ---\n" << log.rdbuf();
    }
    runtime_.reset();
  }

  // A file:// bundle of one colour; returns {url, sha256}.
  manifest::Bundle bundleOf(const std::string& name, std::string_view colour) {
    auto bytes = makeTar({file("index.html", colourPage(colour))});
    const fs::path path = tmp_->path() / (name + ".tar.gz");
    bundle::testing::writeFile(path, bytes);
    return {.url = "file://" + path.string(), .sha256 = sha256Hex(bytes)};
  }

  // `priorities`: display priorities of some of the apps.
  void apply(const std::map<std::string, manifest::Bundle>& apps,
             const std::map<std::string, int64_t>& priorities = {}) {
    auto state = std::make_shared<manifest::NodeState>();
    state->revision = ++revision_;
    for (const auto& [name, b] : apps) {
      manifest::App app;
      app.name = name;
      app.runtime = manifest::Runtime::kWebview;
      app.bundle = b;
      if (auto p = priorities.find(name); p != priorities.end()) {
        app.display = manifest::Display{.priority = p->second};
      }
      state->apps.emplace(name, app);
    }
    runtime_->setDesired(state);
  }

  WebviewAppStatus waitFor(const std::string& app,
                           const std::function<bool(const WebviewAppStatus&)>& done,
                           std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    WebviewAppStatus last;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto s = runtime_->app(app)) {
        last = *s;
        if (done(last)) break;
      }
      std::this_thread::sleep_for(20ms);
    }
    return last;
  }

  Rgb screenColour() {
    auto png = runtime_->screenshot("");
    EXPECT_TRUE(png) << png.error().describe();
    if (!png) return {};
    auto image = Image::decodePng(*png);
    EXPECT_TRUE(image) << image.error().describe();
    return image ? image->at(20, 20) : Rgb{};
  }

  // The screen's colour, polled until it is `want` (or 10 s): a new bundle of the shown app
  // replaces the old page once it has loaded.
  Rgb screenColourBecomes(const Rgb& want) {
    Rgb seen = screenColour();
    for (int i = 0; i < 200 && !(seen == want); ++i) {
      std::this_thread::sleep_for(50ms);
      seen = screenColour();
    }
    return seen;
  }

  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

  // The app the kiosk shows, polled until it is `app` (or 10 s).
  std::string shownApp(const std::string& app) {
    std::string shown;
    for (int i = 0; i < 200; ++i) {
      for (const auto& [name, s] : runtime_->apps()) {
        if (s.shown) shown = name;
      }
      if (shown == app) break;
      std::this_thread::sleep_for(50ms);
    }
    return shown;
  }

  // unique_ptr, not optional: set in SetUp, never empty where used.
  std::unique_ptr<fleetlet::testing::TempDir> tmp_;
  WebviewOptions options_;
  std::unique_ptr<WebviewRuntime> runtime_;
  int64_t revision_ = 0;
  std::mutex mu_;
  std::vector<std::string> events_;  // guarded by mu_
};

bool running(const WebviewAppStatus& s) { return s.state == "running"; }

TEST_F(WebviewRuntimeTest, ShowsAppsCountsPageCrashesKeepsTheOldBundleOnABadOneAndRemoves) {
  auto v1 = bundleOf("v1", "rgb(255,0,0)");
  apply({{"ui", v1}});
  auto s = waitFor("ui", running);
  ASSERT_EQ(s.state, "running") << s.message;
  EXPECT_EQ(s.bundle, v1.sha256);
  EXPECT_TRUE(s.shown);
  EXPECT_EQ(s.restarts, 0u);
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));

  // A page crash is a restart, with its reason.
  auto kiosk = processesBelow(::getpid(), "fleetlet-webvie");
  ASSERT_EQ(kiosk.size(), 1u);
  // The page's web process (the oldest; the app's spare is younger).
  const std::optional<pid_t> serving = oldestProcess(webProcessesBelow(kiosk[0]));
  if (!serving.has_value()) FAIL() << "no WebKitWebProcess below the kiosk";
  ::kill(*serving, SIGKILL);
  s = waitFor("ui", [](const WebviewAppStatus& st) { return st.restarts == 1 && running(st); });
  ASSERT_EQ(s.restarts, 1u) << s.state << " " << s.message;
  EXPECT_EQ(s.state, "running");
  EXPECT_THAT(events(), ::testing::Contains("ui restarted crashed: web process crashed"));

  // A bundle with a wrong hash is refused; the old one stays on screen and running.
  auto v2 = bundleOf("v2", "rgb(0,0,255)");
  manifest::Bundle bad = v2;
  bad.sha256 = sha256Hex("not the archive");
  apply({{"ui", bad}});
  s = waitFor("ui", [](const WebviewAppStatus& st) { return !st.message.empty(); });
  EXPECT_THAT(s.message, HasSubstr("refused"));
  EXPECT_THAT(s.message, HasSubstr("sha256 mismatch"));
  EXPECT_THAT(s.message, HasSubstr("still showing " + v1.sha256.substr(0, 12)));
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.bundle, v1.sha256);
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));

  // The good one replaces it; once it runs, the previous bundle leaves the store.
  apply({{"ui", v2}});
  s = waitFor("ui",
              [&](const WebviewAppStatus& st) { return st.bundle == v2.sha256 && running(st); });
  ASSERT_EQ(s.bundle, v2.sha256) << s.state << " " << s.message;
  EXPECT_EQ(screenColour(), (Rgb{0, 0, 255}));
  const fs::path v1_dir = tmp_->path() / "bundles" / "sha256" / v1.sha256;
  for (int i = 0; i < 100 && fs::exists(v1_dir); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(fs::exists(v1_dir)) << "the previous bundle is pruned once the new one runs";
  EXPECT_TRUE(fs::exists(tmp_->path() / "bundles" / "sha256" / v2.sha256));

  // Removed from the desired state: unloaded from the kiosk.
  apply({});
  for (int i = 0; i < 100 && !runtime_->apps().empty(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(runtime_->apps().empty());
  std::this_thread::sleep_for(300ms);
  EXPECT_THAT(events(), ::testing::Contains("ui removed unloaded from the kiosk"));
}

// A bundle whose archive climbs out of its directory is refused through the whole path
// (fetched, hash right, unpacking refused); the app keeps showing its previous bundle.
// A new bundle whose page never becomes healthy (here: it hangs) is rolled back to the
// previous one, which is shown again, and not tried again; another new bundle is.
TEST_F(WebviewRuntimeTest, RollsBackToThePreviousBundleWhenTheNewOneNeverRuns) {
  runtime_.reset();
  options_.healthy_timeout = 4s;
  runtime_ = std::make_unique<WebviewRuntime>(options_);
  auto v1 = bundleOf("v1", "rgb(255,0,0)");
  apply({{"ui", v1}});
  auto s = waitFor("ui", running);
  ASSERT_EQ(s.state, "running") << s.message;
  ASSERT_EQ(screenColour(), (Rgb{255, 0, 0}));

  auto hang = makeTar({file("index.html",
                            "<!doctype html><html><body style=\"margin:0;background:rgb(0,0,255)\">"
                            "<script>while (true) {}</script></body></html>")});
  bundle::testing::writeFile(tmp_->path() / "hang.tar.gz", hang);
  const manifest::Bundle v2{.url = "file://" + (tmp_->path() / "hang.tar.gz").string(),
                            .sha256 = sha256Hex(hang)};
  apply({{"ui", v2}});
  s = waitFor(
      "ui", [&](const WebviewAppStatus& st) { return st.bundle == v2.sha256; }, 10s);
  ASSERT_EQ(s.bundle, v2.sha256) << "the new bundle is handed over first";
  s = waitFor(
      "ui",
      [](const WebviewAppStatus& st) { return st.message.find("rolled back") != st.message.npos; },
      20s);
  EXPECT_THAT(s.message, HasSubstr("bundle " + v2.sha256.substr(0, 12) + " rolled back to " +
                                   v1.sha256.substr(0, 12)));
  EXPECT_EQ(s.bundle, v1.sha256);
  s = waitFor("ui", running, 20s);
  ASSERT_EQ(s.state, "running") << s.message;
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));
  auto status = runtime_->kioskStatus("ui");
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_EQ((*status)["dir"], (tmp_->path() / "bundles" / "sha256" / v1.sha256).string());
  bool rolled = false;
  for (const auto& e : events()) rolled = rolled || e.starts_with("ui rolledback bundle ");
  EXPECT_TRUE(rolled) << ::testing::PrintToString(events());

  // The same desired state again: the refused bundle is not handed over again.
  apply({{"ui", v2}});
  std::this_thread::sleep_for(2s);
  s = runtime_->app("ui").value_or(WebviewAppStatus{});
  EXPECT_EQ(s.bundle, v1.sha256);
  EXPECT_EQ(s.state, "running");

  // Another bundle is.
  auto v3 = bundleOf("v3", "rgb(0,128,0)");
  apply({{"ui", v3}});
  s = waitFor("ui",
              [&](const WebviewAppStatus& st) { return running(st) && st.bundle == v3.sha256; });
  ASSERT_EQ(s.bundle, v3.sha256) << s.state << " " << s.message;
  EXPECT_EQ(screenColour(), (Rgb{0, 128, 0}));
}

TEST_F(WebviewRuntimeTest, RefusesAPathTraversalBundleAndKeepsThePreviousOnScreen) {
  auto v1 = bundleOf("v1", "rgb(255,0,0)");
  apply({{"ui", v1}});
  auto s = waitFor("ui", running);
  ASSERT_EQ(s.state, "running") << s.message;
  ASSERT_EQ(screenColour(), (Rgb{255, 0, 0}));
  auto evil =
      makeTar({file("index.html", colourPage("rgb(0,0,255)")), file("../../escaped.html", "x")});
  bundle::testing::writeFile(tmp_->path() / "evil.tar.gz", evil);
  apply(
      {{"ui",
        {.url = "file://" + (tmp_->path() / "evil.tar.gz").string(), .sha256 = sha256Hex(evil)}}});
  s = waitFor("ui", [](const WebviewAppStatus& st) { return !st.message.empty(); });
  EXPECT_THAT(s.message, HasSubstr("path traversal"));
  EXPECT_THAT(s.message, HasSubstr("still showing " + v1.sha256.substr(0, 12)));
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.bundle, v1.sha256);
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));
  EXPECT_FALSE(fs::exists(tmp_->path() / "bundles" / "escaped.html"));
  EXPECT_FALSE(fs::exists(tmp_->path() / "escaped.html"));
  auto status = runtime_->kioskStatus("ui");
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_EQ((*status)["dir"], (tmp_->path() / "bundles" / "sha256" / v1.sha256).string());
}

// Which app is shown: the highest display priority; among equals, the latest applied; a
// show by hand holds until the next manifest.
TEST_F(WebviewRuntimeTest, ShowsTheHighestDisplayPriorityElseTheLatestApplied) {
  auto red = bundleOf("red", "rgb(255,0,0)");
  auto green = bundleOf("green", "rgb(0,200,0)");
  auto blue = bundleOf("blue", "rgb(0,0,255)");
  apply({{"alarm", red}, {"board", green}}, {{"alarm", 10}});
  ASSERT_EQ(waitFor("board", running).state, "running");
  ASSERT_EQ(waitFor("alarm", running).state, "running");
  EXPECT_EQ(shownApp("alarm"), "alarm");
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));

  // A later app of a lower priority is not shown.
  apply({{"alarm", red}, {"board", green}, {"extra", blue}}, {{"alarm", 10}});
  ASSERT_EQ(waitFor("extra", running).state, "running");
  EXPECT_EQ(shownApp("alarm"), "alarm");
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));

  // Shown by hand: holds.
  ASSERT_TRUE(runtime_->show("board"));
  EXPECT_EQ(shownApp("board"), "board");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(shownApp("board"), "board");
  EXPECT_EQ(screenColour(), (Rgb{0, 200, 0}));

  // Equal priorities: the latest applied (extra's new bundle) is shown.
  apply({{"alarm", red}, {"board", green}, {"extra", bundleOf("blue2", "rgb(0,0,254)")}});
  EXPECT_EQ(shownApp("extra"), "extra");
  EXPECT_EQ(screenColourBecomes(Rgb{0, 0, 254}), (Rgb{0, 0, 254}));
}

// The kiosk's status of an app as fleetletd's describe shows it, with its memory use.
TEST_F(WebviewRuntimeTest, ReportsTheKiosksStatusWithMemoryUse) {
  apply({{"ui", bundleOf("mem", "rgb(10,20,30)")}});
  ASSERT_EQ(waitFor("ui", running).state, "running");
  Json status;
  for (int i = 0; i < 100; ++i) {
    auto s = runtime_->kioskStatus("ui");
    ASSERT_TRUE(s) << s.error().describe();
    status = *s;
    if (status["memoryMiB"].is_number()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(status["memoryMiB"].is_number()) << status.dump();
  // A web process showing a small page: tens of MiB, not zero, not gigabytes.
  EXPECT_GT(status["memoryMiB"].get<double>(), 10.0) << status.dump();
  EXPECT_LT(status["memoryMiB"].get<double>(), 2048.0) << status.dump();
  EXPECT_EQ(status["loadState"], "loaded");
  EXPECT_TRUE(status["heartbeatAgeMs"].is_number());
  auto missing = runtime_->kioskStatus("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(WebviewRuntimeTest, RestartsAKilledKioskAndLoadsItsAppsAgain) {
  apply({{"one", bundleOf("one", "rgb(0,200,0)")}});
  auto s = waitFor("one", running);
  ASSERT_EQ(s.state, "running") << s.message;
  auto kiosk = processesBelow(::getpid(), "fleetlet-webvie");
  ASSERT_EQ(kiosk.size(), 1u);
  ::kill(kiosk[0], SIGKILL);
  s = waitFor("one", [](const WebviewAppStatus& st) { return st.restarts == 1 && running(st); });
  ASSERT_EQ(s.state, "running") << s.message;
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(screenColour(), (Rgb{0, 200, 0}));
  auto all = events();
  EXPECT_TRUE(std::ranges::any_of(all, [](const std::string& e) {
    return e.starts_with(" kiosk-exited killed by signal 9");
  })) << ::testing::PrintToString(all);
}

// The child kiosk's output goes to a rotated log of CRI records (as a system app's does),
// kept across the kiosk's restarts.
TEST_F(WebviewRuntimeTest, LogsTheChildKiosksOutputAcrossItsRestarts) {
  apply({{"one", bundleOf("one", "rgb(0,200,0)")}});
  auto s = waitFor("one", running);
  ASSERT_EQ(s.state, "running") << s.message;
  const fs::path log = kioskChildLogDir(options_) / "current.log";
  const std::string loaded = "[one] loaded app://one/index.html";
  auto logged = [&] { return countOf(readFile(log), loaded); };
  for (int i = 0; i < 100 && logged() < 1; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_THAT(readFile(log), ::testing::ContainsRegex("Z stderr F [^\n]*\\[one\\] loaded"));

  auto kiosk = processesBelow(::getpid(), "fleetlet-webvie");
  ASSERT_EQ(kiosk.size(), 1u);
  ::kill(kiosk[0], SIGKILL);
  s = waitFor("one", [](const WebviewAppStatus& st) { return st.restarts == 1 && running(st); });
  ASSERT_EQ(s.state, "running") << s.message;
  for (int i = 0; i < 100 && logged() < 2; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(logged(), 2) << "the second kiosk's lines follow the first's";
  EXPECT_FALSE(fs::exists(options_.work_dir / "kiosk.log"));
}

// A kiosk that cannot start (here: not a kiosk at all) is tried again after the restart
// backoff of apps, 1 s doubling, not every few seconds forever: the node events of a screen
// without its X server stay readable.
TEST_F(WebviewRuntimeTest, AKioskThatCannotStartIsTriedAgainWithDoublingDelays) {
  runtime_.reset();
  options_.binary = "/bin/false";
  runtime_ = std::make_unique<WebviewRuntime>(options_);
  apply({{"one", bundleOf("one", "rgb(0,200,0)")}});
  auto failures = [this] {
    std::vector<std::string> out;
    for (const auto& e : events()) {
      if (e.find("did not open its control socket") != std::string::npos) out.push_back(e);
    }
    return out;
  };
  for (int i = 0; i < 200 && failures().size() < 3; ++i) std::this_thread::sleep_for(50ms);
  auto seen = failures();
  ASSERT_GE(seen.size(), 3u) << ::testing::PrintToString(events());
  EXPECT_THAT(seen[0], HasSubstr("trying again in 1 s"));
  EXPECT_THAT(seen[1], HasSubstr("trying again in 2 s"));
  EXPECT_THAT(seen[2], HasSubstr("trying again in 4 s"));
}

// Where the log cannot be written the child still writes all it wants: nothing reads a
// closed pipe (a SIGPIPE would kill the kiosk).
TEST(ChildLogTest, AChildWhoseLogCannotBeOpenedStillWritesAllItsOutput) {
  auto tmp = fleetlet::testing::TempDir::create("child-log");
  ASSERT_TRUE(tmp);
  std::ofstream(tmp->path() / "file") << "not a directory";
  auto log = ChildLog::start(tmp->path() / "file" / "log");
  ASSERT_TRUE(log) << log.error().describe();
  SpawnOptions spawn{
      .argv = {"/bin/sh", "-c", "head -c 4000000 /dev/zero && head -c 4000000 /dev/zero >&2"}};
  spawn.stdout_fd = log->stdoutFd();
  spawn.stderr_fd = log->stderrFd();
  auto child = ChildProcess::spawn(spawn);
  log->closeWriteEnds();
  ASSERT_TRUE(child) << child.error().describe();
  auto ended = child->wait();
  EXPECT_TRUE(ended.success()) << ended.describe();
}

// A kiosk whose sandbox cannot be set up (run without CAP_SYS_ADMIN, as in a container that
// withholds it): fleetletd's side sees one exit, then the kiosk's reason on every app and as
// one event, not a crash loop; with the capability back, the apps run.
TEST_F(WebviewRuntimeTest, AKioskWithoutItsSandboxReportsWhyOnEveryAppInsteadOfCrashLooping) {
  ASSERT_TRUE(fs::exists("/usr/bin/setpriv"))
      << "setpriv (util-linux, Essential on Debian) is missing";
  const fs::path wrapper = tmp_->path() / "kiosk.sh";
  auto writeWrapper = [&](const std::string& prefix) {
    std::ofstream(wrapper, std::ios::trunc)
        << "#!/bin/sh\nexec " << prefix << FLEETLET_WEBVIEW_PATH << " \"$@\"\n";
    fs::permissions(wrapper, fs::perms::owner_all);
  };
  writeWrapper("setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin ");
  runtime_.reset();
  options_.binary = wrapper;
  runtime_ = std::make_unique<WebviewRuntime>(options_);
  apply({{"ui", bundleOf("ui", "rgb(255,0,0)")}});
  auto s = waitFor(
      "ui",
      [](const WebviewAppStatus& st) {
        return st.state == "backoff" && st.message.find("CAP_SYS_ADMIN") != std::string::npos;
      },
      30s);
  ASSERT_EQ(s.state, "backoff") << s.message;
  EXPECT_THAT(s.message, HasSubstr("WebKit's web process sandbox (bubblewrap, /usr/bin/bwrap) "
                                   "cannot be set up"));
  EXPECT_THAT(s.message, HasSubstr("Fix: give the kiosk CAP_SYS_ADMIN and CAP_NET_ADMIN"));
  std::this_thread::sleep_for(3s);  // no further exit meanwhile
  auto count = [&](const std::string& prefix) {
    auto all = events();
    return std::ranges::count_if(all, [&](const std::string& e) { return e.starts_with(prefix); });
  };
  EXPECT_EQ(count(" kiosk-exited exit code 3"), 1) << ::testing::PrintToString(events());
  EXPECT_EQ(count(" kiosk-started"), 2) << ::testing::PrintToString(events());
  EXPECT_EQ(count(" error the kiosk cannot show apps: WebKit's web process sandbox"), 1)
      << ::testing::PrintToString(events());
  EXPECT_EQ(runtime_->app("ui").value_or(WebviewAppStatus{}).state, "backoff");

  // The capability back (and the kiosk started again): the app runs, the reason is gone.
  writeWrapper("");
  auto kiosk = processesBelow(::getpid(), "fleetlet-webvie");
  ASSERT_EQ(kiosk.size(), 1u);
  ::kill(kiosk[0], SIGTERM);
  s = waitFor("ui", running, 30s);
  EXPECT_EQ(s.state, "running") << s.message;
  EXPECT_EQ(s.message, "");
  EXPECT_EQ(count(" recovered the kiosk shows apps again"), 1)
      << ::testing::PrintToString(events());
  EXPECT_EQ(screenColour(), (Rgb{255, 0, 0}));
}

}  // namespace
}  // namespace fleetlet::webview::testing
