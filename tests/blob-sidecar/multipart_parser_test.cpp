#include "multipart/multipart_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace fleetlet::multipart {
namespace {

struct Part {
  PartHeaders headers;
  std::string body;
  bool ended = false;
};

class Recorder : public PartSink {
 public:
  Status onPartBegin(const PartHeaders& headers) override {
    parts.push_back({headers, "", false});
    return Status();
  }
  Status onPartData(std::string_view data) override {
    EXPECT_FALSE(data.empty());
    parts.back().body.append(data);
    ++pieces;
    return Status();
  }
  Status onPartEnd() override {
    parts.back().ended = true;
    return Status();
  }
  std::vector<Part> parts;
  int pieces = 0;
};

const std::string kBody =
    "preamble to ignore\r\n"
    "--AaB03x\r\n"
    "Content-Disposition: form-data; name=\"metadata\"\r\n"
    "Content-Type: application/json\r\n"
    "\r\n"
    "{\"semantics\":\"s\"}\r\n"
    "--AaB03x\r\n"
    "Content-Disposition: form-data; name=\"blob\"; filename=\"photo.jpg\"\r\n"
    "Content-Type: image/jpeg\r\n"
    "\r\n"
    "\xff\xd8 binary \r\n-- not a boundary \r\n--AaB03 neither\r\n\xff\xd9\r\n"
    "--AaB03x--\r\n"
    "epilogue";

// Feeds `body` split at the given chunk size.
Result<std::vector<Part>> parse(const std::string& body, std::size_t chunk,
                                const std::string& boundary = "AaB03x") {
  Recorder recorder;
  MultipartParser parser(boundary, recorder);
  for (std::size_t i = 0; i < body.size(); i += chunk) {
    FLEETLET_RETURN_IF_ERROR(parser.feed(std::string_view(body).substr(i, chunk)));
  }
  FLEETLET_RETURN_IF_ERROR(parser.finish());
  return recorder.parts;
}

TEST(MultipartParserTest, ParsesPartsWhateverTheChunking) {
  for (std::size_t chunk : {1u, 2u, 3u, 5u, 7u, 11u, 64u, 4096u}) {
    auto parts = parse(kBody, chunk);
    ASSERT_TRUE(parts) << "chunk " << chunk << ": " << parts.error().message();
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].headers.name, "metadata");
    EXPECT_EQ((*parts)[0].headers.content_type, "application/json");
    EXPECT_EQ((*parts)[0].body, "{\"semantics\":\"s\"}");
    EXPECT_EQ((*parts)[1].headers.name, "blob");
    EXPECT_EQ((*parts)[1].headers.filename, "photo.jpg");
    EXPECT_EQ((*parts)[1].headers.content_type, "image/jpeg");
    EXPECT_EQ((*parts)[1].body,
              "\xff\xd8 binary \r\n-- not a boundary \r\n--AaB03 neither\r\n\xff\xd9");
    EXPECT_TRUE((*parts)[1].ended);
  }
}

TEST(MultipartParserTest, BoundaryAtTheVeryStartAndEmptyBodies) {
  std::string body =
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nx\r\n--b--";
  auto parts = parse(body, 1, "b");
  ASSERT_TRUE(parts) << parts.error().message();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].headers.name, "a");
  EXPECT_EQ((*parts)[0].body, "");
  EXPECT_EQ((*parts)[1].body, "x");
}

TEST(MultipartParserTest, TransportPaddingAfterBoundaryIsAllowed) {
  std::string body = "--b \t\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--b--\r\n";
  auto parts = parse(body, 3, "b");
  ASSERT_TRUE(parts) << parts.error().message();
  EXPECT_EQ((*parts)[0].body, "v");
}

TEST(MultipartParserTest, LargeBodyStreamsWithoutBuffering) {
  std::string payload(1 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : payload) c = static_cast<char>(rng() % 4 == 0 ? '\r' : rng() & 0xff);
  std::string body =
      "--zz\r\nContent-Disposition: form-data; name=\"blob\"\r\n\r\n" + payload + "\r\n--zz--\r\n";
  Recorder recorder;
  MultipartParser parser("zz", recorder);
  for (std::size_t i = 0; i < body.size(); i += 65536) {
    ASSERT_TRUE(parser.feed(std::string_view(body).substr(i, 65536)));
  }
  ASSERT_TRUE(parser.finish());
  ASSERT_EQ(recorder.parts.size(), 1u);
  EXPECT_TRUE(recorder.parts[0].body == payload);
}

TEST(MultipartParserTest, MalformedBodiesNameTheProblem) {
  struct Case {
    std::string body;
    std::string message;
  };
  std::vector<Case> cases = {
      {"no boundary here at all", "no boundary line"},
      {"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated", "before the closing"},
      {"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "no Content-Disposition"},
      {"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "no name"},
      {"--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--", "expected form-data"},
      {"--b\r\nno colon line\r\n\r\nx\r\n--b--", "malformed header line"},
      {"--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--b--", "unterminated"},
      {"--bX\r\n", "must end with CRLF"},
      {"--b\r\nContent-Disposition: form-data; name=a\r\n", "inside the headers"},
      {"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b", "without the closing"},
      {"--b\r\nX: a\r\n folded\r\n\r\n", "folding"},
  };
  for (const Case& c : cases) {
    auto parts = parse(c.body, 4, "b");
    ASSERT_FALSE(parts) << c.body;
    EXPECT_EQ(parts.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parts.error().message().find(c.message), std::string::npos)
        << c.body << " → " << parts.error().message();
  }
}

TEST(MultipartParserTest, HeaderBlockAndPartCountAreBounded) {
  std::string big =
      "--b\r\nContent-Disposition: form-data; name=a\r\nX: " + std::string(20000, 'x') +
      "\r\n\r\nv\r\n--b--";
  auto parts = parse(big, 1000, "b");
  ASSERT_FALSE(parts);
  EXPECT_NE(parts.error().message().find("exceed"), std::string::npos);

  std::string many;
  for (int i = 0; i < 20; ++i) many += "--b\r\nContent-Disposition: form-data; name=p\r\n\r\n\r\n";
  many += "--b--";
  parts = parse(many, 64, "b");
  ASSERT_FALSE(parts);
  EXPECT_NE(parts.error().message().find("more than 16 parts"), std::string::npos);
}

TEST(MultipartParserTest, SinkErrorsStopTheParser) {
  class Failing : public Recorder {
    Status onPartData(std::string_view) override {
      return fail(ErrorCode::kResourceExhausted, "quota");
    }
  } sink;
  MultipartParser parser("b", sink);
  auto status = parser.feed("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_FALSE(parser.feed("more"));
  EXPECT_FALSE(parser.finish());
}

TEST(MultipartParserTest, EpilogueIsIgnored) {
  auto parts = parse(kBody + "\r\n--AaB03x\r\nContent-Disposition: form-data; name=x\r\n\r\n", 9);
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->size(), 2u);
}

TEST(BoundaryTest, FromContentType) {
  EXPECT_EQ(boundaryFromContentType("multipart/form-data; boundary=abc").value(), "abc");
  EXPECT_EQ(boundaryFromContentType("Multipart/Form-Data;boundary=\"a b:c\"").value(), "a b:c");
  EXPECT_EQ(
      boundaryFromContentType("multipart/form-data; charset=utf-8; boundary=----WebKitX").value(),
      "----WebKitX");
  auto missing = boundaryFromContentType("multipart/form-data");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("no boundary"), std::string::npos);
  auto other = boundaryFromContentType("application/json");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("expected multipart/form-data"), std::string::npos);
  EXPECT_FALSE(boundaryFromContentType(""));
  EXPECT_FALSE(boundaryFromContentType("multipart/form-data; boundary="));
  EXPECT_FALSE(boundaryFromContentType("multipart/form-data; boundary=" + std::string(71, 'a')));
  EXPECT_FALSE(boundaryFromContentType("multipart/form-data; boundary=\"a\r\nb\""));
}

}  // namespace
}  // namespace fleetlet::multipart
