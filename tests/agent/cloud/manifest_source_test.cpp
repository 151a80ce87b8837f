// ManifestSource against a scripted fake Fetcher: conditional GETs, what is handed to apply
// (and what is not), and the delays it sleeps. Nothing waits: sleep is injected.
#include "cloud/manifest_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

namespace fleetlet::cloud {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class FakeFetcher : public Fetcher {
 public:
  Result<FetchResponse> get(const FetchRequest& request) override {
    requests.push_back(request);
    if (script.empty()) return fail(ErrorCode::kUnavailable, "nothing scripted");
    auto next = std::move(script.front());
    script.pop_front();
    return next;
  }
  std::deque<Result<FetchResponse>> script;
  std::vector<FetchRequest> requests;
};

FetchResponse ok(std::string body, std::string etag) {
  return {.status = 200, .etag = std::move(etag), .body = std::move(body)};
}
FetchResponse status(long code) { return {.status = code}; }

class ManifestSourceTest : public ::testing::Test {
 protected:
  ManifestSource make() {
    return ManifestSource(
        {.url = "https://cloud/nodes/n1.json",
         .interval = seconds(60),
         .wait = seconds(55),
         .max_body_bytes = 1000,
         .steady_now = [this] { return steady_; },
         .now = [] { return std::chrono::system_clock::from_time_t(1784800000); },
         .random01 = [] { return 0.5; }},
        fetcher_,
        [this](std::string_view body, std::string_view source) -> Result<bool> {
          applied_.emplace_back(body);
          EXPECT_EQ(source, "cloud https://cloud/nodes/n1.json");
          if (body.starts_with("bad")) {
            return fail(ErrorCode::kFailedPrecondition, "signature: no valid signature");
          }
          if (body.starts_with("disk")) return fail(ErrorCode::kInternal, "disk I/O error");
          return body != "same";
        },
        [this](std::string_view, const Error& why) { refused_.push_back(why.message()); });
  }

  FakeFetcher fetcher_;
  std::chrono::steady_clock::time_point steady_;
  std::vector<std::string> applied_;
  std::vector<std::string> refused_;
};

TEST_F(ManifestSourceTest, SendsIfNoneMatchAndPreferWaitAndSkips304) {
  auto source = make();
  fetcher_.script.push_back(ok("envelope-1", "\"e1\""));
  fetcher_.script.push_back(status(304));
  fetcher_.script.push_back(ok("envelope-2", "\"e2\""));
  source.pollOnce();
  source.pollOnce();
  source.pollOnce();
  ASSERT_EQ(fetcher_.requests.size(), 3U);
  EXPECT_EQ(fetcher_.requests[0].etag, "");
  EXPECT_EQ(fetcher_.requests[0].wait, seconds(55));
  EXPECT_EQ(fetcher_.requests[1].etag, "\"e1\"");
  EXPECT_EQ(fetcher_.requests[2].etag, "\"e1\"");
  EXPECT_EQ(applied_, (std::vector<std::string>{"envelope-1", "envelope-2"}));
  auto c = source.counters();
  EXPECT_EQ(c.polls, 3);
  EXPECT_EQ(c.not_modified, 1);
  EXPECT_EQ(c.bodies, 2);  // the 304 was not parsed
  EXPECT_EQ(c.applied, 2);
}

TEST_F(ManifestSourceTest, ARefusedBodyIsNotHandledAgain) {
  auto source = make();
  fetcher_.script.push_back(ok("bad-1", "\"b1\""));
  fetcher_.script.push_back(ok("bad-1", "\"b1\""));  // a server ignoring If-None-Match
  fetcher_.script.push_back(ok("bad-2", ""));
  fetcher_.script.push_back(ok("bad-2", ""));  // no ETag: the same bytes
  source.pollOnce();
  EXPECT_EQ(fetcher_.requests.back().etag, "");
  source.pollOnce();
  EXPECT_EQ(fetcher_.requests.back().etag, "\"b1\"");
  source.pollOnce();
  source.pollOnce();
  EXPECT_EQ(applied_, (std::vector<std::string>{"bad-1", "bad-2"}));
  EXPECT_EQ(source.counters().refused, 2);
}

TEST_F(ManifestSourceTest, ATransientApplyErrorRetriesTheSameBody) {
  auto source = make();
  fetcher_.script.push_back(ok("disk-full", "\"d\""));
  fetcher_.script.push_back(ok("disk-full", "\"d\""));
  source.pollOnce();
  source.pollOnce();
  EXPECT_EQ(fetcher_.requests[1].etag, "");  // not remembered
  EXPECT_EQ(applied_.size(), 2U);
  EXPECT_EQ(source.counters().failures, 2);
}

TEST_F(ManifestSourceTest, ATooLargeBodyIsRefusedUnread) {
  auto source = make();
  FetchResponse big = ok("", "\"big\"");
  big.too_large = true;
  fetcher_.script.push_back(big);
  auto outcome = source.pollOnce();
  EXPECT_TRUE(outcome.answered);
  EXPECT_TRUE(applied_.empty());
  ASSERT_EQ(refused_.size(), 1U);
  EXPECT_THAT(refused_[0], HasSubstr("body larger than 1000 bytes"));
}

TEST_F(ManifestSourceTest, ErrorsBackOffAndHonourRetryAfter) {
  auto source = make();
  fetcher_.script.push_back(fail(ErrorCode::kUnavailable, "cloud unreachable: refused"));
  fetcher_.script.push_back(status(503));
  FetchResponse busy = status(429);
  busy.retry_after = "120";
  fetcher_.script.push_back(busy);
  FetchResponse fresh = ok("envelope", "\"e\"");
  fresh.cache_control = "max-age=600";
  fetcher_.script.push_back(fresh);
  fetcher_.script.push_back(status(404));
  std::vector<Duration> delays;
  source.run([&](Duration d) {
    delays.push_back(d);
    return delays.size() < 5;
  });
  EXPECT_EQ(delays, (std::vector<Duration>{seconds(15), seconds(30), seconds(120), seconds(600),
                                           seconds(60)}));
}

// A fetcher whose request takes 55 s on the injected clock, as a long-polling server holds it.
class HoldingFetcher : public FakeFetcher {
 public:
  explicit HoldingFetcher(std::chrono::steady_clock::time_point& clock) : clock_(clock) {}
  Result<FetchResponse> get(const FetchRequest& r) override {
    clock_ += seconds(55);
    return FakeFetcher::get(r);
  }

 private:
  std::chrono::steady_clock::time_point& clock_;
};

TEST_F(ManifestSourceTest, ALongPollThatWasHeldIsFollowedSoon) {
  HoldingFetcher holding(steady_);
  holding.script.push_back(status(304));
  ManifestSource source(
      {.url = "u",
       .interval = seconds(60),
       .wait = seconds(55),
       .max_body_bytes = 1000,
       .steady_now = [this] { return steady_; },
       .now = [] { return std::chrono::system_clock::now(); },
       .random01 = [] { return 0.5; }},
      holding, [](std::string_view, std::string_view) { return Result<bool>(true); }, nullptr);
  std::vector<Duration> delays;
  source.run([&](Duration d) {
    delays.push_back(d);
    return false;
  });
  EXPECT_EQ(delays, std::vector<Duration>{seconds(5)});
}

TEST(ManifestSourceUrl, ExpandsTheNode) {
  EXPECT_EQ(ManifestSource::expand("https://c/{node}/state/{node}.json", "n1"),
            "https://c/n1/state/n1.json");
  EXPECT_EQ(ManifestSource::expand("https://c/state.json", "n1"), "https://c/state.json");
}

}  // namespace
}  // namespace fleetlet::cloud
