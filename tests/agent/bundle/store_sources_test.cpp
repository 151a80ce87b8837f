// BundleStore's other sources with real servers: the cloud's origin over mutual TLS (the test
// cloud: nginx with a test CA and client certificates required) with the cloud source's TLS
// settings, and blob://<handle> from the real fleetlet-blobs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "archive_builder.h"
#include "bundle/store.h"
#include "crypto/sha256.h"
#include "http/client.h"
#include "json/json.h"
#include "os/child_process.h"
#include "support/temp_dir.h"
#include "support/test_cloud.h"

namespace fleetlet::bundle {
namespace {

using testing::file;
using ::testing::HasSubstr;
using testing::makeTar;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(BundleOriginTest, IsSchemeHostAndPort) {
  EXPECT_EQ(originOf("https://Fleet.Example.com:8443/nodes/{node}"),
            "https://fleet.example.com:8443");
  EXPECT_EQ(originOf("https://fleet.example.com:443/x"), "https://fleet.example.com");
  EXPECT_EQ(originOf("http://127.0.0.1:80"), "http://127.0.0.1");
  EXPECT_EQ(originOf("https://user@host/x"), "");
  EXPECT_EQ(originOf("file:///x"), "");
  EXPECT_EQ(originOf(""), "");
}

class BundleSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = fleetlet::testing::TempDir::create("bundle-sources");
    ASSERT_TRUE(t) << t.error().describe();
    tmp_.emplace(std::move(*t));
    options_.root = tmp_->path() / "bundles";
    options_.client.stall_timeout = 5s;
    options_.client.total_timeout = 20s;
  }

  std::optional<fleetlet::testing::TempDir> tmp_;
  StoreOptions options_;
};

// A bundle on the cloud's HTTPS server, which requires a client certificate from the fleet's
// CA: fetched with the cloud's TLS settings; without them (or with them for another origin)
// the server is not trusted or refuses.
TEST_F(BundleSourcesTest, DownloadsFromTheCloudsOriginWithTheCloudsTls) {
  auto cloud = fleetlet::testing::TestCloud::start();
  // nginx comes with hack/install-deps.sh: its absence is a failure, not a skip.
  ASSERT_TRUE(cloud) << cloud.error().describe();
  const std::string bytes = makeTar({file("index.html", "<p>from the cloud</p>")});
  ASSERT_TRUE(cloud->publish("bundles/ui.tar.gz", bytes));
  const std::string url = cloud->url() + "/bundles/ui.tar.gz";
  const std::string sha = sha256Hex(bytes);

  {
    BundleStore plain(options_);
    auto refused = plain.ensure(url, sha);
    ASSERT_FALSE(refused) << "the test CA is no system CA";
    EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable) << refused.error().describe();
  }
  StoreOptions with_tls = options_;
  with_tls.cloud_origin = originOf(cloud->url() + "/nodes/{node}");
  with_tls.cloud_tls = {.client_cert = cloud->clientCert().string(),
                        .client_key = cloud->clientKey().string(),
                        .ca_file = cloud->caCert().string()};
  {
    // The CA alone (no client certificate): nginx refuses.
    StoreOptions ca_only = with_tls;
    ca_only.cloud_tls.client_cert.clear();
    ca_only.cloud_tls.client_key.clear();
    BundleStore store(ca_only);
    auto refused = store.ensure(url, sha);
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.error().message(), HasSubstr("HTTP 400")) << refused.error().describe();
  }
  BundleStore store(with_tls);
  auto installed = store.ensure(url, sha);
  ASSERT_TRUE(installed) << installed.error().describe();
  EXPECT_EQ(testing::readFile(installed->dir / "index.html"), "<p>from the cloud</p>");
  // The cloud's settings go only to the cloud's origin: configured for another one, the same
  // download has the default client again, which does not trust the test CA.
  StoreOptions elsewhere = with_tls;
  elsewhere.root = tmp_->path() / "elsewhere";
  elsewhere.cloud_origin = "https://127.0.0.1:1";
  auto other = BundleStore(elsewhere).ensure(url, sha);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kUnavailable) << other.error().describe();
}

// blob://<handle>: the bundle was put into the node's blob store (an air-gapped node gets it
// by replication or an upload); fetched from fleetlet-blobs' host listener and verified.
TEST_F(BundleSourcesTest, InstallsABundleFromTheNodesBlobStore) {
  const fs::path log = tmp_->path() / "blobs.log";
  auto child = ChildProcess::spawn(
      {.argv = {FLEETLET_BLOBS_PATH, "--data-dir", (tmp_->path() / "blobs").string(), "--listen",
                "127.0.0.1:0", "--events-url", "http://127.0.0.1:1"},
       .stdout_path = log,
       .stderr_path = log});
  ASSERT_TRUE(child) << child.error().describe();
  std::string port;
  const std::string marker = "listening on 127.0.0.1:";
  for (int i = 0; i < 200 && port.empty(); ++i) {
    std::string text = testing::readFile(log);
    if (auto at = text.find(marker); at != std::string::npos) {
      at += marker.size();
      port = text.substr(at, text.find_first_not_of("0123456789", at) - at);
    } else {
      std::this_thread::sleep_for(50ms);
    }
  }
  ASSERT_FALSE(port.empty()) << testing::readFile(log);
  const std::string base = "http://127.0.0.1:" + port + "/api/v1/blobs";

  const std::string bytes = makeTar({file("index.html", "<p>from the blob store</p>")});
  http::ClientRequest upload{.method = "POST", .url = base};
  const std::string boundary = "fleetletbundle";
  upload.headers.add("Content-Type", "multipart/form-data; boundary=" + boundary);
  upload.body = "--" + boundary +
                "\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
                R"({"semantics":"fleetlet.bundles","retentionPolicy":{"policy":"keepForever"}})"
                "\r\n--" +
                boundary +
                "\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"ui.tar.gz\"\r\n"
                "Content-Type: application/gzip\r\n\r\n" +
                bytes + "\r\n--" + boundary + "--\r\n";
  auto stored = http::Client().send(upload);
  ASSERT_TRUE(stored) << stored.error().describe();
  ASSERT_EQ(stored->status, 201) << stored->body;
  const std::string handle = Json::parse(stored->body).value("handle", "");
  ASSERT_FALSE(handle.empty()) << stored->body;

  options_.blob_service_url = base + "/";
  BundleStore store(options_);
  auto installed = store.ensure("blob://" + handle, sha256Hex(bytes));
  ASSERT_TRUE(installed) << installed.error().describe();
  EXPECT_EQ(testing::readFile(installed->dir / "index.html"), "<p>from the blob store</p>");

  auto wrong = store.ensure("blob://" + handle, sha256Hex("other"));
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message(), HasSubstr("sha256 mismatch"));
  auto missing = store.ensure("blob://0123456789abcdef0123456789abcdef", sha256Hex("none"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound) << missing.error().describe();
  auto bad = store.ensure("blob://../etc/passwd", sha256Hex("none"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("blob://<handle>"));
  child->stop(SIGTERM, 10s);
}

}  // namespace
}  // namespace fleetlet::bundle
