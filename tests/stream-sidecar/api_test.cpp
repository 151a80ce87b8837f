// The whole fleetlet-streams API over real HTTP (libcurl and raw sockets) against an
// in-process service on port 0 with a per-test data dir.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <future>
#include <set>
#include <thread>

#include "handoff/http_adapter.h"
#include "service/service.h"
#include "support/promtool.h"
#include "support/temp_dir.h"
#include "test_client.h"

namespace fleetlet::streams {
namespace {

using testing::kPatience;
using testing::rawPost;
using testing::RawSocket;
using testing::rawWebSocketFrame;
using testing::rawWebSocketUpgrade;
using testing::Reply;
using testing::TestClient;
using namespace std::chrono_literals;

class StreamsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("streams-api");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    options_.data_dir = dir_->path();
    options_.events_port = 0;
    options_.console_port = 0;
    options_.source_id = "node-a";
    options_.header_timeout = 1000ms;
    options_.io_timeout = 2000ms;
    options_.events.max_body = 64 * 1024;
    options_.events.page.events = 7;  // force pagination in every query and catch-up
  }
  void start() {
    auto s = Service::start(options_);
    ASSERT_TRUE(s) << s.error().message();
    service_ = std::move(*s);
    events_.emplace(service_->eventsListener().port);
    console_.emplace(service_->consoleListener().port);
  }
  void restart() {
    service_.reset();
    start();
  }
  // A loopback listener made outside the server and adopted for `app`, as the socket handoff
  // delivers them; its port (0 on failure).
  std::uint16_t adoptAppListener(const std::string& app) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd.get(), 16) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return 0;
    }
    auto info = service_->eventsServer().adoptListener(std::move(fd), handoff::appTag(app));
    EXPECT_TRUE(info) << info.error().message();
    return info ? ntohs(addr.sin_port) : 0;
  }
  Json offsets() { return events_->get("/api/v1/events/offsets").json(); }
  std::vector<Json> query(const std::string& body) {
    return events_->post("/api/v1/events/query", body).lines();
  }

  std::optional<fleetlet::testing::TempDir> dir_;
  ServiceOptions options_;
  std::unique_ptr<Service> service_;
  std::optional<TestClient> events_;
  std::optional<TestClient> console_;
};

std::vector<std::int64_t> offsetsOf(const std::vector<Json>& lines) {
  std::vector<std::int64_t> out;
  for (const auto& l : lines) out.push_back(l.value("offset", std::int64_t{-1}));
  return out;
}

TEST_F(StreamsApiTest, PublishAssignsGaplessOffsetsAndReportsThem) {
  start();
  EXPECT_EQ(offsets(), Json::object());
  Reply first = events_->publish("com.robot.battery", "robot1", 3, {{"level", 0.5}});
  ASSERT_EQ(first.status, 201) << first.body;
  Reply second = events_->publish("com.robot.battery", "robot2", 2);
  ASSERT_EQ(second.status, 201);
  auto data = second.json()["data"];
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0]["source"], "node-a");
  EXPECT_EQ(data[0]["offset"], 3);
  EXPECT_EQ(data[1]["offset"], 4);
  EXPECT_GT(data[1]["lamport"].get<int>(), first.json()["data"][2]["lamport"].get<int>());
  EXPECT_EQ(offsets(), (Json{{"node-a", 4}}));
}

TEST_F(StreamsApiTest, QueryHonoursBoundsFiltersAndEachOrder) {
  start();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(
        events_->publish(i % 2 ? "odd" : "even", "n" + std::to_string(i % 3), 1, {{"i", i}}).status,
        201);
  }
  auto all = query(R"({"subscriptions":[{}],"order":"lamport","upperBound":{"node-a":9}})");
  EXPECT_EQ(offsetsOf(all), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(all[4]["payload"], (Json{{"i", 4}}));
  EXPECT_EQ(all[4]["stream"], (Json{{"semantics", "even"}, {"name", "n1"}, {"source", "node-a"}}));

  auto reverse = query(
      R"({"subscriptions":[{}],"order":"lamport-reverse","lowerBound":{"node-a":2},"upperBound":{"node-a":6}})");
  EXPECT_EQ(offsetsOf(reverse), (std::vector<std::int64_t>{6, 5, 4, 3}));

  auto ordered = query(
      R"({"subscriptions":[{"semantics":"odd"},{"name":"n0"}],"order":"source-ordered","upperBound":{"node-a":9}})");
  // odd: 1,3,5,7,9; name n0: 0,3,6,9.
  EXPECT_EQ(offsetsOf(ordered), (std::vector<std::int64_t>{0, 1, 3, 5, 6, 7, 9}));

  auto both = query(
      R"({"subscriptions":[{"semantics":"even","name":"n2","source":"node-a"}],"order":"lamport","upperBound":{"node-a":9}})");
  EXPECT_EQ(offsetsOf(both), (std::vector<std::int64_t>{2, 8}));

  EXPECT_TRUE(query(R"({"subscriptions":[{}],"order":"lamport","upperBound":{}})").empty());
  EXPECT_TRUE(
      query(R"({"subscriptions":[{}],"order":"lamport","upperBound":{"other":5}})").empty());
  EXPECT_TRUE(query(R"({"subscriptions":[],"order":"lamport","upperBound":{"node-a":9}})").empty());
}

TEST_F(StreamsApiTest, OffsetsAndLamportSurviveRestart) {
  start();
  ASSERT_EQ(events_->publish("s", "n", 5).status, 201);
  auto before = events_->publish("s", "n", 1).json()["data"][0];
  restart();
  EXPECT_EQ(offsets(), (Json{{"node-a", 5}}));
  auto after = events_->publish("s", "n", 1).json()["data"][0];
  EXPECT_EQ(after["offset"], 6);
  EXPECT_GT(after["lamport"].get<std::int64_t>(), before["lamport"].get<std::int64_t>());
}

TEST_F(StreamsApiTest, SourceIdIsGeneratedOnceAndKept) {
  options_.source_id.clear();
  start();
  auto source = events_->publish("s", "n", 1).json()["data"][0]["source"].get<std::string>();
  EXPECT_FALSE(source.empty());
  restart();
  EXPECT_EQ(events_->publish("s", "n", 1).json()["data"][0]["source"], source);
}

TEST_F(StreamsApiTest, SubscribeCatchesUpThenGoesLiveWithoutGapOrDuplicate) {
  start();
  ASSERT_EQ(events_->publish("s", "n", 20).status, 201);
  // Publish concurrently while the subscription catches up and switches to live events.
  std::atomic<bool> go{false};
  std::thread publisher([&] {
    TestClient c(service_->eventsListener().port);
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 30; ++i) ASSERT_EQ(c.publish("s", "n", 3).status, 201);
    ASSERT_EQ(c.publish("other", "n", 1).status, 201);  // filtered out
    ASSERT_EQ(c.publish("s", "n", 1).status, 201);      // offset 111: the last one
  });
  auto lines =
      events_->streamLines("POST", "/api/v1/events/subscribe",
                           R"({"subscriptions":[{"semantics":"s"}],"lowerBound":{"node-a":4}})",
                           [&](const std::vector<Json>& l) {
                             go = true;
                             return !l.empty() && l.back().value("offset", 0) == 111;
                           });
  publisher.join();
  std::vector<std::int64_t> expected;
  for (std::int64_t o = 5; o <= 109; ++o) expected.push_back(o);
  expected.push_back(111);
  EXPECT_EQ(offsetsOf(lines), expected);
}

TEST_F(StreamsApiTest, LongCatchUpOutlivingTheLiveQueueStillMissesNothing) {
  options_.events.subscriber_queue.events = 40;  // overflows while 500 events are caught up
  start();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(events_->publish("s", "n", 100).status, 201);
  std::atomic<bool> go{false};
  std::thread publisher([&] {
    TestClient c(service_->eventsListener().port);
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 40; ++i) ASSERT_EQ(c.publish("s", "n", 3).status, 201);
  });
  auto lines =
      events_->streamLines("POST", "/api/v1/events/subscribe", R"({"subscriptions":[{}]})",
                           [&](const std::vector<Json>& l) {
                             go = true;
                             return l.size() >= 620 || (!l.empty() && l.back().contains("code"));
                           });
  publisher.join();
  std::vector<std::int64_t> expected;
  for (std::int64_t o = 0; o < 620; ++o) expected.push_back(o);
  EXPECT_EQ(offsetsOf(lines), expected);
}

TEST_F(StreamsApiTest, SlowSubscriberIsCutOffWhileOthersAndPublishersGoOn) {
  options_.events.subscriber_queue.events = 1000;
  options_.io_timeout = 30000ms;  // the slow one is cut by the queue limit, not a timeout
  options_.events.max_body = 1024 * 1024;
  start();
  // A subscriber that never reads, with a tiny receive buffer.
  RawSocket slow = RawSocket::connect(service_->eventsListener().port, 4096);
  std::string body = R"({"subscriptions":[{}]})";
  ASSERT_TRUE(slow.send("POST /api/v1/events/subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_NE(slow.readUntil("\r\n\r\n").find("200"), std::string::npos);
  // A healthy subscriber sees everything.
  constexpr int kRequests = 200;
  constexpr int kPerRequest = 20;
  auto healthy = std::async(std::launch::async, [&] {
    TestClient c(service_->eventsListener().port);
    return c.streamLines("POST", "/api/v1/events/subscribe", R"({"subscriptions":[{}]})",
                         [](const auto& l) { return l.size() >= kRequests * kPerRequest; });
  });
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (service_->hub().subscriberCount() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(service_->hub().subscriberCount(), 2u);
  std::string big(4000, 'x');
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(events_->publish("s", "n", kPerRequest, big).status, 201);
  }
  auto lines = healthy.get();
  EXPECT_EQ(lines.size(), static_cast<std::size_t>(kRequests * kPerRequest));
  // The slow one gets its final error line once it reads again, then the stream ends.
  std::string got = slow.readUntil("ERR_SUBSCRIBER_TOO_SLOW");
  EXPECT_NE(got.find("ERR_SUBSCRIBER_TOO_SLOW"), std::string::npos);
  EXPECT_EQ(offsets(), (Json{{"node-a", kRequests * kPerRequest - 1}}));
}

// Waits until the hub has `count` subscribers; false after the patience ran out.
bool waitForSubscribers(Service& service, std::size_t count) {
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (service.hub().subscriberCount() != count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST_F(StreamsApiTest, LiveSubscriberIsCutOffByQueuedBytesNotEventCount) {
  options_.events.subscriber_queue = {.events = 65536, .bytes = 256 * 1024};
  options_.events.max_body = 2 * 1024 * 1024;
  options_.io_timeout = 30000ms;  // cut by the queue's bytes, not by a write timeout
  start();
  RawSocket slow = RawSocket::connect(service_->eventsListener().port, 4096);
  ASSERT_TRUE(slow.send(rawPost("/api/v1/events/subscribe", R"({"subscriptions":[{}]})")));
  ASSERT_NE(slow.readUntil("\r\n\r\n").find("200"), std::string::npos);
  ASSERT_TRUE(waitForSubscribers(*service_, 1));
  // 160 events of 64 KiB: 10 MiB, more than the socket buffers take and 40 times the queue's
  // bytes, yet far below its event count.
  std::string big(64 * 1024, 'x');
  for (int i = 0; i < 10; ++i) ASSERT_EQ(events_->publish("s", "n", 16, big).status, 201);
  // Every event reached the hub before its 201. Reading now: what fitted in the queue and the
  // socket buffers, then the reason, then the end.
  std::string got = slow.readUntil("ERR_SUBSCRIBER_TOO_SLOW");
  EXPECT_NE(got.find("ERR_SUBSCRIBER_TOO_SLOW"), std::string::npos);
  EXPECT_NE(got.find("262144 bytes"), std::string::npos);
  EXPECT_TRUE(slow.waitClosed());
  EXPECT_LT(testing::countOccurrences(got, "\"offset\":"), 160u);
  EXPECT_TRUE(waitForSubscribers(*service_, 0));
}

TEST_F(StreamsApiTest, EventsLargerThanAPageStillComeInOrder) {
  options_.events.page = {.events = 2000, .bytes = 16 * 1024};
  options_.events.max_body = 1024 * 1024;
  start();
  std::vector<std::string> payloads;
  for (int i = 0; i < 12; ++i) {
    payloads.emplace_back(static_cast<std::size_t>(i % 3 == 0 ? 100 * 1024 : 10), 'a' + i);
    ASSERT_EQ(events_->publish("s", "n", 1, payloads.back()).status, 201);
  }
  auto check = [&](const std::vector<Json>& lines) {
    ASSERT_EQ(lines.size(), payloads.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i]["offset"], i);
      EXPECT_EQ(lines[i]["payload"], payloads[i]) << i;
    }
  };
  check(query(R"({"subscriptions":[{}],"order":"lamport","upperBound":{"node-a":11}})"));
  check(events_->streamLines("POST", "/api/v1/events/subscribe", R"({"subscriptions":[{}]})",
                             [](const std::vector<Json>& l) { return l.size() >= 12; }));
}

TEST_F(StreamsApiTest, PayloadNumbersComeBackAsWritten) {
  start();
  Reply r = events_->post("/api/v1/events/publish", R"({"data":[{"semantics":"s","name":"n",
      "payload": {"big": 123456789012345678901234567890, "neg": -0, "exp": 1E400, "frac": 0.10}}]})");
  // 1E400 is beyond a double: nlohmann refuses it, so the request is refused.
  EXPECT_EQ(r.status, 400) << r.body;
  r = events_->post("/api/v1/events/publish", R"({"data":[{"semantics":"s","name":"n",
      "payload": {"big": 123456789012345678901234567890, "neg": -0, "exp": 1E2, "frac": 0.10,
                  "u64": 18446744073709551616}}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string written =
      R"("payload":{"big":123456789012345678901234567890,"neg":-0,"exp":1E2,"frac":0.10,)"
      R"("u64":18446744073709551616}})";
  Reply q = events_->post("/api/v1/events/query",
                          R"({"subscriptions":[{}],"order":"lamport","upperBound":{"node-a":0}})");
  EXPECT_NE(q.body.find(written), std::string::npos) << q.body;
}

TEST_F(StreamsApiTest, BadRequestsGet400NamingTheProblem) {
  start();
  struct Case {
    std::string path, body, needle;
  };
  std::vector<Case> cases = {
      {"publish", "{not json", "malformed JSON"},
      {"publish", "[]", "expected an object"},
      {"publish", R"({"data":{}})", "request.data"},
      {"publish", R"({})", "request.data"},
      {"publish", R"({"data":[{"semantics":1,"name":"n","payload":1}]})",
       "request.data[0].semantics"},
      {"publish", R"({"data":[{"semantics":"s","payload":1}]})", "request.data[0].name"},
      {"publish", R"({"data":[{"semantics":"s","name":"n"}]})", "request.data[0].payload"},
      {"publish", std::string(100, '[') + std::string(100, ']'), "nested deeper"},
      {"query", R"({"subscriptions":[{}],"order":"lamport"})", "upperBound"},
      {"query", R"({"subscriptions":[{}],"order":"sideways","upperBound":{}})", "request.order"},
      {"query", R"({"subscriptions":[{}],"order":"lamport","upperBound":{"a":"1"}})",
       "request.upperBound.a"},
      {"query", R"({"order":"lamport","upperBound":{}})", "request.subscriptions"},
      {"subscribe", R"({"subscriptions":[5]})", "request.subscriptions[0]"},
      {"subscribe", R"({"subscriptions":[{}],"lowerBound":[]})", "request.lowerBound"},
  };
  for (const auto& c : cases) {
    Reply r = events_->post("/api/v1/events/" + c.path, c.body);
    EXPECT_EQ(r.status, 400) << c.path << " " << c.body;
    EXPECT_EQ(r.json().value("code", ""), "ERR_BAD_REQUEST") << r.body;
    EXPECT_NE(r.json().value("message", "").find(c.needle), std::string::npos)
        << c.body << " -> " << r.body;
  }
  EXPECT_EQ(events_->get("/api/v1/events/nope").status, 404);
  EXPECT_EQ(offsets(), Json::object());  // nothing was stored
}

TEST_F(StreamsApiTest, HugeBodyGets413AndNothingIsStored) {
  start();
  std::string big = R"({"data":[{"semantics":"s","name":"n","payload":")" +
                    std::string(200 * 1024, 'x') + R"("}]})";
  EXPECT_EQ(events_->post("/api/v1/events/publish", big).status, 413);
  // Chunked, without Content-Length, as the SDK sends bodies.
  RawSocket raw = RawSocket::connect(service_->eventsListener().port);
  ASSERT_TRUE(
      raw.send("POST /api/v1/events/publish HTTP/1.1\r\nHost: x\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"));
  std::string chunk(32 * 1024, 'y');
  for (int i = 0; i < 4; ++i) raw.send(fmt::format("{:x}\r\n{}\r\n", chunk.size(), chunk));
  EXPECT_NE(raw.readUntil("\r\n\r\n").find("413"), std::string::npos);
  EXPECT_EQ(offsets(), Json::object());
  EXPECT_EQ(events_->publish("s", "n", 1).status, 201);
}

TEST_F(StreamsApiTest, ChunkedPublishWithoutContentLengthIsAccepted) {
  start();
  RawSocket raw = RawSocket::connect(service_->eventsListener().port);
  std::string body = R"({"data":[{"semantics":"s","name":"n","payload":{"a":1}}]})";
  ASSERT_TRUE(
      raw.send("POST /api/v1/events/publish HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
               fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size(), body)));
  EXPECT_NE(raw.readUntil("\"offset\":0").find("201"), std::string::npos);
}

TEST_F(StreamsApiTest, SlowlorisAndAbruptDisconnectsDoNotStopOthers) {
  start();
  std::uint16_t port = service_->eventsListener().port;
  // Slowloris: an unfinished header is cut off after the header timeout.
  RawSocket loris = RawSocket::connect(port);
  ASSERT_TRUE(loris.send("POST /api/v1/events/publish HTTP/1.1\r\nHost: x\r\n"));
  // Abrupt disconnects: mid-body, mid-subscribe, mid-query.
  {
    RawSocket cut = RawSocket::connect(port);
    cut.send("POST /api/v1/events/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"da");
  }
  {
    RawSocket cut = RawSocket::connect(port);
    std::string body = R"({"subscriptions":[{}]})";
    cut.send("POST /api/v1/events/subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
    cut.readUntil("\r\n\r\n");
  }
  // Everyone else is served meanwhile.
  for (int i = 0; i < 5; ++i) ASSERT_EQ(events_->publish("s", "n", 1).status, 201);
  EXPECT_TRUE(loris.waitClosed());
  EXPECT_EQ(offsets(), (Json{{"node-a", 4}}));
}

TEST_F(StreamsApiTest, CorsPreflightAndHeaders) {
  start();
  Reply pre = events_->request("OPTIONS", "/api/v1/events/publish", "",
                               {{"Origin", "app://ui"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.header("access-control-allow-origin"), "*");
  EXPECT_NE(pre.header("access-control-allow-headers").value_or("").find("Content-Type"),
            std::string::npos);
  Reply r = events_->get("/api/v1/events/offsets");
  EXPECT_EQ(r.header("access-control-allow-origin"), "*");
}

TEST_F(StreamsApiTest, EventsFromAnAdoptedListenerCarryItsApp) {
  start();
  const std::uint16_t port = adoptAppListener("com.example.camera");
  ASSERT_NE(port, 0);
  TestClient app(port);
  ASSERT_EQ(app.publish("s", "n", 1).status, 201);
  ASSERT_EQ(events_->publish("s", "n", 1).status, 201);
  auto lines = query(R"({"subscriptions":[{}],"order":"lamport","upperBound":{"node-a":1}})");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].value("sourceApp", ""), "com.example.camera");
  EXPECT_FALSE(lines[1].contains("sourceApp"));
}

// fleetletd ships apps' output through a listener of its own (tag "node"): entries are stored
// under the app they name, once per (app, key); no other listener may ingest.
TEST_F(StreamsApiTest, IngestFromTheNodeListenerStoresEachKeyOnceUnderItsApp) {
  start();
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd.get(), 16), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  ASSERT_EQ(handoff::appTag(handoff::kNodeApp), handoff::kNodeTag);
  auto info =
      service_->consoleServer().adoptListener(std::move(fd), handoff::appTag(handoff::kNodeApp));
  ASSERT_TRUE(info) << info.error().message();
  TestClient node(ntohs(addr.sin_port));
  const std::string batch = R"({"entries":[
    {"app":"camera","key":"7-aa:0","logName":"stdout","message":"line 1",
     "logTimestamp":"2026-12-07T01:00:00.123456789Z","labels":{"stream":"stdout"}},
    {"app":"camera","key":"7-aa:45","logName":"stderr","message":"line 2"},
    {"app":"other","key":"7-aa:0","logName":"stdout","message":"same key, other app"}]})";
  Reply first = node.post("/api/v1/logs/ingest", batch);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json(), (Json{{"stored", 3}, {"duplicates", 0}}));
  Reply again = node.post("/api/v1/logs/ingest", batch);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json(), (Json{{"stored", 0}, {"duplicates", 3}}));

  auto camera = console_->get("/api/v1/logs?app=camera").lines();
  ASSERT_EQ(camera.size(), 2u);
  EXPECT_EQ(camera[0]["message"], "line 1");
  EXPECT_EQ(camera[0]["app"], "camera");
  EXPECT_EQ(camera[0]["logName"], "stdout");
  EXPECT_EQ(camera[0]["logTimestamp"], "2026-12-07T01:00:00.123456789Z");
  EXPECT_EQ(camera[1]["message"], "line 2");
  EXPECT_EQ(console_->get("/api/v1/logs?app=other").lines().size(), 1u);

  // Not from the host listener (nor an app's).
  Reply host = console_->post("/api/v1/logs/ingest", batch);
  EXPECT_EQ(host.status, 403) << host.body;
  // One bad entry refuses the batch, naming it; nothing of it is stored.
  Reply bad = node.post("/api/v1/logs/ingest", R"({"entries":[
    {"app":"camera","key":"new","logName":"stdout","message":"ok"},
    {"app":"bad app!","key":"k","logName":"stdout","message":"m"}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("request.entries[1].app"), std::string::npos) << bad.body;
  EXPECT_EQ(node.post("/api/v1/logs/ingest",
                      R"({"entries":[{"app":"camera","key":"","logName":"l","message":"m"}]})")
                .status,
            400);
  EXPECT_EQ(
      node.post("/api/v1/logs/ingest", R"({"entries":[{"app":"camera","key":"k","logName":"l"}]})")
          .status,
      400);
  EXPECT_EQ(node.post("/api/v1/logs/ingest", R"({"entries":{}})").status, 400);
  EXPECT_EQ(console_->get("/api/v1/logs?app=camera").lines().size(), 2u);
}

// Keys survive a restart of the service (they are stored with the entries).
TEST_F(StreamsApiTest, IngestKeysAreRememberedAcrossARestart) {
  start();
  std::vector<IngestEntry> entries(1);
  entries[0].key = "k1";
  entries[0].entry.app = "camera";
  entries[0].entry.log_name = "stdout";
  entries[0].entry.severity = "info";
  entries[0].entry.message = "once";
  auto first = service_->logs().ingest(entries);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->stored, 1u);
  restart();
  auto second = service_->logs().ingest(entries);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->stored, 0u);
  EXPECT_EQ(second->duplicates, 1u);
  EXPECT_EQ(console_->get("/api/v1/logs?app=camera").lines().size(), 1u);
}

TEST_F(StreamsApiTest, ConsoleAcceptsBothShapesAndRejectsBadEntries) {
  start();
  Reply a = console_->post("/api/v1/logs",
                           R"({"logName":"myLogger","message":"valve 3 opened","severity":"info",
      "producerName":"com.example.app1","producerVersion":"1.0.0",
      "logTimestamp":"2026-11-21T10:00:00Z","labels":{"k":"v"},"additionalData":{"any":"json"}})");
  EXPECT_EQ(a.status, 201) << a.body;
  Reply b = console_->post(
      "/api/v1/logs",
      R"({"logName":"myLogger","labels":{"ax.schemas.logging.level":"warn","com.mycompany.event":"colorChange"},
      "payload":{"message":"color changed"}})");
  EXPECT_EQ(b.status, 201) << b.body;
  EXPECT_EQ(console_->post("/api/v1/logs", R"({"message":"no name"})").status, 400);
  EXPECT_EQ(console_->post("/api/v1/logs", R"({"logName":"l","severity":"fatal"})").status, 400);
  EXPECT_EQ(console_->post("/api/v1/logs", R"({"logName":"l","labels":{"a":1}})").status, 400);
  EXPECT_EQ(console_->post("/api/v1/logs", "{").status, 400);

  auto lines = console_->get("/api/v1/logs").lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["message"], "valve 3 opened");
  EXPECT_EQ(lines[0]["producerName"], "com.example.app1");
  EXPECT_EQ(lines[0]["additionalData"], (Json{{"any", "json"}}));
  EXPECT_EQ(lines[1]["severity"], "warn");
  EXPECT_EQ(lines[1]["message"], "color changed");
  EXPECT_EQ(lines[1]["labels"]["com.mycompany.event"], "colorChange");
  EXPECT_LT(lines[0]["seq"].get<int>(), lines[1]["seq"].get<int>());

  EXPECT_EQ(console_->get("/api/v1/logs?severity=warn").lines().size(), 1u);
  EXPECT_EQ(console_->get("/api/v1/logs?limit=1").lines().at(0)["severity"], "warn");
  EXPECT_EQ(console_->get("/api/v1/logs?logName=other").lines().size(), 0u);
  EXPECT_EQ(console_->get("/api/v1/logs?since=" + lines[0]["seq"].dump()).lines().size(), 1u);
  EXPECT_EQ(console_->get("/api/v1/logs?limit=x").status, 400);
}

TEST_F(StreamsApiTest, ConsoleRejectsAMalformedFollowOrLogTimestampNamingIt) {
  start();
  Reply follow = console_->get("/api/v1/logs?follow=maybe");
  EXPECT_EQ(follow.status, 400);
  EXPECT_NE(follow.body.find("follow"), std::string::npos) << follow.body;
  Reply stamp = console_->post("/api/v1/logs", R"({"logName":"l","logTimestamp":"not-a-time"})");
  EXPECT_EQ(stamp.status, 400);
  EXPECT_NE(stamp.body.find("request.logTimestamp"), std::string::npos) << stamp.body;
  EXPECT_TRUE(console_->get("/api/v1/logs").lines().empty());  // nothing stored
  EXPECT_EQ(console_->get("/api/v1/logs?follow=false").status, 200);
  EXPECT_EQ(console_->get("/api/v1/logs?follow=0").status, 200);
}

TEST_F(StreamsApiTest, FollowingLogsDeliversNewEntries) {
  start();
  ASSERT_EQ(console_->post("/api/v1/logs", R"({"logName":"l","message":"old"})").status, 201);
  std::atomic<bool> go{false};
  std::thread writer([&] {
    TestClient c(service_->consoleListener().port);
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(
          c.post("/api/v1/logs", R"({"logName":"l","message":"new )" + std::to_string(i) + R"("})")
              .status,
          201);
    }
  });
  auto lines = console_->streamLines("GET", "/api/v1/logs?follow=true&logName=l", "",
                                     [&](const std::vector<Json>& l) {
                                       go = true;
                                       return l.size() >= 6;
                                     });
  writer.join();
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0]["message"], "old");
  EXPECT_EQ(lines[5]["message"], "new 4");
}

TEST_F(StreamsApiTest, LogRetentionDropsTheOldestEntriesPerApp) {
  options_.log_app_cap_bytes = 4096;
  start();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(console_
                  ->post("/api/v1/logs", R"({"logName":"l","message":"entry )" + std::to_string(i) +
                                             std::string(50, '.') + "\"}")
                  .status,
              201);
  }
  auto lines = console_->get("/api/v1/logs").lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_LT(lines.size(), 100u);
  EXPECT_EQ(lines.back()["message"].get<std::string>().substr(0, 9), "entry 99.");
  EXPECT_LE(service_->logs().appBytes(""), 4096u);
}

// A blocking WebSocket client (Beast) with a receive timeout, so a broken server fails the
// test instead of hanging it.
class WsClient {
 public:
  explicit WsClient(std::uint16_t port) : ws_(io_) {
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), port);
    ws_.next_layer().connect(endpoint);
    timeval tv{static_cast<time_t>(kPatience.count()), 0};
    ::setsockopt(ws_.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ws_.handshake("127.0.0.1", "/api/v1/events/ws");
  }
  void send(const std::string& text) { ws_.write(boost::asio::buffer(text)); }
  // The next message, or nullopt once the connection is closed (or on timeout).
  std::optional<Json> read() {
    boost::beast::flat_buffer buffer;
    boost::system::error_code ec;
    ws_.read(buffer, ec);
    if (ec) return std::nullopt;
    return Json::parse(boost::beast::buffers_to_string(buffer.data()), nullptr, false);
  }

 private:
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
};

TEST_F(StreamsApiTest, WebSocketPushesNumberedEventsAndHeartbeats) {
  options_.events.heartbeat_interval = 300ms;
  start();
  ASSERT_EQ(events_->publish("s", "n", 3).status, 201);
  WsClient ws(service_->eventsListener().port);
  ws.send(R"({"subscriptions":[{"semantics":"s"}],"lowerBound":{"node-a":0}})");
  auto m1 = ws.read();
  auto m2 = ws.read();
  ASSERT_TRUE(m1 && m2);
  EXPECT_EQ((*m1)["seq"], 1);
  EXPECT_EQ((*m1)["event"]["offset"], 1);
  EXPECT_EQ((*m2)["seq"], 2);
  EXPECT_EQ((*m2)["event"]["offset"], 2);
  ASSERT_EQ(events_->publish("s", "n", 1).status, 201);
  ASSERT_EQ(events_->publish("other", "n", 1).status, 201);  // filtered out
  auto m3 = ws.read();
  ASSERT_TRUE(m3);
  EXPECT_EQ((*m3)["seq"], 3);
  EXPECT_EQ((*m3)["event"]["offset"], 3);
  EXPECT_EQ((*m3)["event"]["stream"]["semantics"], "s");

  // Heartbeats continue the seq; acknowledged ones keep the connection open.
  auto h1 = ws.read();
  ASSERT_TRUE(h1);
  EXPECT_EQ((*h1)["type"], "heartbeat");
  EXPECT_EQ((*h1)["seq"], 4);
  ws.send(R"({"type":"heartbeat-ack","seq":4})");
  auto h2 = ws.read();
  ASSERT_TRUE(h2);
  EXPECT_EQ((*h2)["type"], "heartbeat");
  EXPECT_EQ((*h2)["seq"], 5);
  // Not acknowledging h2: the server disconnects within the next interval.
  EXPECT_FALSE(ws.read().has_value());
}

TEST_F(StreamsApiTest, WebSocketRejectsABadSubscribeAndPlainHttp) {
  start();
  WsClient ws(service_->eventsListener().port);
  ws.send(R"({"subscriptions":"all"})");
  auto error = ws.read();
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["code"], "ERR_BAD_REQUEST");
  EXPECT_FALSE(ws.read().has_value());
  EXPECT_EQ(events_->get("/api/v1/events/ws").status, 426);
  EXPECT_EQ(events_->publish("s", "n", 1).status, 201);  // still serving
}

TEST_F(StreamsApiTest, WebSocketClientThatStopsReadingIsClosedAtItsHeartbeatDeadline) {
  options_.events.heartbeat_interval = 300ms;
  options_.events.max_body = 2 * 1024 * 1024;
  // Neither the queue nor a write timeout cuts it off: only the heartbeat deadline.
  options_.events.subscriber_queue = {.events = 65536, .bytes = std::size_t{1} << 30};
  options_.io_timeout = 60000ms;
  start();
  std::string big(64 * 1024, 'x');  // 10 MiB: more than the socket buffers take
  for (int i = 0; i < 10; ++i) ASSERT_EQ(events_->publish("s", "n", 16, big).status, 201);
  // Subscribes, then never reads: the catch-up's writes block at once.
  RawSocket ws = RawSocket::connect(service_->eventsListener().port, 4096);
  ASSERT_TRUE(ws.send(rawWebSocketUpgrade("/api/v1/events/ws")));
  ASSERT_NE(ws.readUntil("\r\n\r\n").find("101"), std::string::npos);
  ASSERT_TRUE(ws.send(rawWebSocketFrame(R"({"subscriptions":[{}]})")));
  ASSERT_TRUE(waitForSubscribers(*service_, 1));
  EXPECT_TRUE(waitForSubscribers(*service_, 0));
  EXPECT_TRUE(ws.waitClosed());
}

}  // namespace
}  // namespace fleetlet::streams

namespace fleetlet::streams {
namespace {

TEST_F(StreamsApiTest, MetricsCountEventsPerSourceAndSubscribersOnTheHostListenerOnly) {
  start();
  ASSERT_EQ(events_->publish("s", "n", 5).status, 201);
  ASSERT_EQ(events_->publish("s", "n", 2).status, 201);
  // A live subscriber (HTTP streaming) held open while the metrics are read.
  RawSocket subscriber = RawSocket::connect(service_->eventsListener().port);
  ASSERT_TRUE(subscriber.send(rawPost("/api/v1/events/subscribe", R"({"subscriptions":[{}]})")));
  ASSERT_TRUE(waitForSubscribers(*service_, 1));
  const std::string m = events_->get("/metrics").body;
  EXPECT_EQ(::fleetlet::testing::sampleValue(m, "fleetlet_streams_subscribers"), 1) << m;
  EXPECT_EQ(::fleetlet::testing::sampleValue(m, "fleetlet_streams_published_events_total"), 7) << m;
  EXPECT_EQ(::fleetlet::testing::sampleValue(m, "fleetlet_streams_ingested_events_total"), 0) << m;
  EXPECT_EQ(::fleetlet::testing::sampleValue(
                m, "fleetlet_streams_source_events_total{source=\"node-a\"}"),
            7)
      << m;
  EXPECT_EQ(::fleetlet::testing::sampleValue(m, "fleetlet_streams_replication_enabled"), 0) << m;
  EXPECT_EQ(::fleetlet::testing::promtoolProblems(m), "") << m;

  // An app's handed-over listener has no /metrics.
  const std::uint16_t app_port = adoptAppListener("camera");
  ASSERT_NE(app_port, 0);
  EXPECT_EQ(TestClient(app_port).get("/metrics").status, 404);
}

}  // namespace
}  // namespace fleetlet::streams
