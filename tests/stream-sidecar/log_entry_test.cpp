#include "console/log_entry.h"

#include <gtest/gtest.h>

#include "json/json.h"

namespace fleetlet::streams {
namespace {

TEST(LogEntry, FirstShape) {
  auto e = parseLogRequest(
      R"({"logName":"l","message":"m","severity":"error","producerName":"p","labels":{"k":"v"}})");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->severity, "error");
  EXPECT_EQ(e->message, "m");
  auto out = Json::parse(logEntryJson(*e));
  EXPECT_EQ(out["producerName"], "p");
  EXPECT_EQ(out["labels"]["k"], "v");
}

TEST(LogEntry, SecondShapeTakesLevelLabelAndPayloadMessage) {
  auto e = parseLogRequest(
      R"({"logName":"l","labels":{"ax.schemas.logging.level":"debug"},"payload":{"message":"hello"}})");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->severity, "debug");
  EXPECT_EQ(e->message, "hello");
}

TEST(LogEntry, RejectsBadEntries) {
  EXPECT_FALSE(parseLogRequest(R"({"message":"m"})"));
  EXPECT_FALSE(parseLogRequest(R"({"logName":""})"));
  EXPECT_FALSE(parseLogRequest(R"({"logName":"l","severity":"loud"})"));
  EXPECT_FALSE(parseLogRequest(R"({"logName":"l","labels":{"ax.schemas.logging.level":"x"}})"));
  EXPECT_FALSE(parseLogRequest(R"({"logName":"l","message":5})"));
  EXPECT_FALSE(parseLogRequest("[]"));
}

TEST(LogEntry, LogTimestampMustBeRfc3339) {
  auto bad = parseLogRequest(R"({"logName":"l","logTimestamp":"not-a-time"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("request.logTimestamp"), std::string::npos)
      << bad.error().message();
  auto good = parseLogRequest(R"({"logName":"l","logTimestamp":"2026-11-21T10:00:00.5+01:00"})");
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_EQ(Json::parse(good->extra)["logTimestamp"], "2026-11-21T10:00:00.5+01:00");
}

TEST(LogEntry, IngestRequestsCarryAppKeyAndEntry) {
  auto e = parseIngestRequest(
      R"({"entries":[{"app":"camera","key":"1-ab:0","logName":"stdout","message":"hi",
          "logTimestamp":"2026-12-07T00:00:00.5Z","labels":{"stream":"stdout"}}]})");
  ASSERT_TRUE(e) << e.error().message();
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].key, "1-ab:0");
  EXPECT_EQ((*e)[0].entry.app, "camera");
  EXPECT_EQ((*e)[0].entry.severity, "info");
  EXPECT_EQ(Json::parse((*e)[0].entry.extra)["logTimestamp"], "2026-12-07T00:00:00.5Z");
}

TEST(LogEntry, IngestRequestsRejectBadEntriesNamingThem) {
  auto named = [](std::string_view body, std::string_view what) {
    auto e = parseIngestRequest(body);
    if (e) return std::string("accepted");
    return e.error().message().find(what) != std::string::npos ? std::string()
                                                               : e.error().message();
  };
  EXPECT_EQ(
      named(R"({"entries":[{"key":"k","logName":"l","message":"m"}]})", "request.entries[0].app"),
      "");
  EXPECT_EQ(named(R"({"entries":[{"app":"../x","key":"k","logName":"l","message":"m"}]})",
                  "request.entries[0].app"),
            "");
  EXPECT_EQ(named(R"({"entries":[{"app":"a","key":")" + std::string(300, 'k') +
                      R"(","logName":"l","message":"m"}]})",
                  "request.entries[0].key"),
            "");
  EXPECT_EQ(named(R"({"entries":[{"app":"a","key":"k","logName":"l","message":1}]})",
                  "request.entries[0].message"),
            "");
  EXPECT_EQ(named(R"({"entries":[{"app":"a","key":"k","logName":"l","message":"m",
                      "logTimestamp":"yesterday"}]})",
                  "request.entries[0].logTimestamp"),
            "");
  EXPECT_EQ(named(R"({"entries":[{"app":"a","key":"k","logName":"l","message":"m",
                      "severity":"loud"}]})",
                  "request.entries[0].severity"),
            "");
  EXPECT_EQ(named(R"({"entries":5})", "request.entries"), "");
  EXPECT_EQ(named("[]", "request"), "");
}

TEST(LogEntry, TimeIsRfc3339) {
  LogEntry e;
  e.time = 1795241262239184;
  e.log_name = "l";
  e.severity = "info";
  EXPECT_EQ(Json::parse(logEntryJson(e))["time"], "2026-11-21T06:07:42.239184Z");
}

}  // namespace
}  // namespace fleetlet::streams
