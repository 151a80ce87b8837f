#include "api/upload_metadata.h"

#include <gtest/gtest.h>

namespace fleetlet::api {
namespace {

TEST(UploadMetadataTest, ParsesTheDocumentedShape) {
  auto meta = parseUploadMetadata(
      R"({"semantics":"com.myapp.quality-inspection-photos","retentionPolicy":{"policy":"keepUntilTime","until":28499383002}})");
  ASSERT_TRUE(meta) << meta.error().message();
  EXPECT_EQ(meta->semantics, "com.myapp.quality-inspection-photos");
  EXPECT_EQ(meta->retention.kind, retention::PolicyKind::kKeepUntilTime);
}

TEST(UploadMetadataTest, ErrorsNameTheProblem) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (Case c :
       {Case{"{semantics:", "metadata is not JSON"}, Case{"[]", "metadata: expected a JSON object"},
        Case{R"({"retentionPolicy":{"policy":"keepForever"}})", "metadata.semantics"},
        Case{R"({"semantics":"","retentionPolicy":{"policy":"keepForever"}})", "must not be empty"},
        Case{R"({"semantics":"s"})", "metadata.retentionPolicy"},
        Case{R"({"semantics":"s","retentionPolicy":{"policy":"x"}})", "unknown policy"}}) {
    auto meta = parseUploadMetadata(c.text);
    ASSERT_FALSE(meta) << c.text;
    EXPECT_EQ(meta.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(meta.error().message().find(c.message), std::string::npos)
        << c.text << " → " << meta.error().message();
  }
}

}  // namespace
}  // namespace fleetlet::api
