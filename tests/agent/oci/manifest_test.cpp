#include "oci/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oci/media_types.h"

namespace fleetlet::oci {
namespace {

using ::testing::HasSubstr;
namespace mt = media_type;

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');

std::string descriptorJson(std::string_view media_type, const std::string& digest, int size,
                           std::string_view extra = "") {
  return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{}{}}})", media_type, digest, size,
                     extra);
}

std::string manifestJson(std::string_view media_type_member = "", std::string layers = "") {
  if (layers.empty()) {
    layers = descriptorJson(mt::kOciLayerGzip, kD2, 100) + "," +
             descriptorJson(mt::kOciLayer, kD3, 200, R"(,"annotations":{"a":"b"})");
  }
  return fmt::format(R"({{"schemaVersion":2,{}"config":{},"layers":[{}]}})", media_type_member,
                     descriptorJson(mt::kOciConfig, kD1, 10), layers);
}

std::string indexJson(std::string_view media_type_member, std::string entries) {
  return fmt::format(R"({{"schemaVersion":2,{}"manifests":[{}]}})", media_type_member, entries);
}

void expectInvalid(const Result<Manifest>& r, std::string_view text) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr(std::string(text)));
}

TEST(ManifestTest, ParsesOciManifest) {
  auto m =
      parseManifest(manifestJson(R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)"));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->media_type, mt::kOciManifest);
  EXPECT_EQ(m->config.digest, kD1);
  EXPECT_EQ(m->config.size, 10);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].media_type, mt::kOciLayerGzip);
  EXPECT_EQ(m->layers[1].size, 200);
  EXPECT_EQ(m->layers[1].annotations.at("a"), "b");
}

TEST(ManifestTest, MissingMediaTypeTakesHintOrDefault) {
  auto plain = parseManifest(manifestJson());
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->media_type, mt::kOciManifest);
  auto hinted = parseManifest(manifestJson(), mt::kDockerManifest);
  ASSERT_TRUE(hinted);
  EXPECT_EQ(hinted->media_type, mt::kDockerManifest);
  auto generic = parseManifest(manifestJson(), "application/json");
  ASSERT_TRUE(generic);
  EXPECT_EQ(generic->media_type, mt::kOciManifest);
}

TEST(ManifestTest, ParsesDockerSchema2WithForeignLayer) {
  std::string layers = descriptorJson(mt::kDockerLayerGzip, kD2, 5) + "," +
                       descriptorJson(mt::kDockerForeignLayerGzip, kD3, 6,
                                      R"(,"urls":["https://example.com/l.tgz"])");
  std::string doc =
      fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}})",
                  mt::kDockerManifest, descriptorJson(mt::kDockerConfig, kD1, 7), layers);
  auto m = parseManifest(doc, mt::kDockerManifest);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->layers[1].urls, std::vector<std::string>{"https://example.com/l.tgz"});
  auto type = mt::classifyLayer(m->layers[1].media_type);
  ASSERT_TRUE(type);
  EXPECT_TRUE(type->foreign);
  EXPECT_EQ(type->compression, mt::Compression::kGzip);
}

TEST(ManifestTest, BadManifestsNameTheirProblem) {
  expectInvalid(parseManifest("{"), "manifest: malformed JSON");
  // nlohmann throws out_of_range for this one; it must come back as an error, not a throw.
  expectInvalid(parseManifest(R"({"schemaVersion":2,"x":4e722})"), "manifest: malformed JSON");
  expectInvalid(parseManifest("[]"), "manifest: expected an object, got array");
  expectInvalid(parseManifest(R"({"config":{}})"), "manifest.schemaVersion: missing");
  expectInvalid(parseManifest(R"({"schemaVersion":"2"})"),
                "manifest.schemaVersion: expected an integer, got string");
  expectInvalid(parseManifest(R"({"schemaVersion":3})"),
                "manifest.schemaVersion: expected 2, got 3");
  expectInvalid(parseManifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})"),
                "unsupported Docker schema1 manifest");
  expectInvalid(parseManifest(manifestJson(), mt::kDockerSchema1SignedManifest),
                "unsupported Docker schema1 manifest");
  expectInvalid(parseManifest(manifestJson(
                    R"("mediaType":"application/vnd.docker.distribution.manifest.v1+json",)")),
                "unsupported Docker schema1 manifest");
  expectInvalid(parseManifest(R"({"schemaVersion":2,"layers":[]})"), "manifest.config: missing");
  expectInvalid(parseManifest(fmt::format(R"({{"schemaVersion":2,"config":{}}})",
                                          descriptorJson(mt::kOciConfig, kD1, 1))),
                "manifest.layers: missing");
  expectInvalid(parseManifest(manifestJson("", descriptorJson(mt::kOciLayer, kD2, 1) + "," +
                                                   descriptorJson(mt::kOciLayer, kD2, 1) + "," +
                                                   descriptorJson(mt::kOciLayer, "sha256:12", 1))),
                "manifest.layers[2].digest: invalid digest \"sha256:12\"");
  expectInvalid(parseManifest(manifestJson("", descriptorJson(mt::kOciLayer, kD2, -1))),
                "manifest.layers[0].size: must not be negative, got -1");
  expectInvalid(parseManifest(manifestJson(
                    "", R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
                            kD2 + R"(","size":1.5})")),
                "manifest.layers[0].size: expected an integer, got number");
  expectInvalid(parseManifest(manifestJson("", R"({"digest":")" + kD2 + R"(","size":1})")),
                "manifest.layers[0].mediaType: missing");
  expectInvalid(parseManifest(manifestJson("", descriptorJson("text/plain", kD2, 1))),
                "manifest.layers[0].mediaType: unsupported layer media type \"text/plain\"");
  expectInvalid(
      parseManifest(manifestJson("", descriptorJson(mt::kOciLayer, kD2, 1, R"(,"urls":[1])"))),
      "manifest.layers[0].urls[0]: expected a string, got integer");
  expectInvalid(parseManifest(manifestJson(
                    "", descriptorJson(mt::kOciLayer, kD2, 1, R"(,"annotations":{"k":true})"))),
                "manifest.layers[0].annotations.k: expected a string, got boolean");
  expectInvalid(parseManifest(manifestJson("", "7")),
                "manifest.layers[0]: expected an object, got integer");
  expectInvalid(
      parseManifest(manifestJson(R"("mediaType":"application/vnd.oci.image.index.v1+json",)")),
      "manifest.mediaType: \"application/vnd.oci.image.index.v1+json\" is not an image manifest");
  expectInvalid(
      parseManifest(manifestJson(R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)"),
                    mt::kDockerManifest),
      "contradicts the descriptor's");
  expectInvalid(parseManifest(manifestJson(), mt::kOciIndex), "expected an image manifest");
  expectInvalid(
      parseManifest(fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[]}})",
                                descriptorJson("application/vnd.cncf.helm.config", kD1, 1))),
      "manifest.config.mediaType: \"application/vnd.cncf.helm.config\" is not an image config");
  expectInvalid(parseManifest(R"({"schemaVersion":2,"manifests":[]})"), "this is an index");
}

TEST(IndexTest, ParsesIndexWithPlatforms) {
  std::string entries =
      descriptorJson(mt::kOciManifest, kD1, 1,
                     R"(,"platform":{"os":"linux","architecture":"amd64"})") +
      "," +
      descriptorJson(
          mt::kOciManifest, kD2, 2,
          R"(,"platform":{"os":"linux","architecture":"arm","variant":"v7","os.features":["x"]})");
  auto index =
      parseIndex(indexJson(R"("mediaType":"application/vnd.oci.image.index.v1+json",)", entries));
  ASSERT_TRUE(index) << index.error().message();
  EXPECT_EQ(index->media_type, mt::kOciIndex);
  ASSERT_EQ(index->manifests.size(), 2u);
  ASSERT_TRUE(index->manifests[1].platform);
  EXPECT_EQ(index->manifests[1].platform->variant, "v7");
  EXPECT_EQ(index->manifests[1].platform->os_features, std::vector<std::string>{"x"});
  auto list = parseIndex(indexJson("", entries), mt::kDockerManifestList);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->media_type, mt::kDockerManifestList);
}

TEST(IndexTest, BadIndexesNameTheirProblem) {
  auto expect = [](const Result<Index>& r, std::string_view text) {
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message(), HasSubstr(std::string(text)));
  };
  expect(parseIndex(R"({"schemaVersion":2})"), "index.manifests: missing");
  expect(parseIndex(R"({"schemaVersion":2,"manifests":{}})"),
         "index.manifests: expected an array, got object");
  expect(parseIndex(indexJson(
             "", descriptorJson(mt::kOciManifest, kD1, 1, R"(,"platform":{"os":"linux"})"))),
         "index.manifests[0].platform.architecture: missing");
  expect(
      parseIndex(indexJson("", descriptorJson(mt::kOciManifest, kD1, 1,
                                              R"(,"platform":{"os":"linux","architecture":""})"))),
      "index.manifests[0].platform.architecture: must not be empty");
  expect(parseIndex(indexJson("", descriptorJson(mt::kOciManifest, "sha256:zz", 1))),
         "index.manifests[0].digest");
  expect(parseIndex(manifestJson()), "this is an image manifest, not an index");
  expect(parseIndex(indexJson(
             R"("mediaType":"application/vnd.docker.distribution.manifest.v2+json",)", "")),
         "is not an image index");
}

TEST(DetectTest, SniffsIndexAndManifest) {
  EXPECT_EQ(detectManifestType(manifestJson()).value(), mt::kOciManifest);
  EXPECT_EQ(detectManifestType(indexJson("", "")).value(), mt::kOciIndex);
  EXPECT_EQ(detectManifestType(indexJson("", ""), mt::kDockerManifestList).value(),
            mt::kDockerManifestList);
  EXPECT_EQ(detectManifestType(manifestJson(), "application/json").value(), mt::kOciManifest);
  EXPECT_EQ(
      detectManifestType(
          manifestJson(R"("mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"),
          "text/plain")
          .value(),
      mt::kDockerManifest);
  auto schema1 = detectManifestType(R"({"schemaVersion":1,"fsLayers":[]})");
  ASSERT_FALSE(schema1);
  EXPECT_THAT(schema1.error().message(), HasSubstr("unsupported Docker schema1"));
  auto schema1_type = detectManifestType("{}", mt::kDockerSchema1SignedManifest);
  ASSERT_FALSE(schema1_type);
  auto neither = detectManifestType(R"({"schemaVersion":2})");
  ASSERT_FALSE(neither);
  EXPECT_THAT(neither.error().message(), HasSubstr("cannot tell an index from a manifest"));
  auto contradiction = detectManifestType(
      manifestJson(R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)"), mt::kOciIndex);
  ASSERT_FALSE(contradiction);
  EXPECT_THAT(contradiction.error().message(), HasSubstr("contradicts the content type"));
  auto artifact = detectManifestType(R"({"schemaVersion":2,"mediaType":"application/x-foo"})");
  ASSERT_FALSE(artifact);
  EXPECT_THAT(artifact.error().message(),
              HasSubstr("unsupported media type \"application/x-foo\""));
}

constexpr std::string_view kConfig = R"({
  "architecture": "arm", "variant": "v7", "os": "linux",
  "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/app"], "Cmd": null,
             "WorkingDir": "/srv", "User": "1000:1000", "Labels": {"a": "b"},
             "StopSignal": "SIGINT"},
  "rootfs": {"type": "layers", "diff_ids": [
    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
    "sha256:2222222222222222222222222222222222222222222222222222222222222222"]},
  "history": [{"created_by": "x"}]
})";

TEST(ImageConfigTest, ParsesConfig) {
  auto c = parseImageConfig(kConfig);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->os, "linux");
  EXPECT_EQ(c->architecture, "arm");
  EXPECT_EQ(c->variant, "v7");
  EXPECT_EQ(c->diff_ids, (std::vector<std::string>{kD1, kD2}));
  EXPECT_EQ(c->env, std::vector<std::string>{"PATH=/bin"});
  EXPECT_EQ(c->entrypoint, std::vector<std::string>{"/bin/app"});
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_EQ(c->working_dir, "/srv");
  EXPECT_EQ(c->user, "1000:1000");
  EXPECT_EQ(c->stop_signal, "SIGINT");
  EXPECT_EQ(c->labels.at("a"), "b");
  EXPECT_TRUE(c->raw.contains("history"));
  EXPECT_EQ(c->platform().toString(), "linux/arm/v7");

  auto m = parseManifest(manifestJson());
  ASSERT_TRUE(m);
  EXPECT_TRUE(checkLayersMatchConfig(*m, *c));
  m->layers.pop_back();
  auto mismatch = checkLayersMatchConfig(*m, *c);
  ASSERT_FALSE(mismatch);
  EXPECT_THAT(mismatch.error().message(), HasSubstr("1 layers but its config lists 2 diff_ids"));
}

TEST(ImageConfigTest, BadConfigsNameTheirProblem) {
  auto expect = [](std::string_view doc, std::string_view text) {
    auto r = parseImageConfig(doc);
    ASSERT_FALSE(r) << doc;
    EXPECT_THAT(r.error().message(), HasSubstr(std::string(text)));
  };
  expect("nope", "config: malformed JSON at byte");
  expect(R"({"architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}})",
         "config.os: missing");
  expect(R"({"os":"linux","architecture":"amd64"})", "config.rootfs: missing");
  expect(R"({"os":"linux","architecture":"amd64","rootfs":{"type":"tar","diff_ids":[]}})",
         "config.rootfs.type: expected \"layers\", got \"tar\"");
  expect(R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers"}})",
         "config.rootfs.diff_ids: missing");
  expect(
      R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:1"]}})",
      "config.rootfs.diff_ids[0]: invalid digest");
  expect(R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[3]}})",
         "config.rootfs.diff_ids[0]: expected a string, got integer");
  expect(
      R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":"A=1"}})",
      "config.config.Env: expected an array, got string");
  expect(
      R"({"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]},"config":[]})",
      "config.config: expected an object, got array");
}

}  // namespace
}  // namespace fleetlet::oci
