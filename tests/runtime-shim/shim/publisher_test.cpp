#include "shim/publisher.h"

#include <gtest/gtest.h>

#include <mutex>

#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "shim/event_types.h"

namespace fleetlet::shim {
namespace {

using namespace std::chrono_literals;

// A containerd that is away for the first `failures` calls, then records what it gets.
struct FakeContainerd {
  std::mutex mu;
  int failures = 0;
  std::vector<containerd::services::events::ttrpc::v1::Envelope> received;

  ForwardFn forwarder() {
    return [this](const std::string& bytes) -> ttrpc::RpcResult<void> {
      std::lock_guard lock(mu);
      if (failures > 0) {
        --failures;
        return std::unexpected(ttrpc::RpcStatus{ttrpc::StatusCode::kUnavailable, "away"});
      }
      containerd::services::events::ttrpc::v1::ForwardRequest request;
      EXPECT_TRUE(request.ParseFromString(bytes));
      received.push_back(request.envelope());
      return {};
    };
  }
};

TEST(ShimPublisherTest, EventsArriveInOrderAfterContainerdComesBack) {
  FakeContainerd containerd;
  containerd.failures = 5;
  Publisher publisher("fleetlet", containerd.forwarder(), 1ms);
  containerd::events::TaskStart start;
  start.set_container_id("app");
  start.set_pid(42);
  containerd::events::TaskExit exit;
  exit.set_container_id("app");
  exit.set_exit_status(3);
  containerd::events::TaskDelete del;
  del.set_container_id("app");
  publisher.publish("/tasks/start", type_names::kTaskStart, start);
  publisher.publish("/tasks/exit", type_names::kTaskExit, exit);
  publisher.publish("/tasks/delete", type_names::kTaskDelete, del);
  ASSERT_TRUE(publisher.drain(30s));

  std::lock_guard lock(containerd.mu);
  ASSERT_EQ(containerd.received.size(), 3u);
  EXPECT_EQ(containerd.received[0].topic(), "/tasks/start");
  EXPECT_EQ(containerd.received[1].topic(), "/tasks/exit");
  EXPECT_EQ(containerd.received[2].topic(), "/tasks/delete");
  for (const auto& e : containerd.received) {
    EXPECT_EQ(e.namespace_(), "fleetlet");
    EXPECT_GT(e.timestamp().seconds(), 0);
  }
  // typeurl names gogo types by their bare proto name.
  EXPECT_EQ(containerd.received[1].event().type_url(), "containerd.events.TaskExit");
  containerd::events::TaskExit decoded;
  ASSERT_TRUE(decoded.ParseFromString(containerd.received[1].event().value()));
  EXPECT_EQ(decoded.exit_status(), 3u);
}

TEST(ShimPublisherTest, SpelledOutTypeNamesAreTheProtoNames) {
  EXPECT_EQ(type_names::kTaskCreate, containerd::events::TaskCreate::descriptor()->full_name());
  EXPECT_EQ(type_names::kTaskStart, containerd::events::TaskStart::descriptor()->full_name());
  EXPECT_EQ(type_names::kTaskExit, containerd::events::TaskExit::descriptor()->full_name());
  EXPECT_EQ(type_names::kTaskDelete, containerd::events::TaskDelete::descriptor()->full_name());
  EXPECT_EQ(type_names::kTaskOom, containerd::events::TaskOOM::descriptor()->full_name());
  EXPECT_EQ(type_names::kCgroupsV1Metrics,
            io::containerd::cgroups::v1::Metrics::descriptor()->full_name());
}

TEST(ShimPublisherTest, AFullQueueDropsTheOldestEvents) {
  FakeContainerd containerd;
  containerd.failures = 1 << 30;  // away for good
  Publisher publisher("fleetlet", containerd.forwarder(), 1ms);
  containerd::events::TaskOOM oom;
  for (std::size_t i = 0; i < Publisher::kMaxQueued + 10; ++i) {
    oom.set_container_id("app" + std::to_string(i));
    publisher.publish("/tasks/oom", type_names::kTaskOom, oom);
  }
  EXPECT_FALSE(publisher.drain(10ms));
  {
    std::lock_guard lock(containerd.mu);
    containerd.failures = 0;
  }
  ASSERT_TRUE(publisher.drain(30s));
  std::lock_guard lock(containerd.mu);
  ASSERT_LE(containerd.received.size(), Publisher::kMaxQueued + 1);
  containerd::events::TaskOOM last;
  ASSERT_TRUE(last.ParseFromString(containerd.received.back().event().value()));
  EXPECT_EQ(last.container_id(), "app" + std::to_string(Publisher::kMaxQueued + 9));
}

}  // namespace
}  // namespace fleetlet::shim
