#include "bundle/store.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "archive_builder.h"
#include "crypto/sha256.h"
#include "os/unique_fd.h"
#include "support/temp_dir.h"

namespace fleetlet::bundle {
namespace {

using testing::file;
using ::testing::HasSubstr;
using testing::makeTar;
namespace fs = std::filesystem;
using testing::readFile;

// An HTTP/1.0 file server on 127.0.0.1:<ephemeral> for one body, honouring
// "Range: bytes=S-" and "bytes=S-E". With cut_after set, the next full answer announces the whole
// length but stops after that many bytes and closes (a dropped connection).
class RangeServer {
 public:
  explicit RangeServer(std::string body) : body_(std::move(body)) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(::listen(listener_.get(), 8), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~RangeServer() {
    stopping_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }

  std::string url(std::string_view path = "/bundle.tar.gz") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  void cutNextAfter(size_t bytes) { cut_after_ = bytes; }
  void setStatus(int status) { status_ = status; }
  std::vector<std::string> ranges() {
    std::lock_guard guard(mutex_);
    return ranges_;
  }

 private:
  void serve() {
    while (!stopping_) {
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(conn.get(), buf, sizeof(buf), 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      size_t start = 0;
      size_t end = body_.size();  // exclusive
      std::string range = "-";
      if (auto pos = head.find("Range: bytes="); pos != std::string::npos) {
        range = head.substr(pos + 13, head.find("\r\n", pos) - pos - 13);
        start = std::stoul(range);
        if (auto dash = range.find('-'); dash + 1 < range.size()) {
          end = std::min(end, std::stoul(range.substr(dash + 1)) + 1);
        }
      }
      {
        std::lock_guard guard(mutex_);
        ranges_.push_back(range);
      }
      std::string response;
      if (status_ != 200) {
        response = "HTTP/1.0 " + std::to_string(status_) + " Nope\r\nContent-Length: 4\r\n\r\nnope";
      } else if (start >= body_.size()) {
        response = "HTTP/1.0 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n";
      } else if (start > 0) {
        response = "HTTP/1.0 206 Partial Content\r\nContent-Range: bytes " + std::to_string(start) +
                   "-" + std::to_string(end - 1) + "/" + std::to_string(body_.size()) +
                   "\r\nContent-Length: " + std::to_string(end - start) + "\r\n\r\n" +
                   body_.substr(start, end - start);
      } else {
        response =
            "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body_.size()) + "\r\n\r\n";
        size_t n = cut_after_.exchange(0);
        response += n > 0 ? body_.substr(0, n) : body_;
      }
      std::string_view rest = response;
      while (!rest.empty()) {
        ssize_t n = ::send(conn.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        rest.remove_prefix(static_cast<size_t>(n));
      }
    }
  }

  std::string body_;
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> cut_after_{0};
  std::atomic<int> status_{200};
  std::mutex mutex_;
  std::vector<std::string> ranges_;  // guarded by mutex_
  std::thread thread_;
};

class BundleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = fleetlet::testing::TempDir::create("bundle-store");
    ASSERT_TRUE(t) << t.error().describe();
    tmp_.emplace(std::move(*t));
    options_.root = tmp_->path() / "bundles";
    options_.client.stall_timeout = std::chrono::seconds(5);
  }

  // Writes an archive under tmp and returns its file:// URL.
  std::string fileUrl(const std::string& bytes, const std::string& name = "b.tar.gz") {
    testing::writeFile(tmp_->path() / name, bytes);
    return "file://" + (tmp_->path() / name).string();
  }

  std::optional<fleetlet::testing::TempDir> tmp_;
  StoreOptions options_;
};

TEST_F(BundleStoreTest, InstallsFromAFileUrlIntoAContentAddressedDirectory) {
  auto bytes = makeTar({file("index.html", "<p>v1</p>"),
                        file("fleetlet-app.json", R"({"displayName":"One","settings":{"a":1}})")});
  const auto sha = sha256Hex(bytes);
  BundleStore store(options_);
  auto installed = store.ensure(fileUrl(bytes), sha);
  ASSERT_TRUE(installed) << installed.error().describe();
  EXPECT_EQ(installed->dir, options_.root / "sha256" / sha);
  EXPECT_EQ(readFile(installed->dir / "index.html"), "<p>v1</p>");
  EXPECT_EQ(installed->config.display_name, "One");
  EXPECT_TRUE(store.installed(sha));
  // Again: served from the store, even when the source is gone.
  fs::remove(tmp_->path() / "b.tar.gz");
  auto again = store.ensure(fileUrl("gone"), sha);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again->dir, installed->dir);
}

TEST_F(BundleStoreTest, RefusesABadHashAndKeepsThePreviousVersion) {
  auto v1 = makeTar({file("index.html", "v1")});
  auto v2 = makeTar({file("index.html", "v2")});
  BundleStore store(options_);
  ASSERT_TRUE(store.ensure(fileUrl(v1, "v1.tgz"), sha256Hex(v1)));
  const std::string wrong = sha256Hex("something else");
  auto result = store.ensure(fileUrl(v2, "v2.tgz"), wrong);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(result.error().message(), HasSubstr("v2.tgz: sha256 mismatch: the manifest says " +
                                                  wrong + ", the archive is " + sha256Hex(v2)));
  EXPECT_FALSE(store.installed(wrong));
  EXPECT_EQ(readFile(store.directoryOf(sha256Hex(v1)) / "index.html"), "v1");
}

TEST_F(BundleStoreTest, RefusesAHostileArchiveWithItsReasonAndInstallsNothing) {
  auto evil = makeTar({file("index.html", "x"), file("../../escape", "x")});
  BundleStore store(options_);
  auto result = store.ensure(fileUrl(evil), sha256Hex(evil));
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error().message(), HasSubstr("path traversal"));
  EXPECT_FALSE(store.installed(sha256Hex(evil)));
  EXPECT_TRUE(fs::is_empty(options_.root / "sha256"));
  EXPECT_TRUE(fs::is_empty(options_.root / "tmp"));
  EXPECT_FALSE(fs::exists(tmp_->path() / "escape"));
}

TEST_F(BundleStoreTest, RefusesABundleWithoutItsStartPage) {
  auto none = makeTar({file("main.html", "x")});
  auto wrong_page = makeTar(
      {file("index.html", "x"), file("fleetlet-app.json", R"({"startPage":"app/start.html"})")});
  BundleStore store(options_);
  auto a = store.ensure(fileUrl(none, "a.tgz"), sha256Hex(none));
  ASSERT_FALSE(a);
  EXPECT_THAT(a.error().message(), HasSubstr("the bundle has no start page index.html"));
  auto b = store.ensure(fileUrl(wrong_page, "b.tgz"), sha256Hex(wrong_page));
  ASSERT_FALSE(b);
  EXPECT_THAT(b.error().message(), HasSubstr("no start page app/start.html"));
  EXPECT_TRUE(fs::is_empty(options_.root / "sha256"));
}

TEST_F(BundleStoreTest, RefusesBadUrlsAndHashes) {
  BundleStore store(options_);
  EXPECT_THAT(store.ensure("file://relative/x.tgz", std::string(64, 'a')).error().message(),
              HasSubstr("absolute local path"));
  EXPECT_THAT(store.ensure("ftp://x/y.tgz", std::string(64, 'a')).error().message(),
              HasSubstr("unsupported URL scheme"));
  EXPECT_THAT(store.ensure("file:///x.tgz", "ABC").error().message(),
              HasSubstr("is not 64 lower-case hex"));
  auto missing = store.ensure("file:///nonexistent/x.tgz", std::string(64, 'a'));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(BundleStoreTest, DownloadsOverHttp) {
  auto bytes = makeTar({file("index.html", "served")});
  RangeServer server(bytes);
  BundleStore store(options_);
  auto installed = store.ensure(server.url(), sha256Hex(bytes));
  ASSERT_TRUE(installed) << installed.error().describe();
  EXPECT_EQ(readFile(installed->dir / "index.html"), "served");
  EXPECT_TRUE(fs::is_empty(options_.root / "downloads")) << "the download is not kept";
}

TEST_F(BundleStoreTest, ResumesAnInterruptedDownload) {
  // Incompressible content, so the archive is large enough to cut in the middle.
  std::string noise;
  uint32_t x = 1;
  for (int i = 0; i < 200000; ++i) {
    x = x * 1664525 + 1013904223;
    noise += static_cast<char>(x >> 24);
  }
  auto bytes = makeTar({file("index.html", "big"), file("noise.bin", noise)});
  RangeServer server(bytes);
  server.cutNextAfter(bytes.size() / 2);
  BundleStore store(options_);
  auto first = store.ensure(server.url(), sha256Hex(bytes));
  ASSERT_FALSE(first) << "the cut download was accepted";
  EXPECT_EQ(first.error().code(), ErrorCode::kUnavailable) << first.error().describe();
  const auto partial = options_.root / "downloads" / (sha256Hex(bytes) + ".partial");
  ASSERT_EQ(fs::file_size(partial), bytes.size() / 2);

  auto second = store.ensure(server.url(), sha256Hex(bytes));
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ(readFile(second->dir / "noise.bin"), noise);
  // The probe for the last byte held, then the rest from where the first download stopped.
  auto ranges = server.ranges();
  ASSERT_EQ(ranges.size(), 3u);
  const auto last = std::to_string(bytes.size() / 2 - 1);
  EXPECT_EQ(ranges[1], last + "-" + last);
  EXPECT_EQ(ranges[2], std::to_string(bytes.size() / 2) + "-");
}

TEST_F(BundleStoreTest, ReportsHttpErrorsAndLimits) {
  auto bytes = makeTar({file("index.html", std::string(5000, 'x'))}, /*gzip=*/false);
  RangeServer server(bytes);
  server.setStatus(404);
  BundleStore store(options_);
  auto missing = store.ensure(server.url(), sha256Hex(bytes));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("HTTP 404"));

  server.setStatus(200);
  options_.max_download_bytes = 1000;
  BundleStore small(options_);
  auto big = small.ensure(server.url(), sha256Hex(bytes));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_THAT(big.error().message(), HasSubstr("larger than the 1000 bytes allowed"));
}

TEST_F(BundleStoreTest, PruneKeepsOnlyTheNamedVersions) {
  auto v1 = makeTar({file("index.html", "v1")});
  auto v2 = makeTar({file("index.html", "v2")});
  auto v3 = makeTar({file("index.html", "v3")});
  BundleStore store(options_);
  for (const auto* v : {&v1, &v2, &v3}) {
    ASSERT_TRUE(store.ensure(fileUrl(*v, sha256Hex(*v)), sha256Hex(*v)));
  }
  ASSERT_TRUE(store.prune({sha256Hex(v2), sha256Hex(v3)}));
  EXPECT_FALSE(store.installed(sha256Hex(v1)));
  EXPECT_TRUE(store.installed(sha256Hex(v2)));
  EXPECT_TRUE(store.installed(sha256Hex(v3)));
}

}  // namespace
}  // namespace fleetlet::bundle
