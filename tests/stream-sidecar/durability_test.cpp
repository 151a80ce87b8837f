// Durability against the real binary: kill -9 during a concurrent publish load, restart, and
// every acknowledged event is there with its payload; offsets have no gap.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "service_process.h"
#include "support/temp_dir.h"
#include "test_client.h"

namespace fleetlet::streams {
namespace {

using testing::kPatience;
using testing::TestClient;
using namespace std::chrono_literals;

using testing::ServiceProcess;
using testing::startServiceProcess;

TEST(StreamsDurability, KillNineLosesNoAcknowledgedEvent) {
  auto dir = fleetlet::testing::TempDir::create("streams-durability");
  ASSERT_TRUE(dir);
  auto started = startServiceProcess(dir->path(), 1);
  if (!started) FAIL() << "fleetlet-streams did not start";
  ServiceProcess& first = *started;
  ASSERT_NE(first.port, 0);

  // offset -> payload of every acknowledged event.
  std::mutex mutex;
  std::map<std::int64_t, Json> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> acks{0};
  std::vector<std::thread> publishers;
  publishers.reserve(8);
  for (int t = 0; t < 8; ++t) {
    publishers.emplace_back([&, t] {
      TestClient client(first.port);
      for (int i = 0; !stop; ++i) {
        Json payload = {{"publisher", t}, {"i", i}};
        int count = 1 + i % 3;
        auto reply = client.publish("load", "n", count, payload);
        if (reply.status != 201) break;  // killed
        auto data = reply.json()["data"];
        std::lock_guard lock(mutex);
        for (const auto& receipt : data) acked[receipt["offset"].get<std::int64_t>()] = payload;
        acks += 1;
      }
    });
  }
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (acks < 2000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(first.process.signal(SIGKILL));
  stop = true;
  for (auto& p : publishers) p.join();
  (void)first.process.wait();
  ASSERT_GE(acks.load(), 2000);

  auto restarted = startServiceProcess(dir->path(), 2);
  if (!restarted) FAIL() << "fleetlet-streams did not restart";
  ServiceProcess& second = *restarted;
  ASSERT_NE(second.port, 0);
  TestClient client(second.port);
  auto offsets = client.get("/api/v1/events/offsets").json();
  ASSERT_TRUE(offsets.contains("node-d")) << offsets.dump();
  std::int64_t highest = offsets["node-d"].get<std::int64_t>();
  EXPECT_GE(highest, acked.rbegin()->first);
  auto lines = client
                   .post("/api/v1/events/query", Json{{"subscriptions", {Json::object()}},
                                                      {"order", "source-ordered"},
                                                      {"upperBound", offsets}}
                                                     .dump())
                   .lines();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(highest + 1));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(lines[i]["offset"], i) << "gap before offset " << i;
  }
  for (const auto& [offset, payload] : acked) {
    EXPECT_EQ(lines[static_cast<std::size_t>(offset)]["payload"], payload) << offset;
  }
  // The restarted service keeps counting without a gap.
  auto next = client.publish("load", "n", 1).json()["data"][0];
  EXPECT_EQ(next["offset"], highest + 1);
}

}  // namespace
}  // namespace fleetlet::streams
