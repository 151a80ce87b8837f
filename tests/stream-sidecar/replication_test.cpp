// Site replication against real processes: a nats-server hub started by hack/site-hub.sh (per
// node credentials) and several fleetlet-streams binaries on loopback, each its own source.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "os/child_process.h"
#include "service_process.h"
#include "support/temp_dir.h"
#include "test_client.h"

namespace fleetlet::streams {
namespace {

using testing::kPatience;
using testing::ServiceProcess;
using testing::startServiceProcess;
using testing::TestClient;
using namespace std::chrono_literals;

constexpr const char* kSite = "t";

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Polls `done` until it holds or `limit` (default: the patience) runs out; returns whether it
// held.
bool eventually(const std::function<bool()>& done,
                std::chrono::steady_clock::duration limit = kPatience) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// The hub: hack/site-hub.sh in a directory of the test; stopped (only what it started) at the end.
class SiteHub {
 public:
  SiteHub(std::filesystem::path dir, const std::string& nodes, int servers = 1)
      : dir_(std::move(dir)) {
    run({"start", dir_.string(), "--site", kSite, "--nodes", nodes, "--servers",
         std::to_string(servers)});
    std::ifstream env(dir_ / "hub.env");
    std::string line;
    while (std::getline(env, line)) {
      if (line.rfind("NATS_URLS=", 0) == 0) urls_ = line.substr(10);
    }
  }
  ~SiteHub() { run({"stop", dir_.string()}); }
  SiteHub(const SiteHub&) = delete;
  SiteHub& operator=(const SiteHub&) = delete;

  void start() { run({"start", dir_.string()}); }
  void stop() { run({"stop", dir_.string()}); }
  // SIGKILL of server `n` (1..3) of a cluster.
  void kill(int n) { run({"kill", dir_.string(), "--server", std::to_string(n)}); }
  const std::string& urls() const { return urls_; }
  std::string password(const std::string& user) const {
    std::string text = readFile(dir_ / (user + ".password"));
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }
  // The flags that connect node `source` to this hub as user `user` (default: itself).
  std::vector<std::string> nodeArgs(const std::string& source, std::string user = "") const {
    if (user.empty()) user = source;
    return {"--nats",
            urls_,
            "--site",
            kSite,
            "--nats-user",
            user,
            "--nats-password-file",
            (dir_ / (user + ".password")).string(),
            "--stream-max-bytes",
            "67108864"};
  }

 private:
  void run(std::vector<std::string> args) {
    const char* source_dir = std::getenv("FLEETLET_SOURCE_DIR");
    ASSERT_NE(source_dir, nullptr) << "FLEETLET_SOURCE_DIR is not set (run through ctest)";
    args.insert(args.begin(), std::string(source_dir) + "/hack/site-hub.sh");
    auto out = runCommand({.argv = args, .timeout = 30s});
    ASSERT_TRUE(out) << out.error().message();
    ASSERT_TRUE(out->status.success()) << out->err << out->out;
  }

  std::filesystem::path dir_;
  std::string urls_;
};

// A NATS client of the test (user admin, or a node's user) for what no node would send.
class NatsClient {
 public:
  NatsClient(const SiteHub& hub, const std::string& user) {
    natsOptions* opts = nullptr;
    EXPECT_EQ(natsOptions_Create(&opts), NATS_OK);
    std::string password = hub.password(user);
    // Every server of the hub (nats.c takes one URL per entry).
    std::vector<std::string> urls;
    for (std::size_t start = 0; start <= hub.urls().size();) {
      auto comma = std::min(hub.urls().find(',', start), hub.urls().size());
      urls.push_back(hub.urls().substr(start, comma - start));
      start = comma + 1;
    }
    std::vector<const char*> servers;
    servers.reserve(urls.size());
    for (const auto& u : urls) servers.push_back(u.c_str());
    natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
    natsOptions_SetUserInfo(opts, user.c_str(), password.c_str());
    EXPECT_EQ(natsConnection_Connect(&nc_, opts), NATS_OK);
    natsOptions_Destroy(opts);
    EXPECT_EQ(natsConnection_JetStream(&js_, nc_, nullptr), NATS_OK);
  }
  ~NatsClient() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // Creates the stream of `source` as a node would.
  natsStatus addStream(const std::string& source) {
    std::string name = fmt::format("FL_{}_{}", kSite, source);
    std::string subject = fmt::format("fl.{}.src.{}", kSite, source);
    const char* subjects[] = {subject.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    return js_AddStream(nullptr, js_, &cfg, nullptr, nullptr);
  }
  natsStatus publish(const std::string& source, const std::string& body) {
    std::string subject = fmt::format("fl.{}.src.{}", kSite, source);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 2000;
    return js_Publish(nullptr, js_, subject.c_str(), body.data(), static_cast<int>(body.size()),
                      &po, nullptr);
  }
  std::uint64_t lastSeq(const std::string& source) {
    jsStreamInfo* info = nullptr;
    std::string name = fmt::format("FL_{}_{}", kSite, source);
    if (js_GetStreamInfo(&info, js_, name.c_str(), nullptr, nullptr) != NATS_OK) return 0;
    std::uint64_t last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    return last;
  }
  // What the hub holds for `source`'s stream: its config and state, nullptr when it has none.
  struct StreamInfoDeleter {
    void operator()(jsStreamInfo* info) const { jsStreamInfo_Destroy(info); }
  };
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> streamInfo(const std::string& source) {
    jsStreamInfo* info = nullptr;
    std::string name = fmt::format("FL_{}_{}", kSite, source);
    if (js_GetStreamInfo(&info, js_, name.c_str(), nullptr, nullptr) != NATS_OK) return nullptr;
    return std::unique_ptr<jsStreamInfo, StreamInfoDeleter>(info);
  }
  // The server name ("fl-<site>-N") leading `source`'s stream in a cluster; "" when unknown.
  std::string leader(const std::string& source) {
    jsStreamInfo* info = nullptr;
    std::string name = fmt::format("FL_{}_{}", kSite, source);
    if (js_GetStreamInfo(&info, js_, name.c_str(), nullptr, nullptr) != NATS_OK) return "";
    std::string leader =
        info->Cluster != nullptr && info->Cluster->Leader != nullptr ? info->Cluster->Leader : "";
    jsStreamInfo_Destroy(info);
    return leader;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

class ReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("streams-replication");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
  }

  std::filesystem::path path() const { return dir_ ? dir_->path() : std::filesystem::path(); }

  // Starts node `source` (data in <dir>/<data or source>) connected to `hub`.
  ServiceProcess& startNode(const SiteHub& hub, const std::string& source,
                            const std::vector<std::string>& extra = {},
                            const std::string& data = "") {
    auto args = hub.nodeArgs(source);
    args.insert(args.end(), extra.begin(), extra.end());
    auto node =
        startServiceProcess(path(), ++runs_, args, source, path() / (data.empty() ? source : data));
    if (!node) throw std::runtime_error("node " + source + " did not start");
    nodes_.push_back(std::make_unique<ServiceProcess>(std::move(*node)));
    EXPECT_NE(nodes_.back()->port, 0) << readFile(nodes_.back()->log);
    return *nodes_.back();
  }

  static Json offsets(const ServiceProcess& node) {
    return TestClient(node.port).get("/api/v1/events/offsets").json();
  }
  static Json status(const ServiceProcess& node) {
    return TestClient(node.port).get("/replication").json();
  }
  static bool hasOffset(const ServiceProcess& node, const std::string& source,
                        std::int64_t offset) {
    auto o = offsets(node);
    return o.contains(source) && o[source].get<std::int64_t>() >= offset;
  }
  // Every event of the node in source order.
  static std::vector<Json> all(const ServiceProcess& node) {
    return TestClient(node.port)
        .post("/api/v1/events/query", Json{{"subscriptions", {Json::object()}},
                                           {"order", "source-ordered"},
                                           {"upperBound", offsets(node)}}
                                          .dump())
        .lines();
  }
  // Asserts that `events` of `source` are offsets 0..count-1, each once, in order.
  static void expectGapless(const std::vector<Json>& events, const std::string& source,
                            std::int64_t count) {
    std::int64_t next = 0;
    for (const auto& e : events) {
      if (e["stream"]["source"] != source) continue;
      ASSERT_EQ(e["offset"].get<std::int64_t>(), next) << source << ": gap or duplicate";
      ++next;
    }
    EXPECT_EQ(next, count) << source;
  }

  std::optional<fleetlet::testing::TempDir> dir_;
  std::vector<std::unique_ptr<ServiceProcess>> nodes_;
  int runs_ = 0;
};

// A subscription to `source`'s events on `node`, collecting every line on its own thread until
// the stream stayed silent for 2 s (so a late duplicate is among the lines).
std::future<std::vector<Json>> subscribeUntilQuiet(const ServiceProcess& node,
                                                   const std::string& source) {
  return std::async(std::launch::async, [port = node.port, source] {
    return TestClient(port).streamLinesUntilQuiet(
        "POST", "/api/v1/events/subscribe",
        Json{{"subscriptions", {Json{{"source", source}}}}}.dump(), 2s);
  });
}

TEST_F(ReplicationTest, EventOfOneNodeReachesSubscribersOnTheOthersOnceInOrder) {
  SiteHub hub(path() / "hub", "a,b,c");
  auto& a = startNode(hub, "a");
  auto& b = startNode(hub, "b");
  auto& c = startNode(hub, "c");
  ASSERT_TRUE(a.port && b.port && c.port);
  auto on_b = subscribeUntilQuiet(b, "a");
  auto on_c = subscribeUntilQuiet(c, "a");
  std::this_thread::sleep_for(200ms);  // let the subscriptions register (not required)
  TestClient client(a.port);
  std::vector<Json> receipts;
  for (int i = 0; i < 20; ++i) {
    auto reply = client.publish("sensor", "s1", 3, Json{{"i", i}});
    ASSERT_EQ(reply.status, 201) << reply.body;
    Json data = reply.json()["data"];
    for (const auto& r : data) receipts.push_back(r);
  }
  // Exactly once: read until the streams went quiet, nothing more than the 60 events came.
  for (auto* future : {&on_b, &on_c}) {
    auto lines = future->get();
    ASSERT_EQ(lines.size(), 60u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i]["stream"]["source"], "a");
      ASSERT_EQ(lines[i]["offset"], i);
      // Source, offset, lamport and timestamp are those given on A.
      EXPECT_EQ(lines[i]["lamport"], receipts[i]["lamport"]);
      EXPECT_EQ(lines[i]["timestamp"], receipts[i]["timestamp"]);
      EXPECT_EQ(lines[i]["payload"]["i"], static_cast<int>(i / 3));
    }
  }
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", 59); }));
  auto events = all(b);
  expectGapless(events, "a", 60);
  // Causality: B's next local event sorts after everything it has seen from A.
  auto reply = TestClient(b.port).publish("sensor", "s2", 1);
  ASSERT_EQ(reply.status, 201);
  EXPECT_GT(reply.json()["data"][0]["lamport"], receipts.back()["lamport"]);
  ASSERT_TRUE(eventually([&] { return hasOffset(c, "b", 0) && hasOffset(a, "b", 0); }));
  // The status endpoint shows the pump and each followed source.
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["published"] == 60; }));
  auto s = status(c);
  EXPECT_EQ(s["hub"]["connected"], true) << s.dump();
  EXPECT_EQ(s["sources"]["a"]["lag"], 0) << s.dump();
  EXPECT_EQ(s["sources"]["a"]["state"], "following") << s.dump();
  EXPECT_NE(TestClient(c.port)
                .get("/metrics")
                .body.find("fleetlet_streams_replication_source_lag{source=\"a\"} 0"),
            std::string::npos);
}

// The stream a node creates: file storage on its own subject, Discard=new and the limits of
// its flags. Once it is full the hub refuses more: the pump stops there and says why, nothing
// is dropped on the hub, and local publishing goes on.
TEST_F(ReplicationTest, CreatedStreamHasTheConfiguredLimitsAndAFullStreamStopsOnlyThePump) {
  SiteHub hub(path() / "hub", "a");
  auto& a = startNode(hub, "a", {"--stream-max-msgs", "5"});
  ASSERT_TRUE(a.port);
  NatsClient admin(hub, "admin");
  ASSERT_TRUE(eventually([&] { return admin.streamInfo("a") != nullptr; }));
  auto info = admin.streamInfo("a");
  ASSERT_NE(info, nullptr);
  const jsStreamConfig* config = info->Config;
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->Discard, js_DiscardNew);
  EXPECT_EQ(config->Storage, js_FileStorage);
  EXPECT_EQ(config->MaxMsgs, 5);
  EXPECT_EQ(config->MaxBytes, 67108864);  // --stream-max-bytes of SiteHub::nodeArgs
  ASSERT_EQ(config->SubjectsLen, 1);
  EXPECT_STREQ(config->Subjects[0], "fl.t.src.a");

  TestClient client(a.port);
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(client.publish("sensor", "s", 1, Json{{"i", i}}).status, 201);
  }
  EXPECT_EQ(offsets(a)["a"], 7);  // every local publish stored
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["errors"].get<std::uint64_t>() > 0; }))
      << status(a).dump();
  std::this_thread::sleep_for(1s);  // the pump retries; the hub still refuses
  auto s = status(a);
  EXPECT_EQ(s["pump"]["published"], 5) << s.dump();
  EXPECT_NE(s["pump"].value("lastError", "").find("maximum messages"), std::string::npos)
      << s.dump();
  EXPECT_EQ(admin.lastSeq("a"), 5u);
  EXPECT_EQ(offsets(a)["a"], 7);
}

TEST_F(ReplicationTest, HubDownWhileBothPublishThenConvergesGaplessWithoutDuplicates) {
  SiteHub hub(path() / "hub", "a,b");
  auto& a = startNode(hub, "a");
  auto& b = startNode(hub, "b");
  ASSERT_TRUE(a.port && b.port);
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 5).status, 201);
  ASSERT_EQ(TestClient(b.port).publish("x", "n", 5).status, 201);
  ASSERT_TRUE(eventually([&] { return hasOffset(a, "b", 4) && hasOffset(b, "a", 4); }));

  hub.stop();
  ASSERT_TRUE(eventually([&] { return status(a)["hub"]["connected"] == false; }));
  // Local publishing does not wait for the hub.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(TestClient(a.port).publish("x", "n", 2).status, 201);
    ASSERT_EQ(TestClient(b.port).publish("x", "n", 3).status, 201);
  }
  hub.start();
  ASSERT_TRUE(eventually([&] { return hasOffset(a, "b", 34) && hasOffset(b, "a", 24); }))
      << offsets(a).dump() << offsets(b).dump();
  auto on_a = all(a);
  auto on_b = all(b);
  expectGapless(on_a, "a", 25);
  expectGapless(on_a, "b", 35);
  expectGapless(on_b, "a", 25);
  expectGapless(on_b, "b", 35);
  EXPECT_EQ(on_a, on_b);  // the same events, lamports included
}

TEST_F(ReplicationTest, KillNineOfANodeMidIngestConverges) {
  SiteHub hub(path() / "hub", "a,b");
  auto& a = startNode(hub, "a");
  auto* b = &startNode(hub, "b");
  ASSERT_TRUE(a.port && b->port);
  constexpr int kBatches = 40;
  constexpr int kPerBatch = 100;
  auto publisher = std::async(std::launch::async, [&] {
    TestClient client(a.port);
    for (int i = 0; i < kBatches; ++i) {
      if (client.publish("load", "n", kPerBatch, Json{{"batch", i}}).status != 201) return false;
    }
    return true;
  });
  ASSERT_TRUE(eventually([&] { return hasOffset(*b, "a", 500); }));
  ASSERT_TRUE(b->process.signal(SIGKILL));
  (void)b->process.wait();
  ASSERT_TRUE(publisher.get());
  b = &startNode(hub, "b");
  ASSERT_NE(b->port, 0);
  constexpr std::int64_t kTotal = static_cast<std::int64_t>(kBatches) * kPerBatch;
  ASSERT_TRUE(eventually([&] { return hasOffset(*b, "a", kTotal - 1); })) << offsets(*b).dump();
  expectGapless(all(*b), "a", kTotal);
}

TEST_F(ReplicationTest, KillNineOfAHubServerMidBurstOnR3ConvergesGaplessWithoutDuplicates) {
  SiteHub hub(path() / "hub", "a,b", 3);
  auto& a = startNode(hub, "a", {"--stream-replicas", "3"});
  auto& b = startNode(hub, "b", {"--stream-replicas", "3"});
  ASSERT_TRUE(a.port && b.port);
  ASSERT_EQ(TestClient(b.port).publish("x", "n", 1).status, 201);
  ASSERT_TRUE(eventually([&] { return hasOffset(a, "b", 0); }));
  constexpr int kBatches = 50;
  constexpr int kPerBatch = 100;
  auto burst = [](std::uint16_t port, int batches, int per_batch) {
    return std::async(std::launch::async, [=] {
      TestClient client(port);
      for (int i = 0; i < batches; ++i) {
        if (client.publish("load", "n", per_batch, Json{{"batch", i}}).status != 201) return false;
      }
      return true;
    });
  };
  auto from_a = burst(a.port, kBatches, kPerBatch);
  auto from_b = burst(b.port, 20, 10);
  // Mid-burst: B has part of A's events; then the server leading A's stream dies.
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", 500); }));
  std::string leader;
  {
    NatsClient admin(hub, "admin");
    leader = admin.leader("a");
  }
  ASSERT_EQ(leader.rfind(fmt::format("fl-{}-", kSite), 0), 0u) << leader;
  const int victim = std::stoi(leader.substr(leader.rfind('-') + 1));
  hub.kill(victim);
  EXPECT_FALSE(hasOffset(b, "a", kBatches * kPerBatch - 1)) << "the burst ended before the kill";
  ASSERT_TRUE(from_a.get());
  ASSERT_TRUE(from_b.get());
  constexpr std::int64_t kFromA = std::int64_t{kBatches} * kPerBatch;
  constexpr std::int64_t kFromB = 1 + 20 * 10;
  // A new stream leader is elected and the pump re-reads the stream after its publishes time
  // out (seconds each on a loaded machine): more than the usual patience.
  ASSERT_TRUE(eventually(
      [&] { return hasOffset(b, "a", kFromA - 1) && hasOffset(a, "b", kFromB - 1); }, 120s))
      << offsets(a).dump() << offsets(b).dump() << status(a).dump() << status(b).dump();
  auto on_a = all(a);
  auto on_b = all(b);
  expectGapless(on_a, "a", kFromA);
  expectGapless(on_a, "b", kFromB);
  expectGapless(on_b, "a", kFromA);
  expectGapless(on_b, "b", kFromB);
  EXPECT_EQ(on_a, on_b);
  // The two remaining servers hold every event once: stream sequence = offset + 1.
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["published"] == kFromA; }))
      << status(a).dump();
  NatsClient admin(hub, "admin");
  EXPECT_EQ(admin.lastSeq("a"), static_cast<std::uint64_t>(kFromA));
  EXPECT_EQ(admin.lastSeq("b"), static_cast<std::uint64_t>(kFromB));
}

TEST_F(ReplicationTest, WipedNodeRestoresItsLogFromTheHubBeforePublishing) {
  SiteHub hub(path() / "hub", "a,b");
  auto* a = &startNode(hub, "a");
  auto& b = startNode(hub, "b");
  ASSERT_TRUE(a->port && b.port);
  ASSERT_EQ(TestClient(a->port).publish("x", "n", 30).status, 201);
  ASSERT_TRUE(eventually([&] { return status(*a)["pump"]["published"] == 30; }));
  auto before = all(*a);
  a->process.stop(SIGTERM, 5s);
  std::filesystem::remove_all(path() / "a");

  a = &startNode(hub, "a");
  ASSERT_NE(a->port, 0);
  // Restored before it listened: the first answer already has the whole log.
  EXPECT_EQ(offsets(*a)["a"], 29);
  EXPECT_EQ(all(*a), before);
  auto reply = TestClient(a->port).publish("x", "n", 1);
  ASSERT_EQ(reply.status, 201);
  EXPECT_EQ(reply.json()["data"][0]["offset"], 30);
  EXPECT_GT(reply.json()["data"][0]["lamport"], before.back()["lamport"]);
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", 30); }));
  expectGapless(all(b), "a", 31);
}

TEST_F(ReplicationTest, SecondNodeWithTheSameSourceIdIsRefused) {
  SiteHub hub(path() / "hub", "a");
  auto& a = startNode(hub, "a");
  ASSERT_NE(a.port, 0);
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 3).status, 201);
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["published"] == 3; }));

  auto clone = startServiceProcess(path(), ++runs_, hub.nodeArgs("a"), "a", path() / "clone");
  if (!clone) FAIL() << "the second node did not start at all";
  if (clone->port != 0) {
    clone->process.stop(SIGTERM, 5s);
    FAIL() << "the second node with source id 'a' is serving\n" << readFile(clone->log);
  }
  auto exit = clone->process.wait();
  EXPECT_EQ(exit.exit_code, 1) << exit.describe();
  EXPECT_NE(readFile(clone->log).find("source id 'a' is in use by another node"), std::string::npos)
      << readFile(clone->log);
  // The first node's stream is untouched and it keeps publishing.
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 1).status, 201);
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["published"] == 4; }));
  NatsClient admin(hub, "admin");
  EXPECT_EQ(admin.lastSeq("a"), 4u);
}

TEST_F(ReplicationTest, NodeThatLostItsLogWhileTheHubWasAwayReportsAConflictAndOverwritesNothing) {
  SiteHub hub(path() / "hub", "a");
  auto* a = &startNode(hub, "a");
  ASSERT_NE(a->port, 0);
  ASSERT_EQ(TestClient(a->port).publish("x", "n", 5).status, 201);
  ASSERT_TRUE(eventually([&] { return status(*a)["pump"]["published"] == 5; }));
  a->process.stop(SIGTERM, 5s);
  std::filesystem::remove_all(path() / "a");
  // Wiped, and the hub away at start-up: it serves, so it cannot restore first.
  hub.stop();
  a = &startNode(hub, "a", {"--hub-connect-timeout-ms", "300"});
  ASSERT_NE(a->port, 0);
  ASSERT_EQ(TestClient(a->port).publish("x", "n", 2).status, 201);
  hub.start();
  ASSERT_TRUE(eventually([&] { return status(*a)["pump"]["state"] == "conflict"; }))
      << status(*a).dump();
  EXPECT_NE(status(*a)["pump"]["lastError"].get<std::string>().find("holds 5 events"),
            std::string::npos)
      << status(*a).dump();
  NatsClient admin(hub, "admin");
  EXPECT_EQ(admin.lastSeq("a"), 5u);  // the hub's copy is not overwritten
}

// A hub that speaks only TLS (a certificate from a CA of the test) and checks passwords: nodes
// given the CA (--nats-tls-ca) and their password file replicate; a node without TLS never
// connects, serves anyway and receives nothing.
TEST_F(ReplicationTest, TlsHubWithPasswordsReplicatesAndANodeWithoutTlsStaysOut) {
  const auto dir = path() / "tls";
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  auto run = [](std::vector<std::string> argv) {
    auto out = runCommand({.argv = std::move(argv), .timeout = 60s});
    ASSERT_TRUE(out) << out.error().message();
    ASSERT_TRUE(out->status.success()) << out->err;
  };
  run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
       d + "/ca.pem", "-subj", "/CN=fleetlet test CA", "-days", "1"});
  run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/server.key", "-out",
       d + "/server.csr", "-subj", "/CN=127.0.0.1"});
  std::ofstream(dir / "san.ext") << "subjectAltName=IP:127.0.0.1\n";
  run({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey",
       d + "/ca.key", "-CAcreateserial", "-out", d + "/server.pem", "-days", "1", "-extfile",
       d + "/san.ext"});
  for (const char* user : {"a", "b", "c"}) {
    std::ofstream(dir / (std::string(user) + ".password")) << "pw-" << user << "\n";
  }
  std::ofstream(dir / "hub.conf") << "listen: 127.0.0.1:-1\nserver_name: tls-hub\n"
                                  << "jetstream { store_dir: \"" << d
                                  << "/js\", max_memory_store: 64MB, max_file_store: 1GB }\n"
                                  << "tls { cert_file: \"" << d << "/server.pem\", key_file: \""
                                  << d << "/server.key\", timeout: 2 }\n"
                                  << "accounts { SITE: { jetstream: enabled, users: [\n"
                                  << "  {user: a, password: pw-a}, {user: b, password: pw-b},\n"
                                  << "  {user: c, password: pw-c} ] } }\n";
  const std::string server =
      std::filesystem::exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
  auto hub = ChildProcess::spawn({.argv = {server, "-c", d + "/hub.conf"},
                                  .stdout_path = dir / "hub.log",
                                  .stderr_path = dir / "hub.log"});
  ASSERT_TRUE(hub) << hub.error().message();
  std::string port;
  ASSERT_TRUE(eventually([&] {
    std::string log = readFile(dir / "hub.log");
    const std::string key = "Listening for client connections on 127.0.0.1:";
    auto at = log.find(key);
    if (at == std::string::npos) return false;
    port = log.substr(at + key.size(),
                      log.find_first_not_of("0123456789", at + key.size()) - at - key.size());
    return !port.empty();
  })) << readFile(dir / "hub.log");
  auto nodeArgs = [&](const std::string& user, const std::string& scheme, bool ca) {
    std::vector<std::string> args = {"--nats",
                                     scheme + "://127.0.0.1:" + port,
                                     "--site",
                                     kSite,
                                     "--nats-user",
                                     user,
                                     "--nats-password-file",
                                     d + "/" + user + ".password",
                                     "--hub-connect-timeout-ms",
                                     "2000"};
    if (ca) {
      args.emplace_back("--nats-tls-ca");
      args.push_back(d + "/ca.pem");
    }
    return args;
  };
  auto start = [&](const std::string& source,
                   const std::vector<std::string>& args) -> ServiceProcess& {
    auto node = startServiceProcess(path(), ++runs_, args, source, path() / source);
    EXPECT_TRUE(node);
    nodes_.push_back(std::make_unique<ServiceProcess>(std::move(*node)));
    EXPECT_NE(nodes_.back()->port, 0) << readFile(nodes_.back()->log);
    return *nodes_.back();
  };
  auto& a = start("a", nodeArgs("a", "tls", true));
  auto& b = start("b", nodeArgs("b", "tls", true));
  auto& c = start("c", nodeArgs("c", "nats", false));
  ASSERT_TRUE(a.port && b.port && c.port);
  EXPECT_EQ(status(a)["hub"]["connected"], true) << status(a).dump();
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 3).status, 201);
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", 2); })) << status(b).dump();
  expectGapless(all(b), "a", 3);
  // Without TLS the hub refuses the connection: node c serves on its own.
  auto sc = status(c);
  EXPECT_EQ(sc["hub"]["connected"], false) << sc.dump();
  EXPECT_FALSE(offsets(c).contains("a")) << offsets(c).dump();
  ASSERT_EQ(TestClient(c.port).publish("x", "n", 1).status, 201);
  (void)hub->stop(SIGTERM, 5s);
}

TEST_F(ReplicationTest, HostileMessagesAreIgnoredCountedAndNeverStored) {
  SiteHub hub(path() / "hub", "a,b");
  auto& a = startNode(hub, "a", {"--replication-max-event-bytes", "4096"});
  auto& b = startNode(hub, "b", {"--replication-max-event-bytes", "4096"});
  ASSERT_TRUE(a.port && b.port);
  NatsClient admin(hub, "admin");
  for (const char* s : {"m1", "m2", "m3", "m4"}) ASSERT_EQ(admin.addStream(s), NATS_OK) << s;
  auto valid = [](const std::string& source, int offset) {
    return Json{{"stream", {{"semantics", "x"}, {"name", "n"}, {"source", source}}},
                {"timestamp", 1},
                {"lamport", 1000000},
                {"offset", offset},
                {"payload", Json::object()}}
        .dump();
  };
  EXPECT_EQ(admin.publish("m1", "{not json"), NATS_OK);
  EXPECT_EQ(admin.publish("m2", valid("m2", 5)), NATS_OK);
  EXPECT_EQ(admin.publish("m3", valid("m3", 0) + std::string(10000, ' ')), NATS_OK);
  EXPECT_EQ(admin.publish("m4", valid("a", 0)), NATS_OK);
  ASSERT_TRUE(eventually([&] {
    auto r = status(b)["rejected"];
    return r["bad_json"] == 1 && r["wrong_offset"] == 1 && r["too_large"] == 1 &&
           r["wrong_source"] == 1;
  })) << status(b).dump();
  // A node's credentials publish only to its own subject.
  {
    NatsClient as_a(hub, "a");
    EXPECT_NE(as_a.publish("b", valid("b", 0)), NATS_OK);
    EXPECT_EQ(admin.lastSeq("b"), 0u);
  }
  // Nothing of it is stored, the lamport clock did not jump, and real events still flow.
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 1).status, 201);
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", 0); }));
  auto o = offsets(b);
  for (const char* s : {"m1", "m2", "m3", "m4"}) EXPECT_FALSE(o.contains(s)) << o.dump();
  auto reply = TestClient(b.port).publish("x", "n", 1);
  EXPECT_LT(reply.json()["data"][0]["lamport"], 1000000);
  auto s = status(b);
  EXPECT_EQ(s["sources"]["m2"]["state"], "blocked") << s.dump();
  EXPECT_EQ(readFile(b.log).find("offset 5 at stream sequence 1") != std::string::npos, true);
}

// A message another client (here admin) wrote into a live node's stream, between that node's
// own events: the followers store nothing of it and stop that source there; the owner's pump
// finds out at its next publish (the expected sequence fails and the stream's last message is
// not its event) and reports a conflict instead of publishing after it. Local publishing goes
// on.
TEST_F(ReplicationTest, ForeignMessageInANodesOwnStreamBlocksThatSourceAndItsPumpReportsAConflict) {
  SiteHub hub(path() / "hub", "a,b");
  auto& a = startNode(hub, "a");
  auto& b = startNode(hub, "b");
  ASSERT_TRUE(a.port && b.port);
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 3).status, 201);
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", 2); })) << offsets(b).dump();
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["published"] == 3; })) << status(a).dump();
  NatsClient admin(hub, "admin");
  ASSERT_EQ(admin.publish("a", "{not an event"), NATS_OK);
  ASSERT_EQ(admin.lastSeq("a"), 4u);
  ASSERT_TRUE(eventually([&] { return status(b)["rejected"]["bad_json"] == 1; }))
      << status(b).dump();

  // Two events in one commit: the pump publishes them in one round, both in flight. The
  // first fails on its expected sequence; the second's expectation (4) can match again, one
  // message further on, and be accepted behind the foreign one — which must still be found.
  ASSERT_EQ(TestClient(a.port).publish("x", "n", 2).status, 201);
  ASSERT_TRUE(eventually([&] { return status(a)["pump"]["state"] == "conflict"; }))
      << status(a).dump();
  auto pump = status(a)["pump"];
  EXPECT_NE(pump.value("lastError", "")
                .find("message 4 of stream FL_t_a is not this node's event at offset 3"),
            std::string::npos)
      << pump.dump();
  const auto at_conflict = admin.lastSeq("a");  // 5 when the second publish got in
  EXPECT_TRUE(at_conflict == 4u || at_conflict == 5u) << at_conflict;
  std::this_thread::sleep_for(1500ms);  // a resync round later: nothing more published
  EXPECT_EQ(admin.lastSeq("a"), at_conflict);
  EXPECT_EQ(status(a)["pump"]["state"], "conflict");
  EXPECT_EQ(offsets(a)["a"], 4);  // a's own log: all 5 events
  EXPECT_EQ(offsets(b)["a"], 2);  // b: a's first 3, nothing of the foreign message or after it
  EXPECT_EQ(status(b)["sources"]["a"]["state"], "blocked") << status(b).dump();
  expectGapless(all(b), "a", 3);
}

// kill -9 of a node while its pump publishes a backlog to the hub: after the restart the pump
// resumes at the stream's last sequence; the hub then holds the node's log exactly (no event
// twice, none skipped: a follower would stop at either) and the follower converges gapless.
TEST_F(ReplicationTest, KillNineOfANodeWhilePublishingResumesAtTheHubsLastSequence) {
  SiteHub hub(path() / "hub", "a,b");
  auto* a = &startNode(hub, "a");
  auto& b = startNode(hub, "b");
  ASSERT_TRUE(a->port && b.port);
  // A backlog for the pump: 20000 events published while the hub is away.
  hub.stop();
  ASSERT_TRUE(eventually([&] { return status(*a)["hub"]["connected"] == false; }));
  constexpr std::int64_t kTotal = 20000;
  TestClient client(a->port);
  for (int i = 0; i < kTotal / 100; ++i) {
    ASSERT_EQ(client.publish("load", "n", 100, Json{{"batch", i}}).status, 201);
  }
  hub.start();
  NatsClient admin(hub, "admin");
  // Killed as soon as the hub holds part of the backlog.
  std::uint64_t held = 0;
  ASSERT_TRUE(eventually(
      [&] {
        held = admin.lastSeq("a");
        return held > 0;
      },
      kPatience));
  ASSERT_TRUE(a->process.signal(SIGKILL));
  (void)a->process.wait();
  std::uint64_t at_kill = admin.lastSeq("a");
  std::cout << "the hub held " << held << " then " << at_kill << " of " << kTotal
            << " events at the kill\n";

  a = &startNode(hub, "a");
  ASSERT_NE(a->port, 0);
  EXPECT_EQ(offsets(*a)["a"], kTotal - 1);  // every acknowledged event survived
  ASSERT_TRUE(eventually([&] { return admin.lastSeq("a") == kTotal; }, 60s))
      << admin.lastSeq("a") << " " << status(*a).dump();
  ASSERT_TRUE(eventually([&] { return hasOffset(b, "a", kTotal - 1); }, 60s))
      << offsets(b).dump() << status(b).dump();
  auto s = status(b);
  EXPECT_EQ(s["rejected"]["wrong_offset"], 0) << s.dump();
  EXPECT_EQ(s["sources"]["a"]["state"], "following") << s.dump();
  expectGapless(all(b), "a", kTotal);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(admin.lastSeq("a"), static_cast<std::uint64_t>(kTotal));
  EXPECT_EQ(status(*a)["pump"]["state"], "idle") << status(*a).dump();
}

}  // namespace
}  // namespace fleetlet::streams
