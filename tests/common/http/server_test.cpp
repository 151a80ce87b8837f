#include "http/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <filesystem>
#include <future>
#include <limits>
#include <thread>

namespace fleetlet::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

// Generous bound for anything the test waits for; never an assertion about speed.
constexpr auto kPatience = 10s;

// A blocking client on a raw socket, with poll()-based timeouts so a broken server fails the
// test instead of hanging it.
class RawClient {
 public:
  static RawClient tcp(std::uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    return RawClient(std::move(fd));
  }
  static RawClient unix(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    return RawClient(std::move(fd));
  }

  // Sends everything; false when the peer closed.
  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads what is available (waiting up to `timeout`). Returns false on EOF, error or timeout.
  bool readMore(std::chrono::milliseconds timeout = kPatience) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  // Reads until `needle` appears in the unparsed input.
  bool readUntil(std::string_view needle) {
    while (pending_.find(needle) == std::string::npos) {
      if (!readMore()) return false;
    }
    return true;
  }

  // Waits until the server closes the connection; false on timeout.
  bool waitForClose() {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!eof_ && std::chrono::steady_clock::now() < deadline) readMore(100ms);
    return eof_;
  }

  // Reads and parses one complete response (of a HEAD request when `head`: no body).
  bhttp::response<bhttp::string_body> readResponse(bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // none is broken in 1.74
    parser.eager(true);
    parser.skip(head);
    while (!parser.is_done()) {
      if (!pending_.empty()) {
        boost::system::error_code ec;
        std::size_t used = parser.put(asio::buffer(pending_), ec);
        pending_.erase(0, used);
        if (ec == bhttp::error::need_more) ec = {};
        if (ec) {
          ADD_FAILURE() << "bad response: " << ec.message();
          break;
        }
        if (parser.is_done()) break;
        if (used > 0) continue;
      }
      if (!readMore()) {
        boost::system::error_code ec;
        if (eof_) parser.put_eof(ec);
        if (!parser.is_done()) ADD_FAILURE() << "connection ended before a full response";
        break;
      }
    }
    return parser.release();
  }

  bhttp::response<bhttp::string_body> request(std::string_view method, std::string_view target,
                                              std::string_view body = "",
                                              std::string_view extra_headers = "") {
    std::string raw = std::string(method) + " " + std::string(target) +
                      " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers);
    if (!body.empty() || method == "POST") {
      raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    raw += "\r\n";
    raw += body;
    EXPECT_TRUE(send(raw));
    return readResponse(method == "HEAD");
  }

  std::string& pending() { return pending_; }
  bool eof() const { return eof_; }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  explicit RawClient(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string pending_;
  bool eof_ = false;
};

std::string chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return std::string(size) + std::string(data) + "\r\n";
}

class ServerTest : public ::testing::Test {
 protected:
  // Starts the server on 127.0.0.1:0 after `routes` added its routes.
  void start(const std::function<void(Server&)>& routes) {
    server_ = std::make_unique<Server>(options_);
    routes(*server_);
    auto info = server_->listenTcp("127.0.0.1", 0, "host");
    ASSERT_TRUE(info.has_value()) << info.error().describe();
    ASSERT_NE(info->port, 0);
    port_ = info->port;
    ASSERT_TRUE(server_->start().has_value());
  }
  void TearDown() override {
    if (server_) server_->stop(2s);
  }

  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

Handler echoBody() {
  return [](Request& request) -> Task<Response> {
    auto body = co_await request.readBody();
    if (!body) co_return errorResponse(body.error());
    co_return Response::json(200, *body);
  };
}

TEST(ErrorMapping, OneTableForAllCodes) {
  EXPECT_EQ(httpStatus(ErrorCode::kInvalidArgument), 400u);
  EXPECT_EQ(httpStatus(ErrorCode::kNotFound), 404u);
  EXPECT_EQ(httpStatus(ErrorCode::kAlreadyExists), 409u);
  EXPECT_EQ(httpStatus(ErrorCode::kFailedPrecondition), 409u);
  EXPECT_EQ(httpStatus(ErrorCode::kResourceExhausted), 507u);
  EXPECT_EQ(httpStatus(ErrorCode::kUnavailable), 503u);
  EXPECT_EQ(httpStatus(ErrorCode::kInternal), 500u);
  Response r = errorResponse(Error(ErrorCode::kInvalidArgument, "data[0]: \"name\" missing"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"code":"ERR_BAD_REQUEST","message":"data[0]: \"name\" missing"})");
}

TEST_F(ServerTest, RoutesParamsAndQuery) {
  start([](Server& s) {
    ASSERT_TRUE(s.route("GET", "/api/v1/blobs/{handle}", [](Request& r) -> Task<Response> {
                   co_return Response::text(200, "blob " + std::string(r.param("handle")));
                 }).has_value());
    ASSERT_TRUE(s.route("GET", "/api/v1/blobs/{handle}/metadata", [](Request& r) -> Task<Response> {
                   co_return Response::text(200, "meta " + std::string(r.param("handle")));
                 }).has_value());
    ASSERT_TRUE(s.route("GET", "/api/v1/blobs", [](Request& r) -> Task<Response> {
                   std::string out;
                   for (const auto& [k, v] : r.queryParams()) out += k + "=" + v + ";";
                   co_return Response::text(200, out);
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("GET", "/api/v1/blobs/h%20one");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), "blob h one");
  r = client.request("GET", "/api/v1/blobs/h1/metadata");  // same connection: keep-alive
  EXPECT_EQ(r.body(), "meta h1");
  r = client.request("GET", "/api/v1/blobs?semantics=a%2Fb+c&metadata-h2");
  EXPECT_EQ(r.body(), "semantics=a/b c;metadata-h2=;");
}

TEST_F(ServerTest, UnknownPathIs404AndWrongMethodIs405) {
  start([](Server& s) {
    ASSERT_TRUE(s.route("POST", "/api/v1/events/publish", echoBody()).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("GET", "/nope");
  EXPECT_EQ(r.result_int(), 404u);
  EXPECT_EQ(r[bhttp::field::content_type], "application/json");
  EXPECT_NE(r.body().find(R"("code":"ERR_NOT_FOUND")"), std::string::npos);
  r = client.request("GET", "/api/v1/events/publish");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[bhttp::field::allow], "POST");
  r = client.request("GET", "/bad%zzescape");
  EXPECT_EQ(r.result_int(), 400u);
}

TEST_F(ServerTest, BufferedJsonEchoAndHandlerExceptionIs500) {
  start([](Server& s) {
    ASSERT_TRUE(s.route("POST", "/echo", echoBody()).has_value());
    ASSERT_TRUE(s.route("GET", "/throw", [](Request&) -> Task<Response> {
                   throw std::runtime_error("boom");
                   co_return Response::empty(200);
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("POST", "/echo", R"({"data":[1,2,3]})");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), R"({"data":[1,2,3]})");
  r = client.request("GET", "/throw");
  EXPECT_EQ(r.result_int(), 500u);
  r = client.request("POST", "/echo", "{}");
  EXPECT_EQ(r.body(), "{}");
}

TEST_F(ServerTest, ChunkedRequestBody) {
  start([](Server& s) { ASSERT_TRUE(s.route("POST", "/echo", echoBody()).has_value()); });
  RawClient client = RawClient::tcp(port_);
  ASSERT_TRUE(
      client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Type: application/json\r\n\r\n" +
                  chunk(R"({"subscriptions":)") + chunk(R"([{}]})") + "0\r\n\r\n"));
  auto r = client.readResponse();
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), R"({"subscriptions":[{}]})");
}

TEST_F(ServerTest, StreamedUploadIsConsumedIncrementallyWithBoundedBuffers) {
  constexpr std::uint64_t kTotal = 64ull * 1024 * 1024;
  struct Seen {
    std::uint64_t bytes = 0;
    std::uint64_t chunks = 0;
    std::size_t largest = 0;
    std::uint64_t checksum = 0;
  };
  auto seen = std::make_shared<Seen>();
  start([&](Server& s) {
    ASSERT_TRUE(s.route(
                     "POST", "/api/v1/blobs",
                     [seen](Request& r) -> Task<Response> {
                       while (true) {
                         auto piece = co_await r.readSome();
                         if (!piece) co_return errorResponse(piece.error());
                         if (piece->empty()) break;
                         seen->bytes += piece->size();
                         seen->chunks += 1;
                         seen->largest = std::max(seen->largest, piece->size());
                         for (char c : *piece) seen->checksum += static_cast<unsigned char>(c);
                       }
                       co_return Response::text(201, std::to_string(seen->bytes));
                     },
                     RouteOptions{.body_limit = 128ull * 1024 * 1024})
                    .has_value());
  });
  RawClient client = RawClient::tcp(port_);
  ASSERT_TRUE(
      client.send("POST /api/v1/blobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string block(1024 * 1024, '\0');
  std::uint64_t expected_checksum = 0;
  for (std::size_t i = 0; i < block.size(); ++i) {
    block[i] = static_cast<char>(i * 7 % 251);
    expected_checksum += static_cast<unsigned char>(block[i]);
  }
  std::string framed = chunk(block);
  for (std::uint64_t sent = 0; sent < kTotal; sent += block.size()) {
    ASSERT_TRUE(client.send(framed));
  }
  ASSERT_TRUE(client.send("0\r\n\r\n"));
  auto r = client.readResponse();
  EXPECT_EQ(r.result_int(), 201u);
  EXPECT_EQ(r.body(), std::to_string(kTotal));
  EXPECT_EQ(seen->bytes, kTotal);
  EXPECT_EQ(seen->checksum, expected_checksum * 64);
  EXPECT_GE(seen->chunks, kTotal / (64 * 1024));  // never more than 64 KiB at once
  EXPECT_LE(seen->largest, 64u * 1024);
}

TEST_F(ServerTest, ContentLengthBodyIsReadIntoTheCallersBufferAndPipeliningStillWorks) {
  // readInto() takes a Content-Length body around Beast's parser, straight into the caller's
  // buffer: the bytes that came with the header first, then from the socket, never past the
  // body, so a pipelined request right behind it is still served.
  struct Seen {
    std::size_t largest = 0;
  };
  auto seen = std::make_shared<Seen>();
  start([&](Server& s) {
    ASSERT_TRUE(s.route(
                     "POST", "/sum",
                     [seen](Request& r) -> Task<Response> {
                       std::vector<char> buffer(1024 * 1024);
                       std::uint64_t bytes = 0, checksum = 0;
                       while (true) {
                         auto n = co_await r.readInto(buffer);
                         if (!n) co_return errorResponse(n.error());
                         if (*n == 0) break;
                         seen->largest = std::max(seen->largest, *n);
                         bytes += *n;
                         for (std::size_t i = 0; i < *n; ++i) {
                           checksum += static_cast<unsigned char>(buffer[i]);
                         }
                       }
                       EXPECT_TRUE(r.bodyDone());
                       co_return Response::text(200, fmt::format("{} {}", bytes, checksum));
                     },
                     RouteOptions{.body_limit = 64ull * 1024 * 1024})
                    .has_value());
  });
  std::string body(8 * 1024 * 1024 + 3, '\0');
  std::uint64_t checksum = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>(i * 13 % 253);
    checksum += static_cast<unsigned char>(body[i]);
  }
  RawClient client = RawClient::tcp(port_);
  std::string head =
      fmt::format("POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.size());
  // Header plus the start of the body in one segment; the end of the body plus a whole second
  // request in another.
  ASSERT_TRUE(client.send(head + body.substr(0, 1000)));
  ASSERT_TRUE(client.send(std::string_view(body).substr(1000, body.size() - 2000)));
  ASSERT_TRUE(client.send(body.substr(body.size() - 1000) +
                          "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto first = client.readResponse();
  EXPECT_EQ(first.result_int(), 200u);
  EXPECT_EQ(first.body(), fmt::format("{} {}", body.size(), checksum));
  auto second = client.readResponse();
  EXPECT_EQ(second.result_int(), 200u);
  EXPECT_EQ(second.body(), fmt::format("3 {}", 'a' + 'b' + 'c'));
  EXPECT_LE(seen->largest, 1024u * 1024);
}

TEST_F(ServerTest, BodyOverLimitIs413) {
  bool called = false;
  start([&](Server& s) {
    ASSERT_TRUE(s.route(
                     "POST", "/small",
                     [&](Request& r) -> Task<Response> {
                       called = true;
                       auto body = co_await r.readBody();
                       if (!body) co_return errorResponse(body.error());
                       co_return Response::empty(200);
                     },
                     RouteOptions{.body_limit = 100})
                    .has_value());
  });
  {
    // Declared too large: refused before the handler runs, without reading the body.
    RawClient client = RawClient::tcp(port_);
    ASSERT_TRUE(client.send(
        "POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"));
    auto r = client.readResponse();
    EXPECT_EQ(r.result_int(), 413u);
    EXPECT_FALSE(called);
  }
  {
    // Chunked: found out while reading.
    RawClient client = RawClient::tcp(port_);
    ASSERT_TRUE(
        client.send("POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    chunk(std::string(80, 'a')) + chunk(std::string(80, 'b')) + "0\r\n\r\n"));
    auto r = client.readResponse();
    EXPECT_EQ(r.result_int(), 413u);
    EXPECT_NE(r.body().find("ERR_PAYLOAD_TOO_LARGE"), std::string::npos);
    EXPECT_TRUE(called);
  }
}

TEST_F(ServerTest, StreamedNdjsonIsReadIncrementally) {
  // The producer writes line i+1 only after the client has read line i: the client sees each
  // line while the response is still open.
  std::array<std::promise<void>, 3> received;
  start([&](Server& s) {
    ASSERT_TRUE(s.route("POST", "/api/v1/events/subscribe", [&](Request&) -> Task<Response> {
                   co_return Response::stream(
                       200, "application/x-ndjson", [&](StreamWriter& w) -> Task<void> {
                         for (int i = 0; i < 3; ++i) {
                           auto ok = co_await w.write(R"({"offset":)" + std::to_string(i) + "}\n");
                           if (!ok) co_return;
                           auto future = received[i].get_future();
                           co_await w.offload([&] { return future.wait_for(kPatience); });
                         }
                       });
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  ASSERT_TRUE(
      client.send("POST /api/v1/events/subscribe HTTP/1.1\r\nHost: t\r\n"
                  "Content-Length: 2\r\n\r\n{}"));
  ASSERT_TRUE(client.readUntil("\r\n\r\n"));
  EXPECT_NE(client.pending().find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(client.pending().find("application/x-ndjson"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.readUntil(R"({"offset":)" + std::to_string(i) + "}\n"));
    if (i < 2) {
      EXPECT_EQ(client.pending().find(R"({"offset":)" + std::to_string(i + 1)), std::string::npos);
    }
    received[i].set_value();
  }
  EXPECT_TRUE(client.readUntil("\r\n0\r\n\r\n"));  // the last chunk ends the stream
}

TEST_F(ServerTest, StreamingProducerDetectsClientDisconnect) {
  std::promise<bool> saw_close;
  start([&](Server& s) {
    ASSERT_TRUE(s.route("GET", "/follow", [&](Request&) -> Task<Response> {
                   co_return Response::stream(
                       200, "application/x-ndjson", [&](StreamWriter& w) -> Task<void> {
                         co_await w.write("{\"hello\":1}\n");
                         // Waits for "new events" that never come; onClose wakes it up.
                         asio::steady_timer idle(w.executor());
                         w.onClose([&] { idle.cancel(); });
                         while (w.isOpen()) {
                           idle.expires_after(std::chrono::hours(1));
                           boost::system::error_code ec;
                           co_await idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                         }
                         saw_close.set_value(true);
                       });
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  ASSERT_TRUE(client.send("GET /follow HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(client.readUntil("{\"hello\":1}\n"));
  client.close();
  auto future = saw_close.get_future();
  ASSERT_EQ(future.wait_for(kPatience), std::future_status::ready);
  EXPECT_TRUE(future.get());
}

TEST_F(ServerTest, SlowlorisIsCutOffWhileOthersAreServed) {
  options_.header_timeout = 500ms;
  start([](Server& s) {
    ASSERT_TRUE(s.route("GET", "/ok", [](Request&) -> Task<Response> {
                   co_return Response::text(200, "ok");
                 }).has_value());
  });
  RawClient slow = RawClient::tcp(port_);
  ASSERT_TRUE(slow.send("GET /ok HTTP/1.1\r\nHost: t\r\n"));
  RawClient fast = RawClient::tcp(port_);
  EXPECT_EQ(fast.request("GET", "/ok").body(), "ok");
  // Keep trickling header bytes: progress does not extend the header deadline.
  bool closed = false;
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    closed = !slow.send("X") || (!slow.readMore(100ms) && slow.eof());
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(slow.pending().empty()) << slow.pending();  // no response, just closed
  RawClient after = RawClient::tcp(port_);
  EXPECT_EQ(after.request("GET", "/ok").body(), "ok");
}

TEST_F(ServerTest, MalformedRequestIs400AndServerKeepsServing) {
  options_.max_header_bytes = 4096;
  start([](Server& s) {
    ASSERT_TRUE(s.route("GET", "/ok", [](Request&) -> Task<Response> {
                   co_return Response::text(200, "ok");
                 }).has_value());
  });
  {
    RawClient bad = RawClient::tcp(port_);
    ASSERT_TRUE(bad.send("THIS IS NOT HTTP\r\n\r\n"));
    auto r = bad.readResponse();
    EXPECT_EQ(r.result_int(), 400u);
    EXPECT_NE(r.body().find("ERR_BAD_REQUEST"), std::string::npos);
    EXPECT_TRUE(bad.waitForClose());
  }
  {
    RawClient huge = RawClient::tcp(port_);
    ASSERT_TRUE(huge.send("GET /ok HTTP/1.1\r\nX-Big: " + std::string(8192, 'a') + "\r\n\r\n"));
    EXPECT_EQ(huge.readResponse().result_int(), 431u);
  }
  {
    RawClient bad_chunk = RawClient::tcp(port_);
    ASSERT_TRUE(
        bad_chunk.send("GET /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
    // The handler does not read the body, so the bad framing only closes the connection.
    EXPECT_EQ(bad_chunk.readResponse().result_int(), 200u);
  }
  {
    RawClient gone = RawClient::tcp(port_);
    ASSERT_TRUE(gone.send("GET /ok HTTP/1.1\r\nHost"));  // abrupt disconnect mid-header
  }
  RawClient good = RawClient::tcp(port_);
  EXPECT_EQ(good.request("GET", "/ok").body(), "ok");
}

TEST_F(ServerTest, CorsPreflightAndAllowOrigin) {
  start([](Server& s) { ASSERT_TRUE(s.route("POST", "/echo", echoBody()).has_value()); });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("OPTIONS", "/echo", "",
                          "Origin: app://demo\r\nAccess-Control-Request-Method: POST\r\n"
                          "Access-Control-Request-Headers: content-type\r\n");
  EXPECT_EQ(r.result_int(), 204u);
  EXPECT_EQ(r[bhttp::field::access_control_allow_origin], "*");
  EXPECT_NE(r[bhttp::field::access_control_allow_methods].find("POST"), std::string::npos);
  EXPECT_EQ(r[bhttp::field::access_control_allow_headers], "Content-Type, Authorization");
  r = client.request("POST", "/echo", "{}", "Origin: app://demo\r\n");
  EXPECT_EQ(r[bhttp::field::access_control_allow_origin], "*");
  r = client.request("GET", "/missing");
  EXPECT_EQ(r[bhttp::field::access_control_allow_origin], "*");
}

Handler tagEcho() {
  return [](Request& r) -> Task<Response> { co_return Response::text(200, r.listenerTag()); };
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "http-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(ServerListeners, UnixSocketReplacesStaleFileAndAppliesMode) {
  TempDir dir;
  std::string path = (dir.path() / "api.sock").string();
  {
    // A stale socket file left by a dead process.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  Server server;
  ASSERT_TRUE(server.route("GET", "/tag", tagEcho()).has_value());
  auto info = server.listenUnix(path, "local", 0600);
  ASSERT_TRUE(info.has_value()) << info.error().describe();
  EXPECT_EQ(info->address, path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(server.start().has_value());

  // A second server must not steal a live socket.
  Server other;
  auto clash = other.listenUnix(path, "x");
  ASSERT_FALSE(clash.has_value());
  EXPECT_EQ(clash.error().code(), ErrorCode::kAlreadyExists);

  RawClient client = RawClient::unix(path);
  auto r = client.request("GET", "/tag");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), "local");
  server.stop();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ServerListeners, AdoptedListenerTagsItsConnections) {
  Server server;
  ASSERT_TRUE(server.route("GET", "/tag", tagEcho()).has_value());
  auto host = server.listenTcp("127.0.0.1", 0, "host");
  ASSERT_TRUE(host.has_value());

  // A listener created elsewhere (fleetletd, inside an app's namespace) and handed over.
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd.get(), 16), 0);
  auto adopted = server.adoptListener(std::move(fd), "app:camera");
  ASSERT_TRUE(adopted.has_value()) << adopted.error().describe();
  EXPECT_NE(adopted->port, 0);
  EXPECT_EQ(adopted->tag, "app:camera");

  UniqueFd not_listening(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto refused = server.adoptListener(std::move(not_listening), "bad");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);

  ASSERT_TRUE(server.start().has_value());
  EXPECT_EQ(RawClient::tcp(adopted->port).request("GET", "/tag").body(), "app:camera");
  EXPECT_EQ(RawClient::tcp(host->port).request("GET", "/tag").body(), "host");
  EXPECT_EQ(server.listeners().size(), 2u);

  // Removing an app closes its listener; the others go on.
  ASSERT_TRUE(server.closeListeners("app:camera").has_value());
  EXPECT_EQ(server.listeners().size(), 1u);
  EXPECT_EQ(server.closeListeners("app:camera").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(RawClient::tcp(host->port).request("GET", "/tag").body(), "host");
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightRequest) {
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  start([&](Server& s) {
    ASSERT_TRUE(s.route("POST", "/publish", [&](Request& r) -> Task<Response> {
                   auto body = co_await r.readBody();
                   entered.set_value();
                   // Named: see "GCC 12" in server.h.
                   auto fsync = [released] { released.wait_for(kPatience); };
                   co_await r.offload(std::move(fsync));
                   co_return Response::text(201, *body);
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  ASSERT_TRUE(client.send("POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\ndata"));
  ASSERT_EQ(entered.get_future().wait_for(kPatience), std::future_status::ready);
  RawClient idle = RawClient::tcp(port_);  // a keep-alive connection with no request
  std::thread stopper([&] { server_->stop(kPatience); });
  // The idle connection is closed right away while the busy one still runs.
  EXPECT_TRUE(idle.waitForClose());
  release.set_value();
  auto r = client.readResponse();
  EXPECT_EQ(r.result_int(), 201u);
  EXPECT_EQ(r.body(), "data");
  EXPECT_FALSE(r.keep_alive());
  stopper.join();
  // No longer accepting.
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
}

// A request that reached a connection's socket but was not read yet when the server began to
// stop (its one I/O thread was busy) is answered, not dropped with the idle connections: a
// client would see its request fail with no response (a service restarting under an app that
// publishes in a loop: SystemAppsTest.AStreamsContainerRestartIsInvisibleToAnAppUsingIt).
TEST_F(ServerTest, ShutdownAnswersARequestThatArrivedButWasNotReadYet) {
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  start([&](Server& s) {
    ASSERT_TRUE(s.route("GET", "/busy", [&](Request&) -> Task<Response> {
                   entered.set_value();
                   released.wait_for(kPatience);  // holds the only I/O thread
                   co_return Response::text(200, "busy");
                 }).has_value());
    ASSERT_TRUE(s.route("GET", "/x", [](Request&) -> Task<Response> {
                   co_return Response::text(200, "x");
                 }).has_value());
  });
  RawClient late = RawClient::tcp(port_);
  EXPECT_EQ(late.request("GET", "/x").body(), "x");  // now waiting for its next request
  RawClient busy = RawClient::tcp(port_);
  ASSERT_TRUE(busy.send("GET /busy HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(entered.get_future().wait_for(kPatience), std::future_status::ready);
  ASSERT_TRUE(late.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));  // in its socket, unread
  RawClient idle = RawClient::tcp(port_);                        // nothing to answer
  std::thread stopper([&] { server_->stop(kPatience); });
  std::this_thread::sleep_for(200ms);  // stop() has queued the shutdown behind /busy
  release.set_value();
  EXPECT_EQ(busy.readResponse().body(), "busy");
  auto r = late.readResponse();
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), "x");
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(late.waitForClose());
  EXPECT_TRUE(idle.waitForClose());
  stopper.join();
}

TEST_F(ServerTest, ShutdownEndsStreamedResponses) {
  std::promise<void> streaming;
  std::atomic<bool> producer_returned{false};
  start([&](Server& s) {
    ASSERT_TRUE(s.route("GET", "/follow", [&](Request&) -> Task<Response> {
                   co_return Response::stream(
                       200, "application/x-ndjson", [&](StreamWriter& w) -> Task<void> {
                         asio::steady_timer tick(w.executor());
                         w.onClose([&] { tick.cancel(); });
                         co_await w.write("{}\n");
                         streaming.set_value();
                         while (w.isOpen()) {
                           tick.expires_after(std::chrono::hours(1));
                           boost::system::error_code ec;
                           co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                         }
                         producer_returned = true;
                       });
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  ASSERT_TRUE(client.send("GET /follow HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(streaming.get_future().wait_for(kPatience), std::future_status::ready);
  server_->stop(kPatience);
  EXPECT_TRUE(producer_returned);
  EXPECT_TRUE(client.readUntil("{}\n\r\n0\r\n\r\n"));  // ended cleanly with the last chunk
  EXPECT_TRUE(client.waitForClose());
}

TEST_F(ServerTest, SeveralIoThreadsServeConcurrentClients) {
  options_.io_threads = 2;
  start([](Server& s) { ASSERT_TRUE(s.route("POST", "/echo", echoBody()).has_value()); });
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      RawClient client = RawClient::tcp(port_);
      for (int i = 0; i < 20; ++i) {
        std::string body = std::to_string(c * 100 + i);
        if (client.request("POST", "/echo", body).body() == body) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 8 * 20);
}

TEST_F(ServerTest, SizedStreamForDownloads) {
  start([](Server& s) {
    ASSERT_TRUE(s.route("GET", "/blob", [](Request&) -> Task<Response> {
                   co_return Response::sized(206, "application/octet-stream", 10,
                                             [](StreamWriter& w) -> Task<void> {
                                               co_await w.write("01234");
                                               co_await w.write("56789");
                                             })
                       .header("Content-Range", "bytes 0-9/100");
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("GET", "/blob");
  EXPECT_EQ(r.result_int(), 206u);
  EXPECT_EQ(r.body(), "0123456789");
  EXPECT_EQ(r[bhttp::field::content_length], "10");
  EXPECT_EQ(client.request("GET", "/blob").body(), "0123456789");  // still keep-alive
}

TEST_F(ServerTest, SendFileServesAFileRangeWithoutUserSpaceCopies) {
  // Larger than the socket buffers, so sendfile hits EAGAIN and waits for the client.
  std::string content(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 131 % 251);
  char path[] = "/tmp/fleetlet-sendfile-XXXXXX";
  UniqueFd file(::mkstemp(path));
  ASSERT_TRUE(file.valid());
  ::unlink(path);
  ASSERT_EQ(::write(file.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  const std::uint64_t offset = 1000;
  const std::uint64_t length = content.size() - 2000;
  int fd = file.get();
  start([fd, offset, length](Server& s) {
    ASSERT_TRUE(s.route("GET", "/file", [fd, offset, length](Request&) -> Task<Response> {
                   co_return Response::sized(200, "application/octet-stream", length + 4,
                                             [fd, offset, length](StreamWriter& w) -> Task<void> {
                                               EXPECT_TRUE(co_await w.write("head"));
                                               EXPECT_TRUE(co_await w.sendFile(fd, offset, length));
                                             });
                 }).has_value());
    ASSERT_TRUE(s.route("GET", "/chunked", [fd](Request&) -> Task<Response> {
                   co_return Response::stream(
                       200, "text/plain", [fd](StreamWriter& w) -> Task<void> {
                         auto sent = co_await w.sendFile(fd, 0, 10);
                         EXPECT_FALSE(sent);
                         if (!sent) {
                           EXPECT_EQ(sent.error().code(), ErrorCode::kInvalidArgument);
                         }
                       });
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("GET", "/file");
  EXPECT_EQ(r.result_int(), 200u);
  ASSERT_EQ(r.body().size(), length + 4);
  EXPECT_TRUE(r.body() == "head" + content.substr(offset, length));
  EXPECT_EQ(client.request("GET", "/chunked").result_int(), 200u);
}

TEST_F(ServerTest, HeadIsAnsweredByTheGetRouteWithoutABody) {
  auto producer_ran = std::make_shared<std::atomic<bool>>(false);
  start([producer_ran](Server& s) {
    ASSERT_TRUE(
        s.route("GET", "/text", [](Request& r) -> Task<Response> {
           co_return Response::text(200, "hello world").header("X-Method", std::string(r.method()));
         }).has_value());
    ASSERT_TRUE(s.route("GET", "/sized", [producer_ran](Request&) -> Task<Response> {
                   co_return Response::sized(200, "application/octet-stream", 10,
                                             [producer_ran](StreamWriter& w) -> Task<void> {
                                               *producer_ran = true;
                                               co_await w.write("0123456789");
                                             });
                 }).has_value());
    ASSERT_TRUE(s.route("GET", "/own", [](Request&) -> Task<Response> {
                   co_return Response::text(200, "get");
                 }).has_value());
    ASSERT_TRUE(s.route("HEAD", "/own", [](Request&) -> Task<Response> {
                   co_return Response::empty(200).header("X-Own", "head");
                 }).has_value());
    ASSERT_TRUE(s.route("POST", "/post", echoBody()).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto r = client.request("HEAD", "/text");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r[bhttp::field::content_length], "11");
  EXPECT_EQ(r[bhttp::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(r["X-Method"], "HEAD");
  EXPECT_TRUE(r.body().empty());
  // Same connection: had the server sent the body, it would be read as the next response.
  r = client.request("GET", "/text");
  EXPECT_EQ(r.body(), "hello world");
  EXPECT_EQ(r["X-Method"], "GET");

  r = client.request("HEAD", "/sized");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r[bhttp::field::content_length], "10");
  EXPECT_FALSE(*producer_ran);
  EXPECT_EQ(client.request("GET", "/sized").body(), "0123456789");
  EXPECT_TRUE(*producer_ran);

  r = client.request("HEAD", "/own");
  EXPECT_EQ(r["X-Own"], "head");

  r = client.request("HEAD", "/post");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[bhttp::field::allow], "POST");
  r = client.request("HEAD", "/nope");
  EXPECT_EQ(r.result_int(), 404u);
  EXPECT_TRUE(r.body().empty());
  r = client.request("OPTIONS", "/text");
  EXPECT_EQ(r.result_int(), 204u);
  EXPECT_EQ(r[bhttp::field::access_control_allow_methods], "GET, HEAD, OPTIONS");
  EXPECT_EQ(client.request("GET", "/text").body(), "hello world");  // still in step

  RawClient poster = RawClient::tcp(port_);  // an unread body ends its connection
  r = poster.request("POST", "/text", "x");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[bhttp::field::allow], "GET, HEAD");
}

TEST_F(ServerTest, NotModifiedAndNoContentCarryNoContentLength) {
  start([](Server& s) {
    ASSERT_TRUE(s.route("GET", "/cached", [](Request&) -> Task<Response> {
                   co_return Response::empty(304).header("ETag", "\"x\"");
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  for (const char* method : {"GET", "HEAD"}) {
    auto r = client.request(method, "/cached");
    EXPECT_EQ(r.result_int(), 304u) << method;
    EXPECT_EQ(r.find(bhttp::field::content_length), r.end()) << method;
    EXPECT_EQ(r[bhttp::field::etag], "\"x\"") << method;
  }
  auto preflight = client.request("OPTIONS", "/cached");
  EXPECT_EQ(preflight.result_int(), 204u);
  EXPECT_EQ(preflight.find(bhttp::field::content_length), preflight.end());
  EXPECT_EQ(client.request("GET", "/cached").result_int(), 304u);  // still in step
}

TEST_F(ServerTest, ResponseHeadersOptionIsOnEveryResponse) {
  options_.response_headers = {{"X-Content-Type-Options", "nosniff"}, {"X-Frame-Options", "DENY"}};
  start([](Server& s) {
    ASSERT_TRUE(s.route("GET", "/ok", [](Request&) -> Task<Response> {
                   co_return Response::text(200, "ok").header("X-Frame-Options", "SAMEORIGIN");
                 }).has_value());
  });
  RawClient client = RawClient::tcp(port_);
  auto ok = client.request("GET", "/ok");
  EXPECT_EQ(ok["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(ok["X-Frame-Options"], "SAMEORIGIN") << "the response's own value wins";
  auto missing = client.request("GET", "/missing");
  EXPECT_EQ(missing.result_int(), 404u);
  EXPECT_EQ(missing["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(missing["X-Frame-Options"], "DENY");
}

}  // namespace
}  // namespace fleetlet::http
