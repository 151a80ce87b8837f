// ContainerProber's network checks against listeners in this process's own network namespace
// (entered through /proc/<own pid>/ns/net, which needs root like any setns), and its
// refusals of checks that cannot run. Probes of real containers: health_integration_test.
#include "health/container_prober.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "health/netns.h"
#include "support/require_root.h"

namespace fleetlet::health {
namespace {

using Kind = manifest::HealthCheck::Kind;

// A TCP listener on 127.0.0.1, port 0.
UniqueFd listenLoopback(uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

// A loopback port that nothing listens on (bound, then released).
uint16_t closedPort() {
  uint16_t port = 0;
  listenLoopback(port);
  return port;
}

// Answers every request with a fixed status line until destroyed.
class CannedHttpServer {
 public:
  explicit CannedHttpServer(int status) : status_(status), fd_(listenLoopback(port_)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedHttpServer() {
    stop_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string lastRequest() const { return last_request_; }

 private:
  void serve() {
    while (!stop_) {
      UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      std::string request;
      char buf[1024];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      last_request_ = request;
      std::string body = "body\n";
      std::string response = "HTTP/1.1 " + std::to_string(status_) +
                             " X\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n" + body;
      (void)!::write(conn.get(), response.data(), response.size());
    }
  }

  int status_;
  uint16_t port_ = 0;
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::string last_request_;
  std::thread thread_;
};

Target target(Kind kind, uint16_t port, std::string path = "/") {
  Target t{.app = "app", .container_id = "app-1", .pid = static_cast<uint32_t>(::getpid())};
  t.check.kind = kind;
  t.check.port = port;
  t.check.path = std::move(path);
  t.check.timeout = std::chrono::milliseconds(2000);
  return t;
}

class ContainerProberTest : public ::testing::Test {
 protected:
  void SetUp() override { FLEETLET_REQUIRE_ROOT(); }
  ContainerProber prober_{nullptr, "fleetlet"};
};

TEST_F(ContainerProberTest, SocketInNetworkNamespaceOfAGoneProcessIsNotFound) {
  auto fd = socketInNetworkNamespace(0x3fffffff, AF_INET, SOCK_STREAM);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(fd.error().message().find("/proc/1073741823/ns/net"), std::string::npos);
}

TEST_F(ContainerProberTest, TcpIsHealthyWhenSomethingListens) {
  uint16_t port = 0;
  UniqueFd listener = listenLoopback(port);
  auto status = prober_.probe(target(Kind::kTcp, port));
  EXPECT_TRUE(status) << status.error().message();
}

TEST_F(ContainerProberTest, TcpToAClosedPortSaysConnectionRefused) {
  uint16_t port = closedPort();
  auto status = prober_.probe(target(Kind::kTcp, port));
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(status.error().message(), "connect :" + std::to_string(port) + ": Connection refused")
      << "got " << status.error().message();
}

TEST_F(ContainerProberTest, HttpIsHealthyOn2xxAnd3xx) {
  for (int code : {200, 204, 302}) {
    CannedHttpServer server(code);
    auto status = prober_.probe(target(Kind::kHttp, server.port(), "/healthz"));
    EXPECT_TRUE(status) << code << ": " << status.error().message();
    EXPECT_EQ(server.lastRequest().rfind("GET /healthz HTTP/1.1\r\n", 0), 0u)
        << server.lastRequest();
  }
}

TEST_F(ContainerProberTest, HttpErrorStatusIsUnhealthyAndNamed) {
  CannedHttpServer server(503);
  auto status = prober_.probe(target(Kind::kHttp, server.port(), "/healthz"));
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(status.error().message(),
            "http 503 from :" + std::to_string(server.port()) + "/healthz");
}

TEST_F(ContainerProberTest, HttpToAClosedPortSaysConnectionRefused) {
  uint16_t port = closedPort();
  auto status = prober_.probe(target(Kind::kHttp, port, "ready"));
  ASSERT_FALSE(status);
  std::string where = ":" + std::to_string(port);
  EXPECT_EQ(status.error().message(),
            "http " + where + "/ready: connect " + where + ": Connection refused");
}

TEST_F(ContainerProberTest, NetworkChecksOfAGoneProcessFail) {
  auto t = target(Kind::kTcp, 80);
  t.pid = 0x3fffffff;
  auto status = prober_.probe(t);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(status.error().message().find("connect :80: open network namespace"), std::string::npos)
      << status.error().message();
}

TEST(ContainerProberChecksTest, ExecWithoutCommandOrContainerdCannotRun) {
  ContainerProber prober(nullptr, "fleetlet");
  auto t = target(Kind::kExec, 0);
  auto empty = prober.probe(t);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  t.check.command = {"true"};
  auto no_containerd = prober.probe(t);
  ASSERT_FALSE(no_containerd);
  EXPECT_EQ(no_containerd.error().code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fleetlet::health
