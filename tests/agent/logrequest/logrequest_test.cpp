// Log requests: every bad request is refused naming what is wrong; the gzip holds exactly the
// range's lines and truncation keeps the newest and says so; a request runs once per id, an
// upload cut off (as by kill -9) is done again after a restart, failures are retried or end
// the request with the reason, and each end is in exactly one status report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "logrequest/gzip.h"
#include "logrequest/runner.h"
#include "logs/cri.h"
#include "support/temp_dir.h"
#include "trust/ed25519.h"
#include "trust/envelope.h"

namespace fleetlet::logrequest {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

logs::TimePoint at(const char* text) { return *parseRfc3339(text); }

class FakeUploader : public Uploader {
 public:
  Result<long> put(const std::string& url, const std::string& gzip) override {
    puts.emplace_back(url, gzip);
    if (!answers.empty()) {
      auto a = answers.front();
      answers.erase(answers.begin());
      if (a == 0) return fail(ErrorCode::kUnavailable, "{} unreachable: connection refused", url);
      return a;
    }
    return 201;
  }
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<long> answers;  // 0: no answer
};

class LogRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("logrequest-test");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
    auto key = trust::PrivateKey::generate();
    ASSERT_TRUE(key);
    key_.emplace(std::move(*key));
    policy_ = trust::Policy({key_->publicKey()}, 1, false);
    // An app's log: one line a second from 06:00:00 to 06:00:09 on stdout, and one on stderr.
    std::filesystem::create_directories(dir_->path() / "logs" / "web");
    std::ofstream log(dir_->path() / "logs" / "web" / "current.log");
    for (int i = 0; i < 10; ++i) {
      log << "2026-12-07T06:00:0" << i << ".5Z stdout F line " << i << "\n";
    }
    log << "2026-12-07T06:00:04.7Z stderr P err \n2026-12-07T06:00:04.8Z stderr F four\n";
    log.close();
    reopen();
  }

  void reopen() {
    runner_.reset();
    store_.reset();
    outbox_.reset();
    auto outbox = cloud::StatusOutbox::open(dir_->path() / "status.db");
    ASSERT_TRUE(outbox) << outbox.error().message();
    outbox_ = std::move(*outbox);
    store_ = std::make_unique<LogRequestStore>(*outbox_, [this] { return now_; });
    runner_ = std::make_unique<LogRequestRunner>(
        RunnerOptions{.node_id = "n1",
                      .policy = &policy_,
                      .app_log =
                          [this](const std::string& a) {
                            // "kiosk-ui" stands for a webview app: its lines in the kiosk's log.
                            if (a == "kiosk-ui") {
                              return RunnerOptions::AppLog{.dir = dir_->path() / "logs" / "kiosk",
                                                           .only = " [kiosk-ui] "};
                            }
                            return RunnerOptions::AppLog{.dir = dir_->path() / "logs" / a,
                                                         .only = {}};
                          },
                      .node_log_dir = dir_->path() / "node-logs",
                      .max_bytes = 1 << 20,
                      .now = [this] { return now_; },
                      .on_event =
                          [this](const std::string& app, const std::string& message) {
                            events_.push_back(app + ": " + message);
                          }},
        *store_, uploader_);
  }

  static Json request(const std::string& id = "r1") {
    return {{"apiVersion", "fleetlet.io/v1"},
            {"kind", "LogRequest"},
            {"id", id},
            {"node", "n1"},
            {"source", "app"},
            {"app", "web"},
            {"since", "2026-12-07T06:00:03Z"},
            {"until", "2026-12-07T06:00:06Z"},
            {"uploadUrl", "https://cloud.example/logs/n1/" + id + ".gz"},
            {"expires", "2026-12-08T00:00:00Z"}};
  }

  std::string sign(const std::string& payload, std::string_view type = kPayloadType,
                   const trust::PrivateKey* key = nullptr) {
    const trust::PrivateKey* chosen = key;
    if (chosen == nullptr && key_) chosen = &*key_;
    if (chosen == nullptr) {
      ADD_FAILURE() << "no signing key";
      return {};
    }
    const auto& k = *chosen;
    trust::Envelope env{.payload_type = std::string(type), .payload = payload, .signatures = {}};
    env.signatures.push_back(
        {.keyid = k.publicKey().id(), .sig = *k.sign(trust::pae(env.payload_type, payload))});
    return trust::serializeEnvelope(env);
  }
  std::string sign(const Json& payload) { return sign(payload.dump()); }

  // The logRequests of the next report (and that it holds no other).
  Json reported() {
    auto seq = outbox_->add({{"apps", Json::object()}});
    EXPECT_TRUE(seq);
    auto next = outbox_->next();
    EXPECT_TRUE(next && next->has_value());
    if (!next) return Json();
    const auto& entry = *next;
    if (!entry) return Json();
    auto body = Json::parse(entry->body);
    EXPECT_TRUE(outbox_->ack(entry->seq));
    return body.value("logRequests", Json::array());
  }

  std::unique_ptr<fleetlet::testing::TempDir> dir_;
  std::optional<trust::PrivateKey> key_;
  trust::Policy policy_;
  logs::TimePoint now_ = at("2026-12-07T07:00:00Z");
  FakeUploader uploader_;
  std::vector<std::string> events_;
  std::unique_ptr<cloud::StatusOutbox> outbox_;
  std::unique_ptr<LogRequestStore> store_;
  std::unique_ptr<LogRequestRunner> runner_;
};

TEST_F(LogRequestTest, EveryBadRequestIsRefusedNamingWhatIsWrong) {
  auto stranger = trust::PrivateKey::generate();
  ASSERT_TRUE(stranger);
  std::string tampered = sign(request());
  {
    auto env = trust::parseEnvelope(tampered);
    ASSERT_TRUE(env);
    Json changed = request();
    changed["uploadUrl"] = "https://evil.example/x";
    env->payload = changed.dump();
    tampered = trust::serializeEnvelope(*env);
  }
  auto with = [](const char* key, Json value) {
    Json r = request();
    if (value.is_null()) {
      r.erase(key);
    } else {
      r[key] = std::move(value);
    }
    return r;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {request().dump(), "log request: not a signed envelope (unsigned requests are refused"},
      {tampered, "log request: signature: no valid signature by a trusted key"},
      {sign(request().dump(), kPayloadType, &*stranger),
       "log request: signature: no valid signature by a trusted key"},
      {sign(request().dump(), trust::kPayloadTypeJson),
       "log request: envelope: unsupported payloadType "
       "\"application/vnd.fleetlet.nodestate.v1+json\""},
      {sign(with("node", "n2")), "log request r1: for node \"n2\", this node is \"n1\""},
      {sign(with("expires", "2026-12-07T06:59:59Z")),
       "log request r1: expired at 2026-12-07T06:59:59Z"},
      {sign(with("since", "2026-12-07T06:00:06Z")),
       "log request: since (2026-12-07T06:00:06Z) is not before until (2026-12-07T06:00:06Z)"},
      {sign(with("since", "yesterday")), "log request: since: "},
      {sign(with("id", "../x")), "log request: id: \"../x\" is not 1 to 64 of"},
      {sign(with("id", nullptr)), "log request: id: missing"},
      {sign(with("source", "disk")), "log request: source: \"disk\" is not \"app\" or \"node\""},
      {sign(with("uploadUrl", "file:///etc/passwd")),
       "log request: uploadUrl: \"file:///etc/passwd\" is not an http(s) URL"},
      {sign(with("maxBytes", -1)), "log request: maxBytes: not a positive integer"},
      {sign(with("verbose", true)), "log request: unknown field \"verbose\""},
      {sign(std::string("not json")), "log request: not a JSON object"},
      {"{\"payloadType\": 1", "log request: envelope: not JSON"},
  };
  for (const auto& [body, reason] : cases) {
    SCOPED_TRACE(reason);
    auto admitted = runner_->admit(body);
    ASSERT_FALSE(admitted);
    EXPECT_EQ(admitted.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_THAT(admitted.error().message(), HasSubstr(reason));
    ASSERT_FALSE(events_.empty());
    EXPECT_THAT(events_.back(), HasSubstr("refused: " + reason));
  }
  // Nothing refused was recorded or run.
  auto next = store_->next();
  ASSERT_TRUE(next);
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(runner_->runOnce(), RunnerOptions{}.idle);
  EXPECT_TRUE(uploader_.puts.empty());
}

TEST_F(LogRequestTest, AnAppsRangeIsUploadedOnceAsGzipAndReportedOnce) {
  const std::string body = sign(request());
  auto admitted = runner_->admit(body);
  ASSERT_TRUE(admitted) << admitted.error().message();
  EXPECT_TRUE(*admitted);
  EXPECT_EQ(runner_->runOnce(), 0ms);
  ASSERT_EQ(uploader_.puts.size(), 1U);
  EXPECT_EQ(uploader_.puts[0].first, "https://cloud.example/logs/n1/r1.gz");
  auto text = gunzip(uploader_.puts[0].second);
  ASSERT_TRUE(text) << text.error().message();
  // [06:00:03, 06:00:06): lines 3, 4, 5 and the joined stderr line of 06:00:04.7.
  EXPECT_EQ(*text,
            "2026-12-07T06:00:03.5Z stdout line 3\n"
            "2026-12-07T06:00:04.5Z stdout line 4\n"
            "2026-12-07T06:00:05.5Z stdout line 5\n"
            "2026-12-07T06:00:04.7Z stderr err four\n");
  auto stored = store_->find("r1");
  ASSERT_TRUE(stored);
  const auto& r1 = *stored;
  if (!r1) FAIL() << "r1 is not stored";
  EXPECT_EQ(r1->state, "done");
  ASSERT_THAT(events_, ::testing::SizeIs(2));
  EXPECT_THAT(events_[1], HasSubstr("web: r1: uploaded 4 lines of app web (" +
                                    std::to_string(uploader_.puts[0].second.size()) +
                                    " bytes gzip) to https://cloud.example/logs/n1/r1.gz"));
  auto results = reported();
  ASSERT_EQ(results.size(), 1U) << results.dump();
  EXPECT_EQ(results[0]["id"], "r1");
  EXPECT_EQ(results[0]["state"], "done");
  EXPECT_EQ(results[0]["lines"], 4);
  EXPECT_EQ(results[0]["truncated"], false);
  EXPECT_EQ(results[0]["app"], "web");
  // Served again (a poll after a restart): known, not run again, not reported again.
  auto again = runner_->admit(body);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  reopen();
  auto after_restart = runner_->admit(body);
  ASSERT_TRUE(after_restart);
  EXPECT_FALSE(*after_restart);
  EXPECT_EQ(runner_->runOnce(), RunnerOptions{}.idle);
  EXPECT_EQ(uploader_.puts.size(), 1U);
  EXPECT_TRUE(reported().empty());
}

// A webview app's range is the kiosk's lines that name it.
TEST_F(LogRequestTest, AWebviewAppsRangeHoldsOnlyTheKiosksLinesAboutIt) {
  std::filesystem::create_directories(dir_->path() / "logs" / "kiosk");
  std::ofstream(dir_->path() / "logs" / "kiosk" / "current.log")
      << "2026-12-07T06:00:03.1Z stderr F info [webview] [kiosk-ui] loaded\n"
      << "2026-12-07T06:00:03.2Z stderr F info [webview] [other] loaded\n"
      << "2026-12-07T06:00:04.1Z stderr F warning [webview] [kiosk-ui] console.warn: hi\n"
      << "2026-12-07T06:00:04.2Z stderr F info [webview] shown\n";
  Json req = request();
  req["app"] = "kiosk-ui";
  auto admitted = runner_->admit(sign(req));
  ASSERT_TRUE(admitted) << admitted.error().message();
  EXPECT_EQ(runner_->runOnce(), 0ms);
  ASSERT_EQ(uploader_.puts.size(), 1U);
  auto text = gunzip(uploader_.puts[0].second);
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text,
            "2026-12-07T06:00:03.1Z stderr info [webview] [kiosk-ui] loaded\n"
            "2026-12-07T06:00:04.1Z stderr warning [webview] [kiosk-ui] console.warn: hi\n");
}

TEST_F(LogRequestTest, AnUploadCutOffIsDoneAgainAfterARestartAndReportedOnce) {
  ASSERT_TRUE(runner_->admit(sign(request())));
  // The state a kill -9 during the PUT leaves: uploading, nothing reported.
  ASSERT_TRUE(store_->markUploading("r1"));
  reopen();
  EXPECT_EQ(runner_->runOnce(), 0ms);
  ASSERT_EQ(uploader_.puts.size(), 1U);
  auto results = reported();
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0]["state"], "done");
  EXPECT_EQ(runner_->runOnce(), RunnerOptions{}.idle);
  EXPECT_EQ(uploader_.puts.size(), 1U);
}

TEST_F(LogRequestTest, FailuresAreRetriedUntilAnAnswerEndsTheRequest) {
  uploader_.answers = {0, 503, 201};
  ASSERT_TRUE(runner_->admit(sign(request())));
  EXPECT_EQ(runner_->runOnce(), 5s);
  EXPECT_EQ(runner_->runOnce(), 10s);
  EXPECT_TRUE(reported().empty());
  EXPECT_EQ(runner_->runOnce(), 0ms);
  EXPECT_EQ(uploader_.puts.size(), 3U);
  EXPECT_EQ(uploader_.puts[0].second, uploader_.puts[2].second);  // the same bytes each time
  auto results = reported();
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0]["state"], "done");

  // A 403 ends it as failed, with the answer.
  uploader_.answers = {403};
  ASSERT_TRUE(runner_->admit(sign(request("r2"))));
  EXPECT_EQ(runner_->runOnce(), 0ms);
  results = reported();
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0]["state"], "failed");
  EXPECT_EQ(results[0]["reason"], "PUT https://cloud.example/logs/n1/r2.gz: HTTP 403");
  auto r2 = store_->find("r2");
  ASSERT_TRUE(r2);
  const auto& found = *r2;
  if (!found) FAIL() << "r2 is not stored";
  EXPECT_EQ(found->state, "failed");

  // One that cannot be uploaded before it expires fails as expired.
  uploader_.answers = {0};
  Json short_lived = request("r3");
  short_lived["expires"] = "2026-12-07T07:00:30Z";
  ASSERT_TRUE(runner_->admit(sign(short_lived)));
  EXPECT_EQ(runner_->runOnce(), 5s);
  now_ += 60s;
  EXPECT_EQ(runner_->runOnce(), 0ms);
  results = reported();
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0]["reason"], "expired at 2026-12-07T07:00:30Z before it could be uploaded");
}

TEST_F(LogRequestTest, ARangeNotYetOverWaitsAndAnAppWithoutLogsFails) {
  Json future = request("later");
  future["until"] = "2026-12-07T07:00:20Z";
  ASSERT_TRUE(runner_->admit(sign(future)));
  EXPECT_EQ(runner_->runOnce(), 20s);
  EXPECT_TRUE(uploader_.puts.empty());
  now_ += 21s;
  EXPECT_EQ(runner_->runOnce(), 0ms);
  EXPECT_EQ(uploader_.puts.size(), 1U);

  Json ghost = request("ghost");
  ghost["app"] = "ghost";
  ASSERT_TRUE(runner_->admit(sign(ghost)));
  EXPECT_EQ(runner_->runOnce(), 0ms);
  auto results = reported();
  ASSERT_EQ(results.size(), 2U);
  EXPECT_EQ(results[1]["reason"], "app ghost has no logs on this node");
}

TEST_F(LogRequestTest, ARequestsMaxBytesTruncatesKeepingTheNewestLines) {
  // 2000 lines of distinct noise compress poorly: 8 KiB holds only part of them.
  std::filesystem::create_directories(dir_->path() / "node-logs");
  std::ofstream log(dir_->path() / "node-logs" / "current.log");
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 2000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    log << "2026-12-07T06:10:00Z stderr F info [fleetletd] " << i << " " << x << "\n";
  }
  log.close();
  Json node = request("node-1");
  node["source"] = "node";
  node.erase("app");
  node["since"] = "2026-12-07T06:00:00Z";
  node["until"] = "2026-12-07T06:20:00Z";
  node["maxBytes"] = 8192;
  ASSERT_TRUE(runner_->admit(sign(node)));
  EXPECT_EQ(runner_->runOnce(), 0ms);
  ASSERT_EQ(uploader_.puts.size(), 1U);
  EXPECT_LE(uploader_.puts[0].second.size(), 8192U);
  auto text = gunzip(uploader_.puts[0].second);
  ASSERT_TRUE(text);
  auto results = reported();
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0]["truncated"], true);
  EXPECT_EQ(results[0]["source"], "node");
  EXPECT_EQ(results[0]["totalLines"], 2000);
  const int kept = results[0]["lines"].get<int>();
  ASSERT_GT(kept, 10);
  ASSERT_LT(kept, 2000);
  EXPECT_THAT(*text, ::testing::StartsWith(fmt::format(
                         "[fleetlet: truncated: the oldest {} of 2000 lines left out to fit "
                         "maxBytes 8192]\n",
                         2000 - kept)));
  EXPECT_THAT(*text, HasSubstr(fmt::format(" {} ", 2000 - kept)));  // the first kept line
  EXPECT_THAT(*text, ::testing::Not(HasSubstr(fmt::format("] {} ", 1999 - kept))));
  EXPECT_THAT(*text, HasSubstr("] 1999 "));
  EXPECT_THAT(events_.back(), HasSubstr("truncated: the oldest"));
}

TEST(Gzip, RoundTripsAndRefusesWhatIsNoGzip) {
  std::string data;
  for (int i = 0; i < 10000; ++i) data += fmt::format("line {}\n", i);
  auto packed = gzip(data);
  ASSERT_TRUE(packed);
  EXPECT_LT(packed->size(), data.size() / 4);
  EXPECT_EQ(packed->substr(0, 2), "\x1f\x8b");
  auto back = gunzip(*packed);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, data);
  EXPECT_FALSE(gunzip("plain text"));
  auto tiny = packLines({"a\n", "b\n"}, 10);
  ASSERT_FALSE(tiny);
  EXPECT_THAT(tiny.error().message(), HasSubstr("maxBytes 10 is too small"));
}

}  // namespace
}  // namespace fleetlet::logrequest
