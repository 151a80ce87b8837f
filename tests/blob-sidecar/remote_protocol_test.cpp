// The messages between the nodes of a site (remote/protocol.h): every accepted form round
// trips, every malformed one is refused with a message naming the problem.
#include <gtest/gtest.h>

#include <functional>

#include "remote/protocol.h"

namespace fleetlet::remote {
namespace {

constexpr std::string_view kHandle = "0123456789abcdef0123456789abcdef";

store::BlobMetadata sampleMetadata() {
  store::BlobMetadata m;
  m.handle = std::string(kHandle);
  m.semantics = "com.example.photos";
  m.bytes = 5 * 1024 * 1024 + 3;
  m.content_type = "image/jpeg";
  m.filename = "p.jpg";
  m.sha256 = std::string(64, 'a');
  m.created_on_micros = 1'700'000'000'123'456;
  m.source = "node-a";
  m.source_app = "camera";
  m.retention = {.kind = retention::PolicyKind::kKeepUntilTime,
                 .until_micros = 1'900'000'000'000'000};
  return m;
}

void expectRefused(const Status& status, std::string_view words) {
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message().find(words), std::string::npos) << status.error().message();
}

template <typename T>
Status statusOf(const Result<T>& result) {
  if (result) return Status();
  return std::unexpected(result.error());
}

TEST(RemoteProtocolTest, SubjectsAndNames) {
  EXPECT_EQ(findSubject("plant1"), "fl.plant1.blobs.find");
  EXPECT_EQ(getSubject("plant1", "node_7"), "fl.plant1.blobs.node_7.get");
  EXPECT_TRUE(checkSite("plant-1"));
  EXPECT_TRUE(checkNode("node_7-a"));
  for (std::string_view bad : {"", "a.b", "a*", "a>", "a b", "plant_1"}) {
    EXPECT_FALSE(checkSite(bad)) << bad;
  }
  for (std::string_view bad : {"", "a.b", "*", ">", "a b"}) EXPECT_FALSE(checkNode(bad)) << bad;
  EXPECT_FALSE(checkNode(std::string(65, 'a')));
  EXPECT_TRUE(isHandle(kHandle));
  EXPECT_FALSE(isHandle("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(isHandle(kHandle.substr(1)));
}

TEST(RemoteProtocolTest, HolderAnswerRoundTrips) {
  HolderAnswer answer{.node = "node-a", .metadata = sampleMetadata()};
  auto parsed = parseHolderAnswer(encodeHolderAnswer(answer));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->node, "node-a");
  EXPECT_EQ(store::toJson(parsed->metadata), store::toJson(answer.metadata));
}

TEST(RemoteProtocolTest, MalformedHolderAnswersAreRefused) {
  Json good = Json::parse(encodeHolderAnswer({.node = "a", .metadata = sampleMetadata()}));
  auto with = [&](const std::function<void(Json&)>& change) {
    Json copy = good;
    change(copy);
    return statusOf(parseHolderAnswer(copy.dump()));
  };
  expectRefused(statusOf(parseHolderAnswer("not json")), "holder answer");
  expectRefused(statusOf(parseHolderAnswer("[]")), "expected an object");
  expectRefused(statusOf(parseHolderAnswer(std::string(kMaxHolderAnswerBytes + 1, ' '))),
                "exceeds");
  expectRefused(with([](Json& j) { j["node"] = "a.b"; }), "node 'a.b'");
  expectRefused(with([](Json& j) { j.erase("metadata"); }), "metadata");
  expectRefused(with([](Json& j) { j["metadata"]["handle"] = "../etc"; }), "metadata.handle");
  expectRefused(with([](Json& j) { j["metadata"]["sha256"] = "abc"; }), "metadata.sha256");
  expectRefused(with([](Json& j) { j["metadata"]["bytes"] = -1; }), "metadata.bytes");
  expectRefused(with([](Json& j) { j["metadata"]["bytes"] = 1.5; }), "metadata.bytes");
  expectRefused(with([](Json& j) { j["metadata"]["bytes"] = uint64_t{1} << 63; }), "too large");
  expectRefused(with([](Json& j) { j["metadata"].erase("contentType"); }), "contentType");
  expectRefused(with([](Json& j) { j["metadata"]["retentionPolicy"] = Json::object(); }),
                "retentionPolicy");
  expectRefused(with([](Json& j) { j["metadata"]["filename"] = 7; }), "filename");
}

TEST(RemoteProtocolTest, HolderMetadataMustBeTheLoggedMetadataFieldForField) {
  const store::BlobMetadata logged = sampleMetadata();
  EXPECT_TRUE(checkHolderMetadata(sampleMetadata(), logged));
  store::BlobMetadata other = sampleMetadata();
  other.sha256 = std::string(64, 'b');
  expectRefused(
      checkHolderMetadata(other, logged),
      "differs from the blob's metadata event in this node's event log: sha256 is \"bbbb");
  other = sampleMetadata();
  other.retention.until_micros += 1'000'000;
  expectRefused(checkHolderMetadata(other, logged), "retentionPolicy is");
  other = sampleMetadata();
  other.bytes += 1;
  expectRefused(checkHolderMetadata(other, logged), "bytes is 5242884 there, 5242883 here");
  other = sampleMetadata();
  other.filename.reset();
  expectRefused(checkHolderMetadata(other, logged), "filename is missing there");
  other = sampleMetadata();
  other.source = "node-h";
  expectRefused(checkHolderMetadata(other, logged), "source is \"node-h\" there");
}

TEST(RemoteProtocolTest, ChunkRequestRoundTripsAndRefusesMalformedOnes) {
  ChunkRequest request{.handle = std::string(kHandle), .offset = 524288, .length = 524288};
  std::string text = encodeChunkRequest(request);
  EXPECT_EQ(text, std::string(kHandle) + " 524288 524288");
  auto parsed = parseChunkRequest(text);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->handle, kHandle);
  EXPECT_EQ(parsed->offset, 524288u);
  EXPECT_EQ(parsed->length, 524288u);
  std::string h(kHandle);
  for (const std::string& bad :
       {std::string(), h, h + " 1", h + " 1 2 3", h + " -1 2", h + " +1 2", h + " 1 x", h + "  1 2",
        "zz " + std::string("1 2"), h + " 1 99999999999999999999999"}) {
    expectRefused(statusOf(parseChunkRequest(bad)), "chunk request");
  }
  expectRefused(statusOf(parseChunkRequest(h + " 0 0")), "length 0");
}

TEST(RemoteProtocolTest, ChunkReplyGivesTheDataAsked) {
  ChunkRequest asked{.handle = std::string(kHandle), .offset = 1024, .length = 8};
  std::string reply = chunkDataHead(1024, 8) + std::string("abc\n\0xyz", 8);
  auto data = parseChunkReply(reply, asked);
  ASSERT_TRUE(data) << data.error().message();
  EXPECT_EQ(data->size(), 8u);
  EXPECT_EQ(data->substr(0, 4), "abc\n");
  // The last chunk may be shorter than asked.
  auto shorter = parseChunkReply(chunkDataHead(1024, 3) + "abc", asked);
  ASSERT_TRUE(shorter);
  EXPECT_EQ(*shorter, "abc");
}

TEST(RemoteProtocolTest, ChunkReplyThatIsNotWhatWasAskedIsRefused) {
  ChunkRequest asked{.handle = std::string(kHandle), .offset = 1024, .length = 8};
  expectRefused(statusOf(parseChunkReply("", asked)), "does not start with");
  expectRefused(statusOf(parseChunkReply("HTTP/1.1 200 OK\n", asked)), "does not start with");
  expectRefused(statusOf(parseChunkReply("FLBLOB1 data 1024 8", asked)), "no head line");
  expectRefused(statusOf(parseChunkReply(chunkDataHead(0, 8) + "12345678", asked)),
                "at offset 0, asked for 1024");
  expectRefused(statusOf(parseChunkReply(chunkDataHead(1024, 9) + "123456789", asked)),
                "asked for 1 to 8");
  expectRefused(statusOf(parseChunkReply(chunkDataHead(1024, 0), asked)), "asked for 1 to 8");
  expectRefused(statusOf(parseChunkReply(chunkDataHead(1024, 8) + "1234567", asked)),
                "says 8 bytes but carries 7");
  expectRefused(statusOf(parseChunkReply(chunkDataHead(1024, 8) + "123456789", asked)),
                "says 8 bytes but carries 9");
  expectRefused(statusOf(parseChunkReply("FLBLOB1 data x 8\n12345678", asked)), "head is not");
  expectRefused(statusOf(parseChunkReply("FLBLOB1 stuff 1024 8\n12345678", asked)),
                "expected \"data\" or \"error\"");
  expectRefused(statusOf(parseChunkReply("FLBLOB1 error weird message\n", asked)),
                "unknown error kind");
}

TEST(RemoteProtocolTest, ChunkErrorsCarryTheHoldersReasonCleaned) {
  ChunkRequest asked{.handle = std::string(kHandle), .offset = 0, .length = 8};
  auto gone = parseChunkReply(chunkError(true, "no blob with handle"), asked);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(gone.error().message(), "holder: no blob with handle");
  auto failed = parseChunkReply(chunkError(false, "disk \x1b[31mbroken\n"), asked);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(failed.error().message(), "holder: disk ?[31mbroken?");
  auto long_error = parseChunkReply(chunkError(false, std::string(5000, 'x')), asked);
  ASSERT_FALSE(long_error);
  EXPECT_LE(long_error.error().message().size(), kMaxErrorMessageBytes + 16);
}

}  // namespace
}  // namespace fleetlet::remote
