#include "manifest/yaml_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fleetlet::manifest {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Json yaml(std::string_view text) {
  auto j = yamlToJson(text);
  EXPECT_TRUE(j) << j.error().message();
  return j ? *j : Json();
}

std::string yamlError(std::string_view text) {
  auto j = manifestToJson(text);
  EXPECT_FALSE(j) << "parsed: " << (j ? j->dump() : "");
  return j ? "" : j.error().message();
}

TEST(YamlJsonTest, PlainScalarsTypedBySpellingNotYaml11Guessing) {
  Json j = yaml(
      "a: on\nb: yes\nc: 010\nd: 0.5\ne: 8080\nf: true\ng: ~\nh:\ni: 0x1F\nj: .5\nk: 64Mi\n"
      "l: -1e3\nm: False\nn: NULL\no: +1\np: .inf\nq: 1_000\n");
  EXPECT_EQ(j["a"], "on");
  EXPECT_EQ(j["b"], "yes");
  EXPECT_EQ(j["c"], "010");
  EXPECT_TRUE(j["d"].is_number_float());
  EXPECT_EQ(j["d"], 0.5);
  EXPECT_TRUE(j["e"].is_number_integer());
  EXPECT_EQ(j["e"], 8080);
  EXPECT_EQ(j["f"], true);
  EXPECT_TRUE(j["g"].is_null());
  EXPECT_TRUE(j["h"].is_null());
  EXPECT_EQ(j["i"], "0x1F");
  EXPECT_EQ(j["j"], ".5");
  EXPECT_EQ(j["k"], "64Mi");
  EXPECT_EQ(j["l"], -1000.0);
  EXPECT_EQ(j["m"], false);
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_EQ(j["o"], "+1");
  EXPECT_EQ(j["p"], ".inf");
  EXPECT_EQ(j["q"], "1_000");
}

TEST(YamlJsonTest, QuotedBlockAndStrTaggedScalarsAreStrings) {
  Json j = yaml("a: \"8080\"\nb: 'true'\nc: !!str 10\nd: |\n  line\ne: ''\nf: \"~\"\n");
  EXPECT_EQ(j["a"], "8080");
  EXPECT_EQ(j["b"], "true");
  EXPECT_EQ(j["c"], "10");
  EXPECT_EQ(j["d"], "line\n");
  EXPECT_EQ(j["e"], "");
  EXPECT_EQ(j["f"], "~");
}

TEST(YamlJsonTest, KeysAreAlwaysStrings) {
  Json j = yaml("1: a\non: b\ntrue: c\n");
  EXPECT_EQ(j["1"], "a");
  EXPECT_EQ(j["on"], "b");
  EXPECT_EQ(j["true"], "c");
}

TEST(YamlJsonTest, JsonAndYamlGiveTheSameValues) {
  const std::string json =
      R"({"a": [1, 2.5, "x", true, null], "b": {"c": -3, "d": "010"}, "e": 1e2})";
  auto from_json = manifestToJson(json);
  ASSERT_TRUE(from_json) << from_json.error().message();
  Json from_yaml = yaml("a: [1, 2.5, x, true, ~]\nb:\n  c: -3\n  d: '010'\ne: 1e2\n");
  EXPECT_EQ(*from_json, from_yaml);
  // The JSON text read as YAML (it is also valid YAML) gives the same too.
  EXPECT_EQ(yaml(json), from_yaml);
}

TEST(YamlJsonTest, DocumentsStartingWithABraceAreJson) {
  EXPECT_THAT(yamlError("{a: 1, b: [x]}"), StartsWith("line 1, column 2: malformed JSON"));
  EXPECT_THAT(yamlError("\xEF\xBB\xBF  \n{\"a\": 1,}"), HasSubstr("malformed JSON"));
}

TEST(YamlJsonTest, ErrorsCarryLineAndColumn) {
  EXPECT_THAT(yamlError("a: 1\nb: [1, 2\n"), StartsWith("line 3, column 1: "));
  EXPECT_THAT(yamlError("a: 1\nb: c: d\n"), StartsWith("line 2, column "));
  EXPECT_THAT(yamlError("{\"a\": 1,\n \"b\": }"), StartsWith("line 2, column 7: malformed JSON"));
}

TEST(YamlJsonTest, RejectsDuplicateKeys) {
  EXPECT_EQ(yamlError("a: 1\nb: 2\na: 3\n"), "line 3, column 1: duplicate key \"a\"");
  EXPECT_EQ(yamlError("{\"a\": 1, \"a\": 2}"), "duplicate key \"a\"");
  EXPECT_THAT(yamlError("x:\n  y: 1\n  y: 2\n"), HasSubstr("duplicate key \"y\""));
}

TEST(YamlJsonTest, RejectsAliasesTagsComplexKeysAndSeveralDocuments) {
  EXPECT_THAT(yamlError("a: &x [1]\nb: *x\n"), HasSubstr("aliases (*name) are not supported"));
  EXPECT_THAT(yamlError("a: !!int 1\n"), HasSubstr("unsupported tag"));
  EXPECT_THAT(yamlError("a: !custom {b: 1}\n"), HasSubstr("unsupported tag \"!custom\""));
  EXPECT_THAT(yamlError("? [1]\n: 2\n"), HasSubstr("only scalar mapping keys"));
  EXPECT_FALSE(manifestToJson("? \n: 2\n"));
  EXPECT_EQ(yamlError("a: 1\n---\nb: 2\n"), "manifest has more than one YAML document");
  EXPECT_EQ(yamlError(""), "manifest is empty");
  EXPECT_EQ(yamlError("# only a comment\n"), "manifest is empty");
  EXPECT_EQ(yamlError("a: \"\xff\"\n"), "manifest is not valid UTF-8");
  EXPECT_THAT(yamlError(std::string(kMaxManifestBytes + 1, ' ')), HasSubstr("larger than"));
}

TEST(YamlJsonTest, AnchorsWithoutAliasesAreFine) {
  Json j = yaml("a: &x [1]\n");
  EXPECT_EQ(j["a"], Json::array({1}));
}

TEST(YamlJsonTest, HostileNestingFailsCleanly) {
  EXPECT_FALSE(manifestToJson(std::string(100000, '[')));
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "- ";
  deep += "x\n";
  (void)manifestToJson(deep);  // must not crash; either result is acceptable
  std::string deep_json;
  for (int i = 0; i < 20000; ++i) deep_json += "{\"a\":";
  EXPECT_FALSE(manifestToJson(deep_json));
}

}  // namespace
}  // namespace fleetlet::manifest
