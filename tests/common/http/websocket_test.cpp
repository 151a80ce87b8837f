#include "http/websocket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace fleetlet::http {
namespace {

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;

class WebSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto status = server_.route("GET", "/echo", [](Request&) -> Task<Response> {
      co_return webSocketResponse([](WebSocket& ws) -> Task<void> {
        while (true) {
          auto message = co_await ws.read();
          if (!message) break;
          std::string reply = ws.listenerTag() + ":" + *message;
          if (!(co_await ws.write(reply))) break;
        }
      });
    });
    ASSERT_TRUE(status);
    auto info = server_.listenTcp("127.0.0.1", 0, "t");
    ASSERT_TRUE(info);
    port_ = info->port;
    ASSERT_TRUE(server_.start());
  }

  websocket::stream<asio::ip::tcp::socket> connect() {
    websocket::stream<asio::ip::tcp::socket> ws(io_);
    ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port_});
    timeval tv{10, 0};
    ::setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ws.handshake("127.0.0.1", "/echo");
    return ws;
  }

  asio::io_context io_;
  Server server_{ServerOptions{}};
  std::uint16_t port_ = 0;
};

TEST_F(WebSocketTest, UpgradesAndExchangesMessages) {
  auto ws = connect();
  for (std::string text : {"one", "two"}) {
    ws.write(asio::buffer(text));
    boost::beast::flat_buffer buffer;
    ws.read(buffer);
    EXPECT_EQ(boost::beast::buffers_to_string(buffer.data()), "t:" + text);
  }
  ws.close(websocket::close_code::normal);
}

TEST_F(WebSocketTest, PlainRequestGets426) {
  asio::ip::tcp::socket socket(io_);
  socket.connect({asio::ip::make_address("127.0.0.1"), port_});
  boost::beast::http::request<boost::beast::http::empty_body> req{boost::beast::http::verb::get,
                                                                  "/echo", 11};
  req.set(boost::beast::http::field::host, "x");
  boost::beast::http::write(socket, req);
  boost::beast::flat_buffer buffer;
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 426u);
}

TEST_F(WebSocketTest, StopClosesOpenWebSockets) {
  auto ws = connect();
  auto started = std::chrono::steady_clock::now();
  server_.stop(std::chrono::seconds(5));
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  ws.read(buffer, ec);
  EXPECT_TRUE(ec);  // closed by the server, not by a timeout of the test
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

}  // namespace
}  // namespace fleetlet::http
