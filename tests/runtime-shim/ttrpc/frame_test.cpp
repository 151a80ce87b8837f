#include "ttrpc/frame.h"

#include <gtest/gtest.h>

namespace fleetlet::ttrpc {
namespace {

TEST(TtrpcFrameTest, HeaderIsBigEndianLengthStreamTypeFlags) {
  auto bytes = encodeHeader({.length = 0x01020304, .stream_id = 0x0a0b0c0d, .type = 2, .flags = 7});
  const std::string expected("\x01\x02\x03\x04\x0a\x0b\x0c\x0d\x02\x07", 10);
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), expected);
  EXPECT_EQ(decodeHeader(expected),
            (FrameHeader{.length = 0x01020304, .stream_id = 0x0a0b0c0d, .type = 2, .flags = 7}));
}

TEST(TtrpcFrameTest, DecoderReassemblesFramesSplitAnywhere) {
  std::string stream = *encodeFrame(1, MessageType::kRequest, "hello") +
                       *encodeFrame(3, MessageType::kRequest, "") +
                       *encodeFrame(5, MessageType::kResponse, std::string(1000, 'x'));
  for (std::size_t chunk : {1u, 3u, 10u, 11u, 4096u}) {
    SCOPED_TRACE(chunk);
    FrameDecoder decoder;
    std::vector<Frame> frames;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      decoder.feed(std::string_view(stream).substr(i, chunk));
      while (auto f = decoder.next()) frames.push_back(std::move(*f));
    }
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].header.stream_id, 1u);
    EXPECT_EQ(frames[0].payload, "hello");
    EXPECT_EQ(frames[1].header.stream_id, 3u);
    EXPECT_EQ(frames[1].payload, "");
    EXPECT_EQ(frames[2].header.type, 2);
    EXPECT_EQ(frames[2].payload, std::string(1000, 'x'));
    EXPECT_EQ(decoder.buffered(), 0u);
  }
}

// Every whole frame the decoder holds now.
std::vector<Frame> drain(FrameDecoder& decoder) {
  std::vector<Frame> frames;
  while (auto f = decoder.next()) frames.push_back(std::move(*f));
  return frames;
}

TEST(TtrpcFrameTest, OversizedFrameIsReportedAndSkippedThenTheStreamContinues) {
  const std::uint32_t big = kMaxMessageSize + 1;
  auto header = encodeHeader({.length = big, .stream_id = 7, .type = 1});
  FrameDecoder decoder;
  decoder.feed(std::string_view(header.data(), header.size()));
  auto first = drain(decoder);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].oversized);
  EXPECT_EQ(first[0].header.stream_id, 7u);
  // The announced bytes arrive in pieces and are dropped, not buffered.
  const std::string junk(kReadChunk, 'j');
  std::size_t left = big;
  while (left > 0) {
    std::size_t n = std::min(left, junk.size());
    decoder.feed(std::string_view(junk).substr(0, n));
    left -= n;
    EXPECT_TRUE(drain(decoder).empty());
    EXPECT_EQ(decoder.buffered(), 0u);
  }
  decoder.feed(*encodeFrame(9, MessageType::kRequest, "after"));
  auto next = drain(decoder);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_FALSE(next[0].oversized);
  EXPECT_EQ(next[0].header.stream_id, 9u);
  EXPECT_EQ(next[0].payload, "after");
}

TEST(TtrpcFrameTest, EncodingRefusesMoreThanTheMaximum) {
  EXPECT_TRUE(encodeFrame(1, MessageType::kRequest, std::string(kMaxMessageSize, 'a')));
  auto refused = encodeFrame(1, MessageType::kRequest, std::string(kMaxMessageSize + 1, 'a'));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kResourceExhausted);
}

TEST(TtrpcFrameTest, StatusCodesMapBothWays) {
  EXPECT_EQ(RpcStatus::fromError(Error(ErrorCode::kNotFound, "x")).code, StatusCode::kNotFound);
  EXPECT_EQ(RpcStatus::fromError(Error(ErrorCode::kFailedPrecondition, "x")).code,
            StatusCode::kFailedPrecondition);
  EXPECT_EQ((RpcStatus{StatusCode::kUnimplemented, "m"}).toError().code(),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ((RpcStatus{StatusCode::kNotFound, "m"}).toError().message(), "m");
}

}  // namespace
}  // namespace fleetlet::ttrpc
