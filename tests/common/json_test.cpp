#include "json/json.h"

#include <gtest/gtest.h>

namespace fleetlet {
namespace {

TEST(Json, MalformedNamesWhatAndWhere) {
  auto r = parseJson("{\"a\": ", "manifest");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("manifest: malformed JSON at byte"), std::string::npos);
}

TEST(Json, OutOfRangeNumberIsAnErrorNotAnException) {
  auto r = parseJson("4e722", "config");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("config: "), std::string::npos);
}

TEST(Json, RequiredFieldsNameThePath) {
  auto j = parseJson(R"({"size": "12", "layers": {}})", "m").value();
  EXPECT_EQ(requireInt(j, "size", "manifest").error().message(),
            "manifest.size: expected an integer, got string");
  EXPECT_EQ(requireString(j, "digest", "manifest").error().message(), "manifest.digest: missing");
  EXPECT_EQ(requireArray(j, "layers", "manifest").error().message(),
            "manifest.layers: expected an array, got object");
  EXPECT_EQ(requireObject(j, "layers", "manifest").value(), &j["layers"]);
}

TEST(Json, OptionalStringAbsentOrTyped) {
  auto j = parseJson(R"({"a": "x", "b": 1})", "m").value();
  EXPECT_EQ(optionalString(j, "a", "m").value(), "x");
  EXPECT_FALSE(optionalString(j, "z", "m").value().has_value());
  EXPECT_FALSE(optionalString(j, "b", "m"));
}

}  // namespace
}  // namespace fleetlet
