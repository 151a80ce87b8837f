// Socket handoff end to end (root): listeners created inside two network namespaces made by
// this test are handed to fleetlet-streams over its --handoff-socket; what each app publishes
// and logs through them carries that app, host clients' events carry none, and a removed app
// is no longer served.
#include <gtest/gtest.h>
#include <unistd.h>

#include "handoff/netns_listener.h"
#include "handoff/sender.h"
#include "os/child_process.h"
#include "service/service.h"
#include "support/require_root.h"
#include "support/temp_dir.h"
#include "test_client.h"

namespace fleetlet::streams {
namespace {

using testing::kPatience;
using testing::TestClient;
using namespace std::chrono_literals;

// A network namespace made with `ip netns add`, deleted by the destructor.
class ScopedNetns {
 public:
  explicit ScopedNetns(std::string suffix)
      : name_(fmt::format("fleetlet-streams-{}-{}", ::getpid(), suffix)) {
    auto out = runCommand({"ip", "netns", "add", name_});
    created_ = out && out->status.success();
  }
  ~ScopedNetns() {
    if (created_) (void)runCommand({"ip", "netns", "del", name_});
  }
  bool ok() const { return created_; }
  std::filesystem::path path() const { return "/var/run/netns/" + name_; }

 private:
  std::string name_;
  bool created_ = false;
};

template <typename Predicate>
bool eventually(Predicate done) {
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST(StreamsHandoff, AppsGetTheirIdentityFromHandedOverListeners) {
  if (!fleetlet::testing::isRoot()) GTEST_SKIP() << "needs root (ip netns, setns)";
  auto dir = fleetlet::testing::TempDir::create("streams-handoff");
  ASSERT_TRUE(dir);
  ServiceOptions options;
  options.data_dir = dir->path() / "data";
  options.events_port = 0;
  options.console_port = 0;
  options.source_id = "node-h";
  options.handoff_socket = dir->path() / "handoff.sock";
  auto service = Service::start(options);
  ASSERT_TRUE(service) << service.error().message();

  ScopedNetns camera_ns("cam"), dashboard_ns("dash");
  ASSERT_TRUE(camera_ns.ok() && dashboard_ns.ok()) << "ip netns add failed";
  handoff::HandoffSender sender;
  ASSERT_TRUE(sender.connect(options.handoff_socket));
  for (auto [app, ns] : {std::pair{"camera", &camera_ns}, std::pair{"dashboard", &dashboard_ns}}) {
    // The well-known ports: each namespace has its own 127.0.0.1.
    auto events = handoff::listenInNetns(ns->path(), "127.0.0.1", 4454);
    auto console = handoff::listenInNetns(ns->path(), "127.0.0.1", 4457);
    ASSERT_TRUE(events && console);
    ASSERT_TRUE(sender.add(app, "events", std::move(*events)));
    ASSERT_TRUE(sender.add(app, "console", std::move(*console)));
  }
  ASSERT_TRUE(eventually([&] {
    return (*service)->eventsServer().listeners().size() == 3 &&
           (*service)->consoleServer().listeners().size() == 3;
  }));

  // Each app talks to localhost:4454/4457 inside its own namespace.
  auto publishFrom = [](const ScopedNetns& ns, const std::string& message) {
    int status = 0, log_status = 0;
    auto run = handoff::runInNetns(ns.path(), [&] {
      status = static_cast<int>(TestClient(4454).publish("s", "n", 1, {{"m", message}}).status);
      log_status = static_cast<int>(
          TestClient(4457)
              .post("/api/v1/logs", R"({"logName":"app","message":")" + message + R"("})")
              .status);
    });
    EXPECT_TRUE(run);
    EXPECT_EQ(status, 201);
    EXPECT_EQ(log_status, 201);
  };
  publishFrom(camera_ns, "from camera");
  publishFrom(dashboard_ns, "from dashboard");
  TestClient host((*service)->eventsListener().port);
  ASSERT_EQ(host.publish("s", "n", 1, {{"m", "from host"}}).status, 201);

  auto lines = host.post("/api/v1/events/query",
                         R"({"subscriptions":[{}],"order":"lamport","upperBound":{"node-h":2}})")
                   .lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].value("sourceApp", ""), "camera");
  EXPECT_EQ(lines[0]["payload"]["m"], "from camera");
  EXPECT_EQ(lines[1].value("sourceApp", ""), "dashboard");
  EXPECT_FALSE(lines[2].contains("sourceApp"));

  TestClient console((*service)->consoleListener().port);
  auto logs = console.get("/api/v1/logs?app=camera").lines();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0]["message"], "from camera");
  EXPECT_EQ(console.get("/api/v1/logs?app=dashboard").lines().at(0)["app"], "dashboard");

  // Removing an app closes its listeners: the camera is no longer served, the dashboard is.
  ASSERT_TRUE(sender.remove("camera"));
  ASSERT_TRUE(eventually([&] { return (*service)->eventsServer().listeners().size() == 2; }));
  int camera_status = -1;
  (void)handoff::runInNetns(camera_ns.path(), [&] {
    camera_status = static_cast<int>(TestClient(4454).get("/api/v1/events/offsets").status);
  });
  EXPECT_EQ(camera_status, 0);  // connection refused
  publishFrom(dashboard_ns, "still here");
}

}  // namespace
}  // namespace fleetlet::streams
