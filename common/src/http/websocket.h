#pragma once
// WebSocket support for fleetlet::http::Server: a route answers an upgrade request with
// webSocketResponse(handler); the server completes the handshake (101) on the connection and
// runs the handler with a WebSocket over the same socket. Requests to such a route that are
// not WebSocket upgrades get 426.
//
// Concurrency: a WebSocket lives on its connection's strand; the handler and any coroutine it
// spawns on ws.executor() share it. At most one read() and one write() may be in flight at a
// time (they may overlap each other). Server stop closes the socket: pending reads and writes
// fail with kUnavailable and the handler should return.
//
// Usage:
//   server.route("GET", "/ws", [](Request&) -> Task<Response> {
//     co_return webSocketResponse([](WebSocket& ws) -> Task<void> {
//       while (auto msg = co_await ws.read()) co_await ws.write(*msg);   // echo
//     });
//   });

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "http/server.h"

namespace fleetlet::http {

namespace detail {
struct WebSocketAccess;
}

class WebSocket {
 public:
  ~WebSocket();
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;

  // The next complete message (text or binary). Fails with kUnavailable once the peer closed,
  // the connection broke, or the server is stopping.
  Task<Result<std::string>> read();
  // Sends `text` as one text message; completes when the socket took it. Fails with
  // kUnavailable once the socket is closed or the peer stopped reading for longer than the
  // idle timeout.
  Task<Status> write(std::string_view text);
  // Sends a close frame (normal closure) and waits briefly for the peer's.
  Task<void> close();
  // Closes the socket at once, without a close handshake: pending read()/write() fail.
  void abort();
  // False after a failed read/write, close() or abort().
  bool isOpen() const;
  // The connection's strand.
  boost::asio::any_io_executor executor() const;
  // The tag of the listener the connection arrived on (see Request::listenerTag()).
  const std::string& listenerTag() const;

  template <typename F>
  Task<std::invoke_result_t<F&>> offload(F fn) {
    return detail::offload(*pool_, std::move(fn));
  }

 private:
  friend struct detail::WebSocketAccess;
  struct Impl;
  WebSocket(std::unique_ptr<Impl> impl, boost::asio::thread_pool& pool);

  std::unique_ptr<Impl> impl_;
  boost::asio::thread_pool* pool_;
};

// A response that upgrades the connection to a WebSocket run by `handler`. The handler's
// return ends the connection.
Response webSocketResponse(WebSocketHandler handler);

}  // namespace fleetlet::http
