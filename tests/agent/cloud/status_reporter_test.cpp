// StatusReporter against the API tests' FakeNodeService and a scripted sender: when reports
// are made, what they hold, and that each seq is acknowledged once, in order, across failures.
#include "cloud/status_reporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "../api/fake_node_service.h"
#include "support/temp_dir.h"

namespace fleetlet::cloud {
namespace {

using std::chrono::seconds;

class FakeSender : public StatusSender {
 public:
  Result<SendResult> send(const std::string& method, const std::string& url,
                          const std::string& body) override {
    calls.push_back({method, url, body});
    if (down) return fail(ErrorCode::kUnavailable, "cloud unreachable");
    if (!statuses.empty()) {
      auto s = statuses.front();
      statuses.pop_front();
      return s;
    }
    return SendResult{.status = 201, .retry_after = {}};
  }
  struct Call {
    std::string method, url, body;
  };
  std::vector<Call> calls;
  std::deque<SendResult> statuses;
  bool down = false;
};

class StatusReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("reporter-test");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
    auto outbox = StatusOutbox::open(dir_->path() / "status.db");
    ASSERT_TRUE(outbox);
    outbox_ = std::move(*outbox);
    node_.seedExample(now_);
    // What the agent adds to the reconciler's status (core::Agent::annotate).
    auto camera = node_.describe("camera");
    ASSERT_TRUE(camera);
    camera->status.last_restart_reason = "oom";
    camera->status.image_digest = "sha256:" + std::string(64, 'c');
    node_.addApp(*camera);
  }
  // A node event, queued in the outbox as core::AgentOptions::on_event does.
  int64_t publish(const std::string& app, const std::string& kind, const std::string& message) {
    const int64_t seq = node_.publish(app, kind, message);
    auto events = node_.events(seq - 1, 1);
    EXPECT_EQ(events.size(), 1U);
    if (!events.empty()) queueEvent(*outbox_, events.front());
    return seq;
  }
  StatusReporter make() {
    return StatusReporter({.node_id = "n1",
                           .url = "https://cloud/status/{node}",
                           .method = "PUT",
                           .min_interval = seconds(10),
                           .max_backoff = seconds(60),
                           .now = [this] { return now_; },
                           .random01 = [] { return 0.5; }},
                          node_, *outbox_, sender_);
  }
  Json sentBody(size_t i) { return Json::parse(sender_.calls.at(i).body); }

  std::unique_ptr<fleetlet::testing::TempDir> dir_;
  std::unique_ptr<StatusOutbox> outbox_;
  api::test::FakeNodeService node_;
  FakeSender sender_;
  core::Clock::time_point now_ = core::Clock::from_time_t(1796115600);
};

TEST_F(StatusReporterTest, AReportHoldsRevisionsAppsAndEvents) {
  auto reporter = make();
  publish("camera", "exited", "exit code 137");
  publish("camera", "restarted", "pid 4243 (restart policy)");
  ASSERT_EQ(reporter.collect(), true);
  EXPECT_EQ(reporter.flush(), std::nullopt);
  ASSERT_EQ(sender_.calls.size(), 1U);
  EXPECT_EQ(sender_.calls[0].method, "PUT");
  EXPECT_EQ(sender_.calls[0].url, "https://cloud/status/n1/1.json");
  auto r = sentBody(0);
  EXPECT_EQ(r["node"], "n1");
  EXPECT_EQ(r["seq"], 1);
  EXPECT_EQ(r["time"], "2026-12-01T09:00:00.000Z");
  EXPECT_EQ(r["revisions"]["desired"], 7);
  EXPECT_EQ(r["revisions"]["applied"], 6);
  EXPECT_EQ(r["revisions"]["lastGood"], 6);
  EXPECT_TRUE(r["revisions"]["failed"].is_array());
  const auto& camera = r["apps"]["camera"];
  EXPECT_EQ(camera["state"], "running");
  EXPECT_EQ(camera["restarts"], 2);
  EXPECT_EQ(camera["healthy"], true);
  EXPECT_EQ(camera["lastRestartReason"], "oom");
  EXPECT_EQ(camera["imageDigest"], "sha256:" + std::string(64, 'c'));
  EXPECT_TRUE(camera.contains("startedAt"));
  EXPECT_EQ(r["apps"]["plc-bridge"]["lastExitCode"], 1);
  ASSERT_EQ(r["events"].size(), 2U);
  EXPECT_EQ(r["events"][0]["kind"], "exited");
  EXPECT_EQ(r["events"].back()["kind"], "restarted");
  EXPECT_EQ(r["eventsDropped"], 0);
}

TEST_F(StatusReporterTest, AtMostOneReportPer10sUnlessAnApplyFinished) {
  auto reporter = make();
  ASSERT_EQ(reporter.collect(), true);
  EXPECT_EQ(reporter.collect(), false);  // nothing changed
  publish("camera", "exited", "exit code 1");
  now_ += seconds(5);
  EXPECT_EQ(reporter.collect(), false);  // changed, but too soon
  now_ += seconds(5);
  EXPECT_EQ(reporter.collect(), true);
  publish("", "applied", "revision 8 (2 apps) from cloud");
  now_ += seconds(1);
  EXPECT_EQ(reporter.collect(), true);  // an apply finished: at once
  now_ += seconds(60);
  EXPECT_EQ(reporter.collect(), false);  // idle: no report
}

TEST_F(StatusReporterTest, EveryReportIsAcknowledgedOnceInOrderAcrossAnOutage) {
  auto reporter = make();
  std::vector<int64_t> event_seqs;
  sender_.down = true;
  for (int i = 0; i < 20; ++i) {
    event_seqs.push_back(publish("camera", "exited", fmt::format("exit code {}", i)));
    now_ += seconds(10);
    ASSERT_TRUE(reporter.collect());
    EXPECT_TRUE(reporter.flush().has_value());  // a backoff
  }
  sender_.down = false;
  sender_.statuses.push_back({.status = 503, .retry_after = "120"});
  auto delay = reporter.flush();
  ASSERT_TRUE(delay.has_value());
  EXPECT_EQ(*delay, seconds(120));
  EXPECT_EQ(reporter.flush(), std::nullopt);
  // Successful PUTs: report 1 (held back and retried with the same bytes), then report 2
  // holding everything that happened during the outage.
  std::map<std::string, std::string> bodies;
  for (const auto& c : sender_.calls) {
    if (bodies.contains(c.url)) {
      EXPECT_EQ(bodies[c.url], c.body) << c.url;
    }
    bodies[c.url] = c.body;
  }
  EXPECT_EQ(bodies.size(), 2U);
  EXPECT_EQ(sender_.calls.back().url, "https://cloud/status/n1/2.json");
  std::vector<int64_t> reported;
  for (const auto& url : {"https://cloud/status/n1/1.json", "https://cloud/status/n1/2.json"}) {
    const Json report = Json::parse(bodies[url]);
    for (const auto& e : report["events"]) {
      if (e["kind"] == "exited") reported.push_back(e["seq"].get<int64_t>());
    }
  }
  EXPECT_EQ(reported, event_seqs);  // each event once, in order
}

// Events are in the outbox from the moment they happen: a reporter (fleetletd) that dies
// before making a report loses none of them; the next one reports them.
TEST_F(StatusReporterTest, QueuedEventsSurviveTheReporter) {
  {
    auto reporter = make();
    ASSERT_EQ(reporter.collect(), true);
    EXPECT_EQ(reporter.flush(), std::nullopt);
    now_ += seconds(1);
    publish("camera", "exited", "exit code 3");  // too soon for a report
    EXPECT_EQ(reporter.collect(), false);
  }  // kill -9
  auto reopened = StatusOutbox::open(dir_->path() / "status.db");
  ASSERT_TRUE(reopened);
  outbox_ = std::move(*reopened);
  auto queued = outbox_->queuedEvents();
  ASSERT_TRUE(queued);
  ASSERT_EQ(queued->size(), 1U);
  auto reporter = make();
  ASSERT_EQ(reporter.collect(), true);
  EXPECT_EQ(reporter.flush(), std::nullopt);
  ASSERT_EQ(sender_.calls.size(), 2U);
  auto r = sentBody(1);
  EXPECT_EQ(r["seq"], 2);
  ASSERT_EQ(r["events"].size(), 1U);
  EXPECT_EQ(r["events"][0]["message"], "exit code 3");
}

TEST_F(StatusReporterTest, UrlsTakeSeqAndNode) {
  auto reporter = make();
  EXPECT_EQ(reporter.urlFor(12), "https://cloud/status/n1/12.json");
  StatusReporter custom({.node_id = "n1", .url = "https://c/{node}-{seq}.json"}, node_, *outbox_,
                        sender_);
  EXPECT_EQ(custom.urlFor(3), "https://c/n1-3.json");
}

}  // namespace
}  // namespace fleetlet::cloud

namespace fleetlet::cloud {
namespace {

// The alerts in force are a state member: a raise makes a report with them, a fall one
// without; results queued with status.db's own transaction go out once, at once.
TEST_F(StatusReporterTest, ActiveAlertsAndQueuedResultsAreReported) {
  Json alerts = Json::array();
  auto reporter = StatusReporter({.node_id = "n1",
                                  .url = "https://cloud/status/{node}",
                                  .min_interval = seconds(10),
                                  .now = [this] { return now_; },
                                  .random01 = [] { return 0.5; },
                                  .active_alerts = [&alerts] { return alerts; }},
                                 node_, *outbox_, sender_);
  ASSERT_TRUE(reporter.collect());
  reporter.flush();
  ASSERT_EQ(sender_.calls.size(), 1U);
  EXPECT_EQ(sentBody(0)["alerts"], Json::array());
  now_ += seconds(11);
  EXPECT_FALSE(*reporter.collect());  // nothing changed
  alerts.push_back({{"rule", "app cpu > 90% for 60s"},
                    {"app", "camera"},
                    {"value", 0.97},
                    {"since", "2026-12-07T06:00:00Z"}});
  EXPECT_TRUE(*reporter.collect());
  reporter.flush();
  ASSERT_EQ(sender_.calls.size(), 2U);
  EXPECT_EQ(sentBody(1)["alerts"].size(), 1U);
  EXPECT_EQ(sentBody(1)["alerts"][0]["app"], "camera");
  now_ += seconds(11);
  alerts = Json::array();  // it fell
  EXPECT_TRUE(*reporter.collect());
  reporter.flush();
  ASSERT_EQ(sender_.calls.size(), 3U);
  EXPECT_EQ(sentBody(2)["alerts"], Json::array());

  // A result queued in a transaction of status.db: in the next report at once, then never.
  now_ += seconds(1);  // within min_interval: a result does not wait for it
  ASSERT_TRUE(outbox_->transact([](sqlite::Database& db) {
    return StatusOutbox::queueResult(db, "logRequests", {{"id", "r1"}, {"state", "done"}});
  }));
  EXPECT_FALSE(outbox_->transact(
      [](sqlite::Database& db) { return StatusOutbox::queueResult(db, "bogus", Json::object()); }));
  EXPECT_TRUE(*reporter.collect());
  reporter.flush();
  ASSERT_EQ(sender_.calls.size(), 4U);
  ASSERT_EQ(sentBody(3)["logRequests"].size(), 1U);
  EXPECT_EQ(sentBody(3)["logRequests"][0]["id"], "r1");
  now_ += seconds(11);
  publish("camera", "restarted", "requested");
  EXPECT_TRUE(*reporter.collect());
  reporter.flush();
  ASSERT_EQ(sender_.calls.size(), 5U);
  EXPECT_FALSE(sentBody(4).contains("logRequests"));
}

// While the cloud is away, results queued before and after merge into the open report.
TEST(StatusOutboxResults, AnOpenReportKeepsItsResultsWhenItAbsorbsTheNext) {
  auto dir = fleetlet::testing::TempDir::create("outbox-results");
  ASSERT_TRUE(dir);
  auto outbox = StatusOutbox::open(dir->path() / "status.db");
  ASSERT_TRUE(outbox);
  auto queue = [&](const std::string& id) {
    return (*outbox)->transact([&](sqlite::Database& db) {
      return StatusOutbox::queueResult(db, "logRequests", {{"id", id}});
    });
  };
  ASSERT_TRUE(queue("a"));
  ASSERT_EQ((*outbox)->add({{"apps", 1}}), 1);
  ASSERT_TRUE(queue("b"));
  ASSERT_EQ((*outbox)->add({{"apps", 2}}), 1);  // merged: never handed out
  EXPECT_EQ((*outbox)->queuedResults(), 0);
  auto next = (*outbox)->next();
  ASSERT_TRUE(next && next->has_value());
  auto body = Json::parse((*next)->body);
  EXPECT_EQ(body["apps"], 2);
  ASSERT_EQ(body["logRequests"].size(), 2U);
  EXPECT_EQ(body["logRequests"][0]["id"], "a");
  EXPECT_EQ(body["logRequests"][1]["id"], "b");
}

}  // namespace
}  // namespace fleetlet::cloud
