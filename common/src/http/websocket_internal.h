#pragma once
// Private glue between server.cpp's Connection and websocket.cpp. Not for other modules.
//
// Concurrency: on the connection's strand only.

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>

#include "http/websocket.h"

namespace fleetlet::http::detail {

struct WebSocketAccess {
  using Socket = boost::asio::generic::stream_protocol::socket;
  using HttpRequest = boost::beast::http::request<boost::beast::http::buffer_body>;

  // Whether `request` asks for a WebSocket upgrade.
  static bool isUpgrade(const HttpRequest& request);
  // A WebSocket over `socket` (borrowed: the connection keeps owning it). `idle_timeout`
  // closes a connection whose peer sent nothing (not even a pong) for that long.
  static std::unique_ptr<WebSocket> make(Socket& socket, boost::asio::thread_pool& pool,
                                         std::string tag, std::chrono::milliseconds idle_timeout);
  // Completes the handshake (writes the 101). Fails with kUnavailable or kInvalidArgument.
  static Task<Status> accept(WebSocket& ws, const HttpRequest& request);
};

}  // namespace fleetlet::http::detail
