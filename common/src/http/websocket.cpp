#include "http/websocket.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "http/websocket_internal.h"

namespace fleetlet::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

struct WebSocket::Impl {
  Impl(detail::WebSocketAccess::Socket& socket, std::string listener_tag)
      : ws(socket), tag(std::move(listener_tag)) {}
  websocket::stream<detail::WebSocketAccess::Socket&> ws;
  std::string tag;
  bool open = true;
};

WebSocket::WebSocket(std::unique_ptr<Impl> impl, asio::thread_pool& pool)
    : impl_(std::move(impl)), pool_(&pool) {}

WebSocket::~WebSocket() = default;

bool WebSocket::isOpen() const { return impl_->open; }

asio::any_io_executor WebSocket::executor() const { return impl_->ws.get_executor(); }

const std::string& WebSocket::listenerTag() const { return impl_->tag; }

Task<Result<std::string>> WebSocket::read() {
  if (!impl_->open) co_return fail(ErrorCode::kUnavailable, "websocket closed");
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  co_await impl_->ws.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    impl_->open = false;
    co_return fail(ErrorCode::kUnavailable, "websocket read: {}", ec.message());
  }
  co_return beast::buffers_to_string(buffer.data());
}

Task<Status> WebSocket::write(std::string_view text) {
  if (!impl_->open) co_return fail(ErrorCode::kUnavailable, "websocket closed");
  impl_->ws.text(true);
  boost::system::error_code ec;
  co_await impl_->ws.async_write(asio::buffer(text.data(), text.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    impl_->open = false;
    co_return fail(ErrorCode::kUnavailable, "websocket write: {}", ec.message());
  }
  co_return Status{};
}

Task<void> WebSocket::close() {
  if (!impl_->open) co_return;
  impl_->open = false;
  boost::system::error_code ec;
  co_await impl_->ws.async_close(websocket::close_code::normal,
                                 asio::redirect_error(asio::use_awaitable, ec));
}

void WebSocket::abort() {
  impl_->open = false;
  boost::system::error_code ec;
  impl_->ws.next_layer().shutdown(asio::socket_base::shutdown_both, ec);
  impl_->ws.next_layer().close(ec);
}

Response webSocketResponse(WebSocketHandler handler) {
  Response response = Response::empty(101);
  response.websocket = std::move(handler);
  return response;
}

namespace detail {

bool WebSocketAccess::isUpgrade(const HttpRequest& request) {
  return websocket::is_upgrade(request);
}

std::unique_ptr<WebSocket> WebSocketAccess::make(Socket& socket, asio::thread_pool& pool,
                                                 std::string tag,
                                                 std::chrono::milliseconds idle_timeout) {
  auto impl = std::make_unique<WebSocket::Impl>(socket, std::move(tag));
  websocket::stream_base::timeout timeout{};
  timeout.handshake_timeout = std::chrono::seconds(30);
  timeout.idle_timeout = idle_timeout;
  timeout.keep_alive_pings = true;
  impl->ws.set_option(timeout);
  impl->ws.read_message_max(1024 * 1024);
  return std::unique_ptr<WebSocket>(new WebSocket(std::move(impl), pool));
}

Task<Status> WebSocketAccess::accept(WebSocket& ws, const HttpRequest& request) {
  boost::system::error_code ec;
  co_await ws.impl_->ws.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    ws.impl_->open = false;
    co_return fail(ErrorCode::kUnavailable, "websocket handshake: {}", ec.message());
  }
  co_return Status{};
}

}  // namespace detail
}  // namespace fleetlet::http
