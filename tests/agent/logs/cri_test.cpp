// The CRI log record format: what the logger writes and what the reader accepts.
#include "logs/cri.h"

#include <gtest/gtest.h>

namespace fleetlet::logs {
namespace {

using namespace std::chrono;

TimePoint at(int64_t unix_seconds, int64_t nanos) {
  return time_point_cast<TimePoint::duration>(sys_seconds(seconds(unix_seconds)) +
                                              nanoseconds(nanos));
}

TEST(CriTime, FormatsLikeGoRfc3339Nano) {
  // 2026-11-21T06:00:57Z is 1795240857.
  EXPECT_EQ(formatRfc3339Nano(at(1795240857, 0)), "2026-11-21T06:00:57Z");
  EXPECT_EQ(formatRfc3339Nano(at(1795240857, 120000000)), "2026-11-21T06:00:57.12Z");
  EXPECT_EQ(formatRfc3339Nano(at(1795240857, 123456789)), "2026-11-21T06:00:57.123456789Z");
  EXPECT_EQ(formatRfc3339Nano(at(0, 1000)), "1970-01-01T00:00:00.000001Z");
}

TEST(CriTime, ParsesWhatItFormatsAndZoneOffsets) {
  for (auto t : {at(1795240857, 0), at(1795240857, 123456789), at(86399, 999999999)}) {
    EXPECT_EQ(parseRfc3339(formatRfc3339Nano(t)).value(), t);
  }
  EXPECT_EQ(parseRfc3339("2026-11-21T07:00:57.5+01:00").value(), at(1795240857, 500000000));
  EXPECT_EQ(parseRfc3339("2026-11-21T05:30:57-00:30").value(), at(1795240857, 0));
}

TEST(CriTime, RejectsBadTimesNamingTheProblem) {
  for (std::string_view bad :
       {"", "2026-11-21", "2026-11-21T06:00:57", "2026-13-01T00:00:00Z", "2026-11-21T06:00:57.Z",
        "2026-11-21T06:00:57.1234567891Z", "2026-11-21T06:00:57Zjunk", "2026-11-21 06:00:57Z"}) {
    auto parsed = parseRfc3339(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message().find("time"), std::string::npos);
  }
}

TEST(CriRecord, AppendsOneLinePerRecord) {
  std::string out;
  appendCriRecord(out, at(1795240857, 5000), Stream::kStdout, false, "hello world");
  appendCriRecord(out, at(1795240857, 0), Stream::kStderr, true, "part");
  appendCriRecord(out, at(1795240857, 0), Stream::kStderr, false, "");
  EXPECT_EQ(out,
            "2026-11-21T06:00:57.000005Z stdout F hello world\n"
            "2026-11-21T06:00:57Z stderr P part\n"
            "2026-11-21T06:00:57Z stderr F \n");
}

TEST(CriRecord, ParsesFieldsAndKeepsTextVerbatim) {
  auto r = parseCriLine("2026-11-21T06:00:57.5Z stderr P  two  spaces ").value();
  EXPECT_EQ(r.time, at(1795240857, 500000000));
  EXPECT_EQ(r.stream, Stream::kStderr);
  EXPECT_TRUE(r.partial);
  EXPECT_EQ(r.text, " two  spaces ");

  auto empty = parseCriLine("2026-11-21T06:00:57Z stdout F ").value();
  EXPECT_FALSE(empty.partial);
  EXPECT_EQ(empty.text, "");
  // kubelet accepts a full record without the space before an empty text too.
  EXPECT_EQ(parseCriLine("2026-11-21T06:00:57Z stdout F").value().text, "");
}

TEST(CriRecord, RejectsMalformedLines) {
  for (std::string_view bad :
       {"", "garbage", "2026-11-21T06:00:57Z", "2026-11-21T06:00:57Z stdin F x",
        "2026-11-21T06:00:57Z stdout X x", "2026-11-21T06:00:57Z stdout Fx", "yesterday stdout F x",
        "2026-11-21T06:00:57Z stdout "}) {
    auto parsed = parseCriLine(bad);
    ASSERT_FALSE(parsed) << "accepted: " << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(CriRecord, OverheadBoundHoldsForTheLongestPrefix) {
  std::string out;
  appendCriRecord(out, at(1795240857, 123456789), Stream::kStderr, true, "");
  EXPECT_LE(out.size(), kMaxCriOverhead);
}

}  // namespace
}  // namespace fleetlet::logs
