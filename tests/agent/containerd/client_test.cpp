// The typed containerd client against a private containerd: containers and tasks run through
// it behave as containerd says, and events keep flowing across a containerd restart.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "containerd/containers.h"
#include "containerd/events.h"
#include "containerd/tasks.h"
#include "support/local_registry.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/shared_images.h"
#include "support/system_state.h"
#include "support/test_containers.h"
#include "support/test_images.h"

namespace fleetlet::containerd {
namespace {

using testing::LocalRegistry;
using testing::PrivateContainerd;
using testing::TestImages;

constexpr char kNs[] = "fleetlet";

std::string readFile(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    auto shared = testing::SharedImages::get({.include_big = false});
    ASSERT_TRUE(shared) << shared.error().message();
    registry_ = &(*shared)->registry();
    images_ = &(*shared)->images();
    auto ctrd = PrivateContainerd::start();
    ASSERT_TRUE(ctrd) << ctrd.error().message();
    containerd_.emplace(std::move(*ctrd));
    auto containers = testing::TestContainers::prepare(*containerd_, kNs, images_->busybox());
    ASSERT_TRUE(containers) << containers.error().message();
    containers_.emplace(std::move(*containers));
    conn_ = containers_->connection();
  }

  // Creates a container running `args`, labelled fleetlet.io/app=test.
  std::string createContainer(const std::vector<std::string>& args) {
    auto id = containers_->create("client", args, "test");
    EXPECT_TRUE(id) << id.error().message();
    return id.value_or("");
  }

  std::filesystem::path ioDir(const std::string& id) { return containerd_->dir() / ("io-" + id); }

  Result<uint32_t> createTask(const std::string& id) {
    std::filesystem::create_directories(ioDir(id));
    FLEETLET_ASSIGN_OR_RETURN(auto io,
                              fileIo((ioDir(id) / "out").string(), (ioDir(id) / "err").string()));
    return containers_->createTask(id, io);
  }

  void destroy(const std::string& id) {
    auto st = containers_->destroy(id);
    EXPECT_TRUE(st) << st.error().message();
  }

  const LocalRegistry* registry_ = nullptr;
  const TestImages* images_ = nullptr;
  std::optional<PrivateContainerd> containerd_;
  std::shared_ptr<Connection> conn_;
  std::optional<testing::TestContainers> containers_;
};

TEST_F(ClientTest, TaskYieldsStdoutStderrAndExitCode) {
  std::string id = createContainer({"sh", "-c", "echo out; echo err >&2; exit 7"});
  TaskService tasks(conn_, {kNs, {}});
  auto task = createTask(id);
  ASSERT_TRUE(task) << task.error().message();
  // Wait is issued before start, on its own thread, so the exit cannot be missed.
  auto waited = std::async(std::launch::async, [&] { return tasks.wait(id); });
  auto pid = tasks.start(id);
  ASSERT_TRUE(pid) << pid.error().message();
  EXPECT_GT(*pid, 0u);
  auto exit = waited.get();
  ASSERT_TRUE(exit) << exit.error().message();
  EXPECT_EQ(exit->exit_status, 7u);
  auto info = tasks.get(id);
  ASSERT_TRUE(info && *info);
  EXPECT_EQ((*info)->state, TaskInfo::State::kStopped);
  auto deleted = tasks.remove(id);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->exit_status, 7u);
  EXPECT_EQ(readFile(ioDir(id) / "out"), "out\n");
  EXPECT_EQ(readFile(ioDir(id) / "err"), "err\n");

  auto listed = ContainerService(conn_, {kNs, {}}).list({"labels.\"fleetlet.io/app\"==test"});
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, id);
  destroy(id);
  EXPECT_EQ(containerd_->ctrOk({"containers", "ls", "-q"}).value_or("?"), "");
  EXPECT_FALSE(tasks.get(id).value().has_value());
}

TEST_F(ClientTest, KillStopsARunningTask) {
  std::string id = createContainer({"sleep", "300"});
  TaskService tasks(conn_, {kNs, {}});
  auto task = createTask(id);
  ASSERT_TRUE(task) << task.error().message();
  ASSERT_TRUE(tasks.start(id));
  auto waited = std::async(std::launch::async, [&] { return tasks.wait(id); });
  auto info = tasks.get(id);
  ASSERT_TRUE(info && *info);
  EXPECT_EQ((*info)->state, TaskInfo::State::kRunning);
  ASSERT_TRUE(tasks.kill(id, SIGKILL));
  auto exit = waited.get();
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_status, 128u + SIGKILL);
  destroy(id);
}

TEST_F(ClientTest, ErrorsAreTypedValues) {
  TaskService tasks(conn_, {kNs, {}});
  auto missing = tasks.start("no-such-container");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("tasks.start no-such-container"), std::string::npos);
  std::string id = createContainer({"true"});
  auto dup = ContainerService(conn_, {kNs, {}}).create({.id = id, .spec_json = "{}"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  destroy(id);
}

TEST_F(ClientTest, EventsSurviveContainerdRestart) {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, uint32_t> exits;
  auto sub = EventSubscription::start(
      conn_, {std::string("namespace==") + kNs + ",topic==\"/tasks/exit\""},
      {.on_event = [&](const Event& e) {
        std::lock_guard lock(mu);
        if (e.exit_status) exits[e.subject] = *e.exit_status;
        cv.notify_all();
      }});
  ASSERT_TRUE(sub->waitSubscribed(1, std::chrono::seconds(10)));
  TaskService tasks(conn_, {kNs, {}});

  // Runs short tasks until one's exit event arrives (a subscription that was just
  // re-established may miss the very first); returns whether one arrived.
  auto observeAnExit = [&](uint32_t code) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      std::string id = createContainer({"sh", "-c", "exit " + std::to_string(code)});
      auto task = createTask(id);
      EXPECT_TRUE(task) << task.error().message();
      auto started = tasks.start(id);
      EXPECT_TRUE(started) << started.error().message();
      std::unique_lock lock(mu);
      bool seen = cv.wait_for(lock, std::chrono::seconds(2), [&] { return exits.contains(id); });
      lock.unlock();
      (void)tasks.wait(id);
      destroy(id);
      if (seen) {
        EXPECT_EQ(exits[id], code);
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(observeAnExit(3));

  auto restarted = containerd_->restart();
  ASSERT_TRUE(restarted) << restarted.error().message();
  ASSERT_TRUE(sub->waitSubscribed(2, std::chrono::seconds(15)))
      << "the subscription was not re-established after containerd restarted";
  EXPECT_TRUE(observeAnExit(4)) << "no event after containerd restarted";
}

TEST_F(ClientTest, ShutdownEndsCallsWaitingForAnUnreachableContainerd) {
  containerd_->stopDaemon();
  // A call issued while the channel still believes containerd is there fails at once (broken
  // pipe); one issued after the channel noticed waits for containerd to come back.
  ASSERT_TRUE(
      testing::waitFor([&] { return conn_->channel()->GetState(false) != GRPC_CHANNEL_READY; },
                       std::chrono::seconds(10)));
  ContainerService containers(conn_, {kNs, {}});
  auto waiting = std::async(std::launch::async, [&] { return containers.list(); });
  // The call waits for containerd to come back (up to its 60 s deadline)...
  if (waiting.wait_for(std::chrono::seconds(1)) == std::future_status::ready) {
    auto early = waiting.get();
    FAIL() << "a call to a stopped containerd should wait for it, not fail at once: "
           << (early ? "succeeded" : early.error().message());
  }
  // ...until the connection is shut down.
  conn_->shutdown();
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "shutdown() did not end the waiting call";
  auto result = waiting.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable) << result.error().message();

  // Shutdown is final: with containerd back, calls on this connection still fail at once.
  ASSERT_TRUE(containerd_->startDaemon());
  auto later = containers.list();
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code(), ErrorCode::kUnavailable);
  // A new connection works.
  auto fresh = Connection::connect(containerd_->socket().string(), std::chrono::seconds(10));
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_TRUE(ContainerService(*fresh, {kNs, {}}).list()) << "a fresh connection should work";
}

}  // namespace
}  // namespace fleetlet::containerd
