// Integration tests of RegistryClient against a real docker-registry on 127.0.0.1 (and a
// scripted server for bearer tokens, ignored Range, redirects and garbage answers).
#include "registry/registry_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "local_registry.h"
#include "oci/digest.h"
#include "oci/media_types.h"

namespace fleetlet::registry {
namespace {

using ::testing::HasSubstr;
using testing::LocalRegistry;
using testing::ScriptedRequest;
using testing::ScriptedServer;
using ::testing::StartsWith;
namespace mt = oci::media_type;

std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string descriptorJson(const oci::Descriptor& d, std::string_view extra = "") {
  return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{}{}}})", d.media_type, d.digest,
                     d.size, extra);
}

oci::Reference parseRef(const std::string& text) {
  auto r = oci::Reference::parse(text);
  EXPECT_TRUE(r) << r.error().message();
  return *r;
}

RegistryOptions plain() {
  RegistryOptions o;
  o.plain_http = true;
  return o;
}

// One image pushed as: layer + config + manifest (tag "1"), an arm64 variant, and an index
// over both (tag "multi").
struct PushedImage {
  std::string layer;
  oci::Descriptor layer_desc;
  oci::Descriptor config_desc;
  std::string manifest;
  oci::Descriptor manifest_desc;
  oci::Descriptor arm_manifest_desc;
  std::string index;
  oci::Descriptor index_desc;
};

Result<PushedImage> pushImage(LocalRegistry& registry, const std::string& repo) {
  PushedImage img;
  img.layer = randomBytes(1 << 20, 7);
  FLEETLET_ASSIGN_OR_RETURN(img.layer_desc,
                            registry.pushBlob(repo, img.layer, std::string(mt::kOciLayer)));
  auto pushConfig = [&](std::string_view arch) {
    std::string config = fmt::format(
        R"({{"architecture":"{}","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}})",
        arch, img.layer_desc.digest);
    return registry.pushBlob(repo, config, std::string(mt::kOciConfig));
  };
  FLEETLET_ASSIGN_OR_RETURN(img.config_desc, pushConfig("amd64"));
  FLEETLET_ASSIGN_OR_RETURN(oci::Descriptor arm_config, pushConfig("arm64"));
  auto manifestFor = [&](const oci::Descriptor& config) {
    return fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}})",
                       mt::kOciManifest, descriptorJson(config), descriptorJson(img.layer_desc));
  };
  img.manifest = manifestFor(img.config_desc);
  FLEETLET_ASSIGN_OR_RETURN(
      img.manifest_desc,
      registry.pushManifest(repo, "1", img.manifest, std::string(mt::kOciManifest)));
  FLEETLET_ASSIGN_OR_RETURN(
      img.arm_manifest_desc,
      registry.pushManifest(repo, "arm", manifestFor(arm_config), std::string(mt::kOciManifest)));
  img.index = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{},{}]}})", mt::kOciIndex,
      descriptorJson(img.arm_manifest_desc,
                     R"(,"platform":{"os":"linux","architecture":"arm64","variant":"v8"})"),
      descriptorJson(img.manifest_desc, R"(,"platform":{"os":"linux","architecture":"amd64"})"));
  FLEETLET_ASSIGN_OR_RETURN(
      img.index_desc, registry.pushManifest(repo, "multi", img.index, std::string(mt::kOciIndex)));
  return img;
}

class RegistryClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = LocalRegistry::start();
    if (!r) {
      setup_error_ = new std::string(r.error().message());
      return;
    }
    registry_ = r->release();
    auto img = pushImage(*registry_, "acme/x");
    if (!img) {
      setup_error_ = new std::string(img.error().message());
      return;
    }
    image_ = new PushedImage(std::move(*img));
  }
  static void TearDownTestSuite() {
    delete image_;
    delete registry_;
    delete setup_error_;
    image_ = nullptr;
    registry_ = nullptr;
    setup_error_ = nullptr;
  }
  void SetUp() override {
    // A registry that cannot start (docker-registry missing included: hack/install-deps.sh
    // installs it) is a failure, not a reason to skip.
    if (setup_error_ != nullptr) FAIL() << *setup_error_;
  }
  std::string host() const { return registry_->host(); }

  static LocalRegistry* registry_;
  static PushedImage* image_;
  static std::string* setup_error_;
};
LocalRegistry* RegistryClientTest::registry_ = nullptr;
PushedImage* RegistryClientTest::image_ = nullptr;
std::string* RegistryClientTest::setup_error_ = nullptr;

TEST_F(RegistryClientTest, ResolvesTagAndDigest) {
  RegistryClient client(host(), plain());
  auto by_tag = client.resolve(parseRef(host() + "/acme/x:1"));
  ASSERT_TRUE(by_tag) << by_tag.error().message();
  EXPECT_EQ(by_tag->descriptor.media_type, mt::kOciManifest);
  EXPECT_EQ(by_tag->descriptor.digest, image_->manifest_desc.digest);
  EXPECT_EQ(by_tag->descriptor.size, static_cast<int64_t>(image_->manifest.size()));
  EXPECT_EQ(by_tag->bytes, image_->manifest);

  auto by_digest = client.resolve(parseRef(host() + "/acme/x@" + image_->manifest_desc.digest));
  ASSERT_TRUE(by_digest) << by_digest.error().message();
  EXPECT_EQ(by_digest->descriptor, by_tag->descriptor);
  EXPECT_EQ(by_digest->bytes, image_->manifest);
}

TEST_F(RegistryClientTest, SelectsPlatformFromIndexAndFetchesConfig) {
  RegistryClient client(host(), plain());
  auto top = client.resolve(parseRef(host() + "/acme/x:multi"));
  ASSERT_TRUE(top) << top.error().message();
  EXPECT_EQ(top->descriptor.media_type, mt::kOciIndex);
  auto index = oci::parseIndex(top->bytes, top->descriptor.media_type);
  ASSERT_TRUE(index) << index.error().message();

  auto amd64 = oci::selectManifest(*index, oci::Platform{"linux", "x86_64", "", "", {}});
  ASSERT_TRUE(amd64) << amd64.error().message();
  EXPECT_EQ(amd64->digest, image_->manifest_desc.digest);
  auto arm64 = oci::selectManifest(*index, oci::Platform{"linux", "aarch64", "", "", {}});
  ASSERT_TRUE(arm64);
  EXPECT_EQ(arm64->digest, image_->arm_manifest_desc.digest);

  auto bytes = client.fetchManifest("acme/x", *amd64);
  ASSERT_TRUE(bytes) << bytes.error().message();
  auto manifest = oci::parseManifest(*bytes, amd64->media_type);
  ASSERT_TRUE(manifest) << manifest.error().message();
  auto config_bytes = client.fetchBlob("acme/x", manifest->config);
  ASSERT_TRUE(config_bytes) << config_bytes.error().message();
  auto config = oci::parseImageConfig(*config_bytes);
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->architecture, "amd64");
  EXPECT_EQ(config->diff_ids, std::vector<std::string>{image_->layer_desc.digest});
  EXPECT_TRUE(oci::checkLayersMatchConfig(*manifest, *config));
}

TEST_F(RegistryClientTest, StreamsBlobFullyAndResumed) {
  RegistryClient client(host(), plain());
  std::string full;
  auto ok = client.streamBlob("acme/x", image_->layer_desc, 0, [&](std::string_view chunk) {
    full.append(chunk);
    return Status();
  });
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(full, image_->layer);

  for (uint64_t offset : {uint64_t{1}, uint64_t{12345}, uint64_t{(1 << 20) - 1}}) {
    std::string tail;
    auto resumed =
        client.streamBlob("acme/x", image_->layer_desc, offset, [&](std::string_view chunk) {
          tail.append(chunk);
          return Status();
        });
    ASSERT_TRUE(resumed) << resumed.error().message();
    EXPECT_EQ(tail, image_->layer.substr(offset)) << "offset " << offset;
  }
  // Already complete: nothing to fetch.
  bool called = false;
  EXPECT_TRUE(
      client.streamBlob("acme/x", image_->layer_desc, image_->layer.size(), [&](std::string_view) {
        called = true;
        return Status();
      }));
  EXPECT_FALSE(called);
  auto past = client.streamBlob("acme/x", image_->layer_desc, image_->layer.size() + 1,
                                [](std::string_view) { return Status(); });
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(RegistryClientTest, SinkErrorStopsTheDownload) {
  RegistryClient client(host(), plain());
  size_t received = 0;
  auto stopped = client.streamBlob("acme/x", image_->layer_desc, 0, [&](std::string_view chunk) {
    received += chunk.size();
    return received > 1000 ? Status(fail(ErrorCode::kResourceExhausted, "disk full")) : Status();
  });
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(stopped.error().message(), "disk full");
  EXPECT_LT(received, image_->layer.size());
}

TEST_F(RegistryClientTest, ParallelDownloadsShareOneClient) {
  RegistryClient client(host(), plain());
  constexpr int kThreads = 4;
  std::vector<std::string> results(kThreads);
  std::vector<Status> statuses(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = client.streamBlob("acme/x", image_->layer_desc, static_cast<uint64_t>(i) * 1000,
                                      [&](std::string_view c) {
                                        results[i].append(c);
                                        return Status();
                                      });
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(statuses[i]) << statuses[i].error().message();
    EXPECT_EQ(results[i], image_->layer.substr(static_cast<size_t>(i) * 1000));
  }
}

TEST_F(RegistryClientTest, WrongSizeIsRefused) {
  RegistryClient client(host(), plain());
  oci::Descriptor small = image_->config_desc;
  small.size -= 1;
  auto blob = client.fetchBlob("acme/x", small);
  ASSERT_FALSE(blob);
  EXPECT_EQ(blob.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(blob.error().message(), HasSubstr("larger than"));

  oci::Descriptor layer = image_->layer_desc;
  layer.size -= 10;
  auto streamed = client.streamBlob("acme/x", layer, 0, [](std::string_view) { return Status(); });
  ASSERT_FALSE(streamed);
  EXPECT_THAT(streamed.error().message(), HasSubstr("size mismatch"));
}

TEST_F(RegistryClientTest, UnknownTagIsNotFound) {
  RegistryClient client(host(), plain());
  auto missing = client.resolve(parseRef(host() + "/acme/x:nope"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "manifest unknown: " + host() + "/acme/x:nope");

  oci::Descriptor unknown = image_->config_desc;
  unknown.digest = oci::digestOf("not there");
  auto blob = client.fetchBlob("acme/x", unknown);
  ASSERT_FALSE(blob);
  EXPECT_EQ(blob.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(blob.error().message(), StartsWith("blob unknown: " + host() + "/acme/x@"));

  auto wrong_registry = client.resolve(parseRef("example.com/acme/x:1"));
  ASSERT_FALSE(wrong_registry);
  EXPECT_EQ(wrong_registry.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(RegistryClientTest, UnreachableRegistryIsUnavailable) {
  std::string closed = "127.0.0.1:" + std::to_string(testing::freePort());
  RegistryClient client(closed, plain());
  auto r = client.resolve(parseRef(closed + "/acme/x:1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().message(), StartsWith("registry unreachable: " + closed + ": "));
}

// Runs last in this suite: it corrupts the registry's stored bytes.
TEST_F(RegistryClientTest, ZZTamperedContentIsRefused) {
  auto img = pushImage(*registry_, "acme/tampered");
  ASSERT_TRUE(img) << img.error().message();
  auto flip = [&](const std::string& digest) {
    std::fstream f(registry_->blobDataPath(digest),
                   std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f) << registry_->blobDataPath(digest);
    f.seekg(5);
    char c = 0;
    f.get(c);
    f.seekp(5);
    f.put(static_cast<char>(c ^ 0x20));
  };
  flip(img->manifest_desc.digest);
  flip(img->layer_desc.digest);
  RegistryClient client(host(), plain());

  auto by_tag = client.resolve(parseRef(host() + "/acme/tampered:1"));
  ASSERT_FALSE(by_tag);
  EXPECT_EQ(by_tag.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(by_tag.error().message(), HasSubstr("digest mismatch"));
  auto by_digest = client.resolve(parseRef(host() + "/acme/tampered@" + img->manifest_desc.digest));
  ASSERT_FALSE(by_digest);
  EXPECT_THAT(by_digest.error().message(), HasSubstr("digest mismatch"));
  auto manifest = client.fetchManifest("acme/tampered", img->manifest_desc);
  ASSERT_FALSE(manifest);
  EXPECT_THAT(manifest.error().message(), HasSubstr("digest mismatch"));

  auto layer = client.streamBlob("acme/tampered", img->layer_desc, 0,
                                 [](std::string_view) { return Status(); });
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(layer.error().message(), HasSubstr("digest mismatch"));
}

TEST(RegistryBasicAuthTest, HtpasswdRegistry) {
  auto registry = LocalRegistry::start({.htpasswd_user = std::make_pair("fleet", "s3cr3t")});
  ASSERT_TRUE(registry) << registry.error().message();
  auto img = pushImage(**registry, "acme/private");
  ASSERT_TRUE(img) << img.error().message();
  std::string host = (*registry)->host();
  auto r = parseRef(host + "/acme/private:1");

  RegistryClient anonymous(host, plain());
  auto refused = anonymous.resolve(r);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(refused.error().message(), StartsWith("unauthorized: " + r.toString()));

  RegistryOptions wrong = plain();
  wrong.credentials = Credentials{"fleet", "wrong"};
  RegistryClient bad(host, wrong);
  auto denied = bad.resolve(r);
  ASSERT_FALSE(denied);
  EXPECT_THAT(denied.error().message(), StartsWith("unauthorized: "));

  RegistryOptions good = plain();
  good.credentials = Credentials{"fleet", "s3cr3t"};
  RegistryClient client(host, good);
  auto resolved = client.resolve(r);
  ASSERT_TRUE(resolved) << resolved.error().message();
  EXPECT_EQ(resolved->bytes, img->manifest);
  std::string layer;
  ASSERT_TRUE(client.streamBlob("acme/private", img->layer_desc, 100, [&](std::string_view c) {
    layer.append(c);
    return Status();
  }));
  EXPECT_EQ(layer, img->layer.substr(100));
}

// A registry that wants bearer tokens from its own /token endpoint, ignores Range on blobs,
// redirects blob downloads to /storage/, and answers /v2/broken/ with an HTML error page.
class BearerRegistry {
 public:
  BearerRegistry()
      : manifest_(
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},"layers":[]})"),
        blob_(randomBytes(200000, 3)),
        server_([this](const ScriptedRequest& r) { return handle(r); }) {}

  std::string host() const { return server_.host(); }
  const std::string& manifest() const { return manifest_; }
  const std::string& blob() const { return blob_; }
  int tokenRequests() const {
    int n = 0;
    for (const auto& r : server_.requests()) n += r.target.starts_with("/token") ? 1 : 0;
    return n;
  }
  std::vector<ScriptedRequest> requests() const { return server_.requests(); }

 private:
  std::string handle(const ScriptedRequest& r) {
    auto header = [&](const std::string& name) {
      auto it = r.headers.find(name);
      return it == r.headers.end() ? std::string() : it->second;
    };
    if (r.target.starts_with("/token")) {
      // "fleet:pw"
      if (header("authorization") != "Basic ZmxlZXQ6cHc=") {
        return ScriptedServer::response(
            401, R"({"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]})");
      }
      if (r.target.find("scope=repository%3Aacme%2Fx%3Apull") == std::string::npos) {
        return ScriptedServer::response(400, "wrong scope: " + r.target);
      }
      return ScriptedServer::response(200, R"({"access_token":"tok-1","expires_in":300})");
    }
    if (r.target.starts_with("/storage/")) {
      return ScriptedServer::response(200, blob_);  // ignores Range
    }
    if (r.target.starts_with("/v2/broken/")) {
      return ScriptedServer::response(502, "<html><body>Bad Gateway</body></html>",
                                      {{"Content-Type", "text/html"}});
    }
    if (header("authorization") != "Bearer tok-1") {
      return ScriptedServer::response(
          401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
          {{"WWW-Authenticate",
            fmt::format(
                R"(Bearer realm="http://{}/token",service="fake",scope="repository:acme/x:pull")",
                host())}});
    }
    if (r.target == "/v2/acme/x/manifests/1") {
      return ScriptedServer::response(200, manifest_,
                                      {{"Content-Type", std::string(mt::kOciManifest)},
                                       {"Docker-Content-Digest", oci::digestOf(manifest_)}});
    }
    if (r.target == "/v2/acme/x/manifests/lying") {
      return ScriptedServer::response(200, manifest_,
                                      {{"Content-Type", std::string(mt::kOciManifest)},
                                       {"Docker-Content-Digest", oci::digestOf("other")}});
    }
    if (r.target.starts_with("/v2/acme/x/blobs/")) {
      return ScriptedServer::response(307, "", {{"Location", "/storage/blob"}});
    }
    return ScriptedServer::response(404, R"({"errors":[{"code":"NAME_UNKNOWN"}]})");
  }

  std::string manifest_;
  std::string blob_;
  ScriptedServer server_;
};

TEST(RegistryBearerTest, ChallengeTokenRetryAndReuse) {
  BearerRegistry registry;
  RegistryOptions options = plain();
  options.credentials = Credentials{"fleet", "pw"};
  RegistryClient client(registry.host(), options);
  auto resolved = client.resolve(parseRef(registry.host() + "/acme/x:1"));
  ASSERT_TRUE(resolved) << resolved.error().message();
  EXPECT_EQ(resolved->bytes, registry.manifest());
  EXPECT_EQ(registry.tokenRequests(), 1);

  // The token is reused; the blob is redirected to storage that ignores Range.
  oci::Descriptor blob{"application/octet-stream",
                       oci::digestOf(registry.blob()),
                       static_cast<int64_t>(registry.blob().size()),
                       std::nullopt,
                       {},
                       {}};
  std::string tail;
  auto streamed = client.streamBlob("acme/x", blob, 150000, [&](std::string_view c) {
    tail.append(c);
    return Status();
  });
  ASSERT_TRUE(streamed) << streamed.error().message();
  EXPECT_EQ(tail, registry.blob().substr(150000));
  std::string full;
  ASSERT_TRUE(client.streamBlob("acme/x", blob, 0, [&](std::string_view c) {
    full.append(c);
    return Status();
  }));
  EXPECT_EQ(full, registry.blob());
  EXPECT_EQ(registry.tokenRequests(), 1);
  for (const auto& r : registry.requests()) {
    if (r.target.starts_with("/storage/")) {
      // A same-host redirect keeps the token; what matters is that it was followed.
      EXPECT_EQ(r.method, "GET");
    }
  }
}

TEST(RegistryBearerTest, LyingDigestHeaderIsRefused) {
  BearerRegistry registry;
  RegistryOptions options = plain();
  options.credentials = Credentials{"fleet", "pw"};
  RegistryClient client(registry.host(), options);
  auto lying = client.resolve(parseRef(registry.host() + "/acme/x:lying"));
  ASSERT_FALSE(lying);
  EXPECT_EQ(lying.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(lying.error().message(), HasSubstr("digest mismatch"));
}

TEST(RegistryBearerTest, BadCredentialsAtTokenEndpoint) {
  BearerRegistry registry;
  RegistryOptions options = plain();
  options.credentials = Credentials{"fleet", "nope"};
  RegistryClient client(registry.host(), options);
  auto r = client.resolve(parseRef(registry.host() + "/acme/x:1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), StartsWith("unauthorized: "));
  EXPECT_THAT(r.error().message(), HasSubstr("bad credentials"));
}

TEST(RegistryBearerTest, GarbageAnswerIsDecoded) {
  BearerRegistry registry;
  RegistryClient client(registry.host(), plain());
  auto r = client.resolve(parseRef(registry.host() + "/broken/x:1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().message(), HasSubstr("HTTP 502: <html><body>Bad Gateway</body></html>"));
}

}  // namespace
}  // namespace fleetlet::registry
