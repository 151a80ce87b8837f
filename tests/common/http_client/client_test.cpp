#include "http/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "http/plain_client.h"
#include "os/unique_fd.h"

namespace fleetlet::http {
namespace {

// A TCP listener on 127.0.0.1 and an ephemeral port, which it stores in `port`.
UniqueFd listenOnLoopback(uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  return fd;
}

// A one-connection HTTP server on a real socket: records the request head, answers with a
// canned response, closes.
class CannedServer {
 public:
  explicit CannedServer(std::string response, std::optional<std::string> unix_path = {})
      : response_(std::move(response)) {
    if (unix_path) {
      listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", unix_path->c_str());
      ::unlink(unix_path->c_str());
      EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      EXPECT_EQ(::listen(listener_.get(), 4), 0);
    } else {
      listener_ = listenOnLoopback(port_);
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() { thread_.join(); }

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  // The request head and body as received (valid after the client call returned).
  const std::string& received() const { return received_; }

 private:
  void serve() {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    char buf[4096];
    while (received_.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) return;
      received_.append(buf, static_cast<size_t>(n));
    }
    ::send(conn.get(), response_.data(), response_.size(), MSG_NOSIGNAL);
  }

  std::string response_;
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::string received_;
  std::thread thread_;
};

// A one-connection server whose 200 body drips in at 20 bytes a second until the client leaves.
class DrippingServer {
 public:
  DrippingServer() : listener_(listenOnLoopback(port_)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~DrippingServer() { thread_.join(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/blob"; }

 private:
  void serve() {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    char buf[4096];
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
    ::send(conn.get(), response.data(), response.size(), MSG_NOSIGNAL);
    // Until the client closes: a send into a closed connection fails.
    for (int i = 0; i < 600 && ::send(conn.get(), "ab", 2, MSG_NOSIGNAL) == 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  uint16_t port_ = 0;  // before listener_: set while it is made
  UniqueFd listener_;
  std::thread thread_;
};

TEST(HttpClient, StreamShowsTheHeadOfA2xxAnswerBeforeItsBodyAndNotOfAnError) {
  std::vector<std::string> seen;
  {
    CannedServer server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 6\r\n\r\n"
        "ab\ncd\n");
    auto r = Client().stream(
        {.url = server.url("/events")},
        [&](std::string_view chunk) {
          seen.emplace_back("body " + std::string(chunk));
          return true;
        },
        [&](const ClientResponse& head) {
          seen.push_back("head " + std::to_string(head.status) + " " +
                         head.headers.find("Content-Type").value_or("-"));
        });
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "head 200 application/x-ndjson");
  EXPECT_EQ(seen[1], "body ab\ncd\n");

  seen.clear();
  CannedServer missing("HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n");
  auto r = Client().stream(
      {.url = missing.url("/x")},
      [&](std::string_view) {
        seen.emplace_back("body");
        return true;
      },
      [&](const ClientResponse&) { seen.emplace_back("head"); });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "nope\n");
  EXPECT_TRUE(seen.empty());
}

TEST(HttpClient, AMinimumRateCutsOffADrippingPeer) {
  DrippingServer server;
  Client client({.stall_timeout = std::chrono::seconds(1), .min_bytes_per_second = 1024});
  auto r = client.stream({.url = server.url()}, [](std::string_view) { return true; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("too slow"), std::string::npos) << r.error().message();
}

TEST(HttpClient, ADeadlineEndsARequestThatStillMoves) {
  DrippingServer server;
  Client client({.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500)});
  auto r = client.stream({.url = server.url()}, [](std::string_view) { return true; });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("deadline exceeded"), std::string::npos)
      << r.error().message();
  // Past the deadline a request does not even start.
  auto again = client.send({.url = server.url()});
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("deadline exceeded"), std::string::npos);
}

TEST(HttpClient, AStopRequestCancelsATransferInProgress) {
  DrippingServer server;
  std::stop_source stop;
  Client client({.stop = stop.get_token()});
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop.request_stop();
  });
  auto r = client.stream({.url = server.url()}, [](std::string_view) { return true; });
  stopper.join();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("cancelled"), std::string::npos) << r.error().message();
}

TEST(HttpClient, BuffersBodyAndHeaders) {
  CannedServer server(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDocker-Content-Digest: "
      "sha256:ab\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
  Client client;
  auto r = client.send({.url = server.url("/v2/"), .headers = {}});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{}");
  EXPECT_EQ(r->headers.find("docker-content-digest"), "sha256:ab");
  EXPECT_NE(server.received().find("GET /v2/ HTTP/1.1"), std::string::npos);
}

TEST(HttpClient, StreamsSuccessBodyToSinkAndSendsRange) {
  CannedServer server(
      "HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
  Client client;
  std::string got;
  auto r =
      client.stream({.url = server.url("/blob"), .range_start = 10}, [&](std::string_view chunk) {
        got.append(chunk);
        return true;
      });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(got, "hello");
  EXPECT_TRUE(r->body.empty());
  EXPECT_NE(server.received().find("Range: bytes=10-"), std::string::npos);
}

TEST(HttpClient, ErrorBodyIsBufferedNotStreamed) {
  CannedServer server(
      "HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\nConnection: close\r\n\r\nmanifest unknown!");
  Client client;
  bool sink_called = false;
  auto r = client.stream({.url = server.url("/m")}, [&](std::string_view) {
    sink_called = true;
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "manifest unknown!");
  EXPECT_FALSE(sink_called);
}

// A huge error page while streaming keeps only its start (a cloud's 10 MiB 500 page must not
// fill the node's memory); the transfer itself completes.
TEST(HttpClient, AStreamedErrorBodyIsCapped) {
  const std::string page(2 * 1024 * 1024, 'x');
  CannedServer server("HTTP/1.1 500 Oops\r\nContent-Length: " + std::to_string(page.size()) +
                      "\r\nConnection: close\r\n\r\n" + page);
  Client client;
  auto r = client.stream({.url = server.url("/m")}, [](std::string_view) { return true; });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body.size(), Client::kMaxErrorBody);
}

TEST(HttpClient, SinkCanAbort) {
  CannedServer server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
  Client client;
  auto r = client.stream({.url = server.url("/")}, [](std::string_view) { return false; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("aborted"), std::string::npos);
}

TEST(HttpClient, PostsBody) {
  CannedServer server("HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  Client client;
  ClientRequest req{.method = "POST", .url = server.url("/apply"), .body = "{\"a\":1}"};
  req.headers.add("Content-Type", "application/json");
  auto r = client.send(req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_NE(server.received().find("POST /apply"), std::string::npos);
  EXPECT_NE(server.received().find("Content-Type: application/json"), std::string::npos);
}

TEST(HttpClient, UnreachableIsUnavailableAndNamesHost) {
  // Bind a port and close it so nothing listens there.
  UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::string host = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  s.reset();
  Client client;
  auto r = client.send({.url = "http://" + host + "/v2/"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find(host + " unreachable"), std::string::npos)
      << r.error().message();
}

TEST(HttpClient, TalksOverUnixSocket) {
  auto path =
      std::filesystem::temp_directory_path() / ("fleetlet-http-" + std::to_string(getpid()));
  CannedServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                      path.string());
  Client client({.unix_socket = path.string()});
  auto r = client.send({.url = "http://fleetletd/v1/status"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "ok");
  std::filesystem::remove(path);
}

// --- sendPlain: Beast, plain http:// only (fleetlet-blobs' events to fleetlet-streams) ---

// A port on 127.0.0.1 nothing listens on.
uint16_t closedPort() {
  uint16_t port = 0;
  UniqueFd s = listenOnLoopback(port);
  return port;  // closed when `s` goes
}

TEST(PlainClient, PostsTheBodyAndReadsTheAnswer) {
  CannedServer server(
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Seq: 7\r\nConnection: close\r\n\r\nok");
  ClientRequest request{.method = "POST", .url = server.url("/api/v1/events/publish?x=1")};
  request.headers.add("Content-Type", "application/json");
  request.body = R"({"data":[]})";
  auto r = sendPlain(request);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(r->headers.find("x-seq"), "7");
  const std::string& got = server.received();
  EXPECT_TRUE(got.starts_with("POST /api/v1/events/publish?x=1 HTTP/1.1\r\n")) << got;
  EXPECT_NE(got.find("Content-Type: application/json\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Content-Length: 11\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Host: 127.0.0.1:"), std::string::npos) << got;
}

TEST(PlainClient, AnErrorStatusIsAnAnswerNotAnError) {
  CannedServer server("HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy");
  auto r = sendPlain({.url = server.url("/")});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "busy");
}

TEST(PlainClient, RefusesWhatItDoesNotSpeakNamingIt) {
  auto refused = [](const std::string& url, const std::string& method = "GET") {
    auto r = sendPlain({.method = method, .url = url});
    EXPECT_FALSE(r) << url;
    if (r) return std::string();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    return r.error().message();
  };
  EXPECT_EQ(refused("https://127.0.0.1/"),
            "plain http client: only http:// is supported in URL \"https://127.0.0.1/\"");
  EXPECT_EQ(refused("http:///x"), "plain http client: no host in URL \"http:///x\"");
  EXPECT_EQ(refused("http://h:99999/"), "plain http client: bad port in URL \"http://h:99999/\"");
  EXPECT_EQ(refused("http://h:8x/"), "plain http client: bad port in URL \"http://h:8x/\"");
  EXPECT_EQ(refused("http://u:p@h/"),
            "plain http client: user info is not supported in URL \"http://u:p@h/\"");
  EXPECT_EQ(refused("http://[::1/"),
            "plain http client: unclosed '[' in the host in URL \"http://[::1/\"");
  EXPECT_EQ(refused("http://127.0.0.1/", "FROB"), "plain http client: unknown method \"FROB\"");
}

TEST(PlainClient, UnreachableIsUnavailableNamingTheStep) {
  std::string url = "http://127.0.0.1:" + std::to_string(closedPort()) + "/x";
  auto r = sendPlain({.url = url});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().message(), "GET " + url + ": connect: Connection refused");
}

TEST(PlainClient, AHungPeerTimesOutNamingTheStep) {
  DrippingServer server;
  auto started = std::chrono::steady_clock::now();
  auto r = sendPlain({.url = server.url()}, {.timeout = std::chrono::milliseconds(300)});
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().message(), "GET " + server.url() + ": read: timed out after 300 ms");
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(PlainClient, ABodyOverTheLimitIsRefused) {
  CannedServer server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" +
                      std::string(100, 'x'));
  auto r = sendPlain({.url = server.url("/big")}, {.max_body = 10});
  ASSERT_FALSE(r) << r->body.size();
  EXPECT_EQ(r.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(r.error().message(), "GET " + server.url("/big") + ": response body over 10 bytes");
}

TEST(PlainClient, AChunkedBodyOverTheLimitIsRefused) {
  CannedServer server(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n");
  auto r = sendPlain({.url = server.url("/chunked")}, {.max_body = 10});
  ASSERT_FALSE(r) << r->body.size();
  EXPECT_EQ(r.error().code(), ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace fleetlet::http
