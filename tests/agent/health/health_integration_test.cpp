// ContainerProber and HealthMonitor against real containers on a private containerd: a
// busybox httpd in its own network namespace, probed over http and tcp from inside that
// namespace and with exec through containerd.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "containerd/tasks.h"
#include "health/clock.h"
#include "health/container_prober.h"
#include "health/health_monitor.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/system_state.h"
#include "support/test_containers.h"
#include "support/test_images.h"

namespace fleetlet::health {
namespace {

using containerd::TaskService;
using Kind = manifest::HealthCheck::Kind;
using std::chrono::milliseconds;
using testing::LocalRegistry;
using testing::PrivateContainerd;
using testing::TestImages;

constexpr char kNs[] = "fleetlet";

// One registry, containerd and pulled image per binary; each test runs its own containers.
class HealthIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::isRoot()) return;
    auto registry = LocalRegistry::start();
    ASSERT_TRUE(registry) << registry.error().message();
    registry_.emplace(std::move(*registry));
    auto images = TestImages::push(*registry_, {.include_big = false});
    ASSERT_TRUE(images) << images.error().message();
    images_.emplace(std::move(*images));
    auto ctrd = PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    auto containers = testing::TestContainers::prepare(*containerd_, kNs, images_->busybox());
    ASSERT_TRUE(containers) << containers.error().message();
    containers_.emplace(std::move(*containers));
    conn_ = containers_->connection();
  }
  static void TearDownTestSuite() {
    containers_.reset();
    conn_.reset();
    containerd_.reset();
    images_.reset();
    registry_.reset();
  }

  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    ASSERT_TRUE(conn_) << "suite setup failed";
  }
  void TearDown() override {
    for (const auto& id : ids_) {
      auto st = containers_->destroy(id);
      EXPECT_TRUE(st) << st.error().message();
    }
  }

  // Runs `args` in a new container (own network namespace, stdio to files); returns its id
  // and task pid.
  std::pair<std::string, uint32_t> run(const std::vector<std::string>& args) {
    auto created = containers_->create("health", args, "health-test",
                                       [](Json& spec) { spec["process"]["cwd"] = "/srv/app"; });
    EXPECT_TRUE(created) << created.error().message();
    std::string id = created.value_or("");
    ids_.push_back(id);
    auto io_dir = containerd_->dir() / ("io-" + id);
    std::filesystem::create_directories(io_dir);
    auto io = containerd::fileIo((io_dir / "out").string(), (io_dir / "err").string());
    EXPECT_TRUE(io);
    auto task = containers_->createTask(id, *io);
    EXPECT_TRUE(task) << task.error().message();
    TaskService tasks(conn_, {kNs, {}});
    auto pid = tasks.start(id);
    EXPECT_TRUE(pid) << pid.error().message();
    return {id, pid.value_or(0)};
  }

  // A container serving /srv/app over http on :8080, once it answers.
  Target httpd(Kind kind, uint16_t port, std::string path = "/") {
    auto [id, pid] = run({"httpd", "-f", "-p", "8080", "-h", "/srv/app"});
    Target t{.app = "web", .container_id = id, .pid = pid};
    t.check.kind = kind;
    t.check.port = port;
    t.check.path = std::move(path);
    t.check.timeout = milliseconds(2000);
    Target ready = t;
    ready.check.kind = Kind::kTcp;
    ready.check.port = 8080;
    EXPECT_TRUE(testing::waitFor([&] { return prober_.probe(ready).has_value(); },
                                 std::chrono::seconds(10)))
        << "httpd never listened";
    return t;
  }

  static inline std::optional<LocalRegistry> registry_;
  static inline std::optional<TestImages> images_;
  static inline std::optional<PrivateContainerd> containerd_;
  static inline std::shared_ptr<containerd::Connection> conn_;
  static inline std::optional<testing::TestContainers> containers_;

  ContainerProber prober_{conn_, kNs};
  std::vector<std::string> ids_;  // containers this test made
};

TEST_F(HealthIntegrationTest, HttpProbeIsHealthyForAServedPathAndNamesA404) {
  Target t = httpd(Kind::kHttp, 8080, "/hello.txt");
  auto ok = prober_.probe(t);
  EXPECT_TRUE(ok) << ok.error().message();
  t.check.path = "/missing.txt";
  auto missing = prober_.probe(t);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(missing.error().message(), "http 404 from :8080/missing.txt");
}

TEST_F(HealthIntegrationTest, ProbesReachOnlyTheTargetsNamespace) {
  // The same port in another container's namespace has no listener.
  Target t = httpd(Kind::kTcp, 8080);
  auto [other_id, other_pid] = run({"sleep", "300"});
  Target other = t;
  other.container_id = other_id;
  other.pid = other_pid;
  EXPECT_TRUE(prober_.probe(t));
  auto refused = prober_.probe(other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), "connect :8080: Connection refused");
}

TEST_F(HealthIntegrationTest, TcpProbeOnOpenAndClosedPorts) {
  Target t = httpd(Kind::kTcp, 8080);
  auto open = prober_.probe(t);
  EXPECT_TRUE(open) << open.error().message();
  t.check.port = 8081;
  auto closed = prober_.probe(t);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().message(), "connect :8081: Connection refused");
}

TEST_F(HealthIntegrationTest, HttpProbeFailsOnceTheTaskIsKilled) {
  Target t = httpd(Kind::kHttp, 8080, "/hello.txt");
  ASSERT_TRUE(prober_.probe(t));
  TaskService tasks(conn_, {kNs, {}});
  auto waited = std::async(std::launch::async, [&] { return tasks.wait(t.container_id); });
  ASSERT_TRUE(tasks.kill(t.container_id, SIGKILL));
  ASSERT_TRUE(waited.get());
  auto gone = prober_.probe(t);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(gone.error().message().find("http :8080/hello.txt: "), std::string::npos)
      << gone.error().message();
}

TEST_F(HealthIntegrationTest, ExecProbeSucceedsOnExitZeroAndNamesOtherExits) {
  Target t = httpd(Kind::kExec, 0);
  t.check.command = {"cat", "/srv/app/hello.txt"};
  auto ok = prober_.probe(t);
  EXPECT_TRUE(ok) << ok.error().message();
  t.check.command = {"false"};
  auto bad = prober_.probe(t);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "exec exited 1");
  // The last line of the command's output says why.
  t.check.command = {"sh", "-c", "echo starting >&2; echo not ready yet >&2; exit 3"};
  auto said = prober_.probe(t);
  ASSERT_FALSE(said);
  EXPECT_EQ(said.error().message(), "exec exited 3: not ready yet");
  // Runs with the container's process spec: its cwd and PATH.
  t.check.command = {"sh", "-c", "test \"$(pwd)\" = /srv/app && test -f hello.txt"};
  auto cwd = prober_.probe(t);
  EXPECT_TRUE(cwd) << cwd.error().message();
  t.check.command = {"no-such-command"};
  auto missing = prober_.probe(t);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("exec"), std::string::npos);
}

TEST_F(HealthIntegrationTest, ExecProbeKillsACommandThatOverrunsItsTimeout) {
  Target t = httpd(Kind::kExec, 0);
  t.check.command = {"sh", "-c", "touch /tmp/slow-started; exec sleep 30"};
  t.check.timeout = milliseconds(500);
  auto slow = prober_.probe(t);
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().message(), "exec did not exit within 500ms (killed)");
  // Nothing of it is left running in the container (the kill may take a moment to be
  // reaped on a loaded machine), and its exec id is free again.
  std::string ps_out;
  EXPECT_TRUE(testing::waitFor(
      [&] {
        auto ps = containerd_->ctrOk({"tasks", "ps", t.container_id});
        ps_out = ps.value_or("");
        return ps && std::count(ps->begin(), ps->end(), '\n') == 2;  // header + httpd
      },
      std::chrono::seconds(10)))
      << ps_out;
  t.check.command = {"true"};
  t.check.timeout = milliseconds(2000);
  auto again = prober_.probe(t);
  EXPECT_TRUE(again) << again.error().message();
}

// The monitor with the real prober and clock: a missing path is reported after `failures`
// probes, once; a restart onto a served path recovers.
TEST_F(HealthIntegrationTest, MonitorReportsAnUnhealthyApp) {
  Target t = httpd(Kind::kHttp, 8080, "/missing.txt");
  t.check.interval = milliseconds(100);
  t.check.failures = 2;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;
  SteadyClock clock;
  HealthMonitor monitor(prober_, clock,
                        {.on_unhealthy =
                             [&](const std::string& app, const Error& e) {
                               std::lock_guard lock(mu);
                               events.push_back("unhealthy " + app + ": " + e.message());
                               cv.notify_all();
                             },
                         .on_healthy = [&](const std::string&) {}},
                        {.probe_threads = 2});
  monitor.setTargets({t});
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return !events.empty(); }));
  EXPECT_EQ(events.front(), "unhealthy web: http 404 from :8080/missing.txt");
  lock.unlock();
  monitor.stop();
  auto state = monitor.snapshot();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_GE(state[0].probes, 2u);
}

}  // namespace
}  // namespace fleetlet::health
