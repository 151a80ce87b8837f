// HttpFetcher (libcurl) against a hung server: a listening socket whose connections the kernel
// accepts and nobody answers. cloud.timeout ends each request with an error, and the next poll
// makes a new request instead of waiting on the old one.
#include "cloud/http_fetcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cloud/manifest_source.h"
#include "os/unique_fd.h"

namespace fleetlet::cloud {
namespace {

using namespace std::chrono_literals;

// Listens on 127.0.0.1 (a free port); never reads nor writes.
class HungServer {
 public:
  HungServer() {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ok_ = fd_.valid() && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
          ::listen(fd_.get(), 16) == 0 &&
          ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    port_ = ntohs(addr.sin_port);
  }
  bool ok() const { return ok_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/nodes/n1.json"; }
  // Connections made so far (taken from the backlog and kept open, unanswered).
  size_t connections() {
    for (;;) {
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) break;
      accepted_.push_back(std::move(c));
    }
    return accepted_.size();
  }

 private:
  UniqueFd fd_;
  bool ok_ = false;
  uint16_t port_ = 0;
  std::vector<UniqueFd> accepted_;
};

TEST(HttpFetcherTimeout, AHungServerTimesOutAndTheNextPollProceeds) {
  HungServer server;
  ASSERT_TRUE(server.ok());
  HttpFetcher fetcher({.tls = {}, .max_body_bytes = 1024, .timeout = 1s, .stop = {}});
  int applied = 0;
  ManifestSource source(
      {.url = server.url(), .interval = 1s, .wait = 0s}, fetcher,
      [&](std::string_view, std::string_view) -> Result<bool> {
        ++applied;
        return true;
      },
      [](std::string_view, const Error&) {});
  for (int poll = 1; poll <= 2; ++poll) {
    SCOPED_TRACE(poll);
    const auto start = std::chrono::steady_clock::now();
    auto outcome = source.pollOnce();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(outcome.answered);
    EXPECT_GE(took, 900ms);  // cloud.timeout, not an early failure
    EXPECT_LT(took, 5s);     // and not the old request still waiting
    auto counters = source.counters();
    EXPECT_EQ(counters.polls, poll);
    EXPECT_EQ(counters.failures, poll);
    EXPECT_EQ(server.connections(), static_cast<size_t>(poll));  // a new request each time
  }
  EXPECT_EQ(applied, 0);
  // The error itself names the timeout.
  auto direct = fetcher.get({.url = server.url(), .etag = "", .wait = 0s});
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(direct.error().message(), ::testing::HasSubstr("127.0.0.1"));
}

}  // namespace
}  // namespace fleetlet::cloud
