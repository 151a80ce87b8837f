#pragma once
// fleetlet::http::Server: the one HTTP/1.1 server of fleetlet, on Boost.Beast and Asio.
//
// Concurrency model
// - A Server owns one boost::asio::io_context run by ServerOptions::io_threads threads
//   (default 1). Every connection lives on its own strand: reading the request, the handler,
//   a streamed response's producer and the connection's timers all run serialized on it, so
//   per-request state needs no lock. With io_threads > 1 different connections run in
//   parallel and state shared between handlers needs its own lock.
// - Handlers and stream producers are C++20 coroutines (Task<T> = boost::asio::awaitable<T>).
//   They must never block the thread they run on: blocking work (fsync, SQLite, large disk
//   reads) goes through `co_await request.offload(fn)` / `co_await writer.offload(fn)`, which
//   runs fn on the server's blocking pool (ServerOptions::blocking_threads) and resumes the
//   coroutine on its strand with fn's result.
// - GCC 12 bug (all coroutine code, not just this module): a lambda that captures by value
//   something with a destructor, written as a temporary inside a co_await expression, is
//   destroyed twice. Name it first:
//     auto job = [path] { return fsyncFile(path); };      // not co_await offload([path] {...})
//     auto status = co_await request.offload(std::move(job));
//   Capturing by reference ([&]) is unaffected.
// - Listener methods, start(), stop() and wait() are thread-safe. stop() and wait() block and
//   must not be called from a handler (they would wait for themselves).
// - No exception leaves this module: an I/O error ends its connection (logged at debug), and
//   an exception thrown by a handler or producer becomes a 500 response (or ends the stream).
//
// Usage (see docs/http-server.md):
//   Server server({});
//   server.route("GET", "/api/v1/blobs/{handle}", [](Request& r) -> Task<Response> {
//     co_return Response::text(200, std::string(r.param("handle")));
//   });
//   auto info = server.listenTcp("127.0.0.1", 0);   // info->port is the bound port
//   server.start();  ...  server.stop();

#include <sys/types.h>

// clang-format off
#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::http {

template <typename T>
using Task = boost::asio::awaitable<T>;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

namespace detail {
class Connection;
class ServerImpl;

// Runs fn() on `pool` and resumes the awaiting coroutine on its own executor with the result.
// An exception thrown by fn is rethrown in the coroutine. The pending resumption counts as
// work of the coroutine's io_context, so the server's shutdown waits for it.
template <typename F>
Task<std::invoke_result_t<F&>> offload(boost::asio::thread_pool& pool, F fn) {
  using R = std::invoke_result_t<F&>;
  using Value = std::conditional_t<std::is_void_v<R>, bool, R>;
  boost::asio::any_io_executor current = co_await boost::asio::this_coro::executor;
  boost::asio::any_io_executor ex =
      boost::asio::prefer(current, boost::asio::execution::outstanding_work.tracked);
  // A named initiation: GCC 12 destroys a capturing lambda temporary inside co_await twice.
  auto initiation = [&pool, ex, fn = std::move(fn)](auto handler) mutable {
    boost::asio::post(pool, [handler = std::move(handler), ex, fn = std::move(fn)]() mutable {
      std::exception_ptr error;
      std::optional<Value> value;
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          value.emplace(true);
        } else {
          value.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
      boost::asio::post(ex,
                        [handler = std::move(handler), error, value = std::move(value)]() mutable {
                          std::move(handler)(error, std::move(value));
                        });
    });
  };
  auto result =
      co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>,
                                           void(std::exception_ptr, std::optional<Value>)>(
          std::move(initiation), boost::asio::use_awaitable);
  // Set: without a value the handler got an exception, which use_awaitable rethrows.
  // NOLINTNEXTLINE(bugprone-unchecked-optional-access)
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}
}  // namespace detail

struct ServerOptions {
  // Threads running the event loop (handlers, I/O). See the concurrency model above.
  int io_threads = 1;
  // Threads for offload(): blocking work such as fsync.
  int blocking_threads = 2;
  // Request line plus headers; larger requests get 431 and the connection is closed.
  std::uint32_t max_header_bytes = 16 * 1024;
  // Body limit of routes that set none; larger bodies get 413.
  std::uint64_t default_body_limit = std::uint64_t{1024} * 1024;
  // A connection waiting for a request must receive its complete header within this time,
  // or it is closed. Covers keep-alive idle time and slowloris clients alike.
  std::chrono::milliseconds header_timeout{30000};
  // Longest wait for the next bytes of a request body.
  std::chrono::milliseconds body_read_timeout{30000};
  // Longest time one write (a response, one chunk) may take; a client that stops reading is
  // disconnected after it.
  std::chrono::milliseconds write_timeout{30000};
  // Value of Access-Control-Allow-Origin on every response, and whether OPTIONS preflights
  // are answered. nullopt disables CORS.
  std::optional<std::string> cors_origin = "*";
  // Headers added to every response (errors, 404/405 and preflights included) that does not
  // set them itself, e.g. {"X-Content-Type-Options", "nosniff"}.
  std::vector<std::pair<std::string, std::string>> response_headers;
  // listen() backlog of listeners the server creates; large enough for a restart's burst.
  int backlog = 1024;
  // A WebSocket whose peer sent nothing (not even a pong to our pings) for this long is
  // closed; pings go out after half of it.
  std::chrono::milliseconds websocket_idle_timeout{120000};
};

// A listener the server accepts on.
struct ListenerInfo {
  std::string tag;
  // "127.0.0.1:4454", "[::1]:80" or a unix socket path.
  std::string address;
  // The bound TCP port (the real one when 0 was asked for); 0 for unix sockets.
  std::uint16_t port = 0;
};

// One request, as seen by its handler. Lives until the response (including a streamed body)
// is finished. Methods run on the connection's strand, i.e. from the handler or producer.
class Request {
 public:
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // "GET", "POST", ... A HEAD request served by a GET route (see Server::route) says "HEAD".
  std::string_view method() const;
  // The raw request target, "/api/v1/blobs?x=1".
  std::string_view target() const;
  // The percent-decoded path without the query string.
  const std::string& path() const { return path_; }
  // The first header called `name` (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;

  // The first query parameter called `name`, percent-decoded ('+' is a space); "" for a
  // bare key such as "?abc".
  std::optional<std::string> query(std::string_view name) const;
  // All query parameters in order, decoded.
  const HeaderList& queryParams() const { return query_; }
  // The value of route parameter `{name}`, decoded; "" when the route has none by that name.
  std::string_view param(std::string_view name) const;

  // The tag of the listener this connection arrived on (the app identity for handed-over
  // listeners).
  const std::string& listenerTag() const { return tag_; }
  // The peer, "127.0.0.1:51234" or "unix".
  const std::string& remoteAddress() const { return remote_; }
  // Declared Content-Length, if any (a chunked body has none).
  std::optional<std::uint64_t> contentLength() const;
  std::uint64_t bodyLimit() const { return body_limit_; }

  // Reads the whole remaining body into memory. Fails with kResourceExhausted when it exceeds
  // the route's body limit, kInvalidArgument when its framing is malformed, kUnavailable when
  // the client went away or stalled. After a failed read the server answers 413/400 (or
  // closes) whatever the handler returns.
  Task<Result<std::string>> readBody();
  // Reads the next piece of the body as it arrives (at most 64 KiB). Returns an empty view at
  // the end of the body. The view is valid until the next read. Fails like readBody().
  Task<Result<std::string_view>> readSome();
  // Reads the next piece of the body (at most out.size() bytes) into `out` and returns its
  // size; 0 at the end of the body (or for an empty `out`). A Content-Length body goes from
  // the socket straight into `out`, so large buffers mean large reads and no extra copy.
  // Fails like readBody().
  Task<Result<std::size_t>> readInto(std::span<char> out);
  // Whether the whole body has been read (always true for requests without a body).
  bool bodyDone() const;

  // Runs fn() on the blocking pool and resumes here with its result. See the model above.
  template <typename F>
  Task<std::invoke_result_t<F&>> offload(F fn) {
    return detail::offload(*pool_, std::move(fn));
  }
  boost::asio::any_io_executor executor() const;

 private:
  friend class detail::Connection;
  Request(detail::Connection& connection, boost::asio::thread_pool& pool);

  detail::Connection* connection_;
  boost::asio::thread_pool* pool_;
  std::string path_;
  HeaderList query_;
  HeaderList params_;
  std::string tag_;
  std::string remote_;
  std::uint64_t body_limit_ = 0;
  std::uint64_t body_read_ = 0;
  std::vector<char> chunk_;
  bool continue_sent_ = false;
  // Set when reading the body failed; the server answers it instead of the handler's response.
  std::optional<Error> body_failure_;
};

// Query parameter `name` as a boolean: absent, "false" or "0" is false; "" (a bare key),
// "true" or "1" is true; anything else fails with kInvalidArgument naming the parameter.
Result<bool> boolQuery(const Request& request, std::string_view name);

// Writes a streamed response body. A producer gets one and writes until it is done or the
// stream closes. Methods run on the connection's strand.
class StreamWriter {
 public:
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Writes `data` (one chunk of a chunked response) and completes once the socket took it.
  // One write is in flight at a time, so a slow client slows the producer down instead of
  // filling memory. Empty data is a no-op. Fails with kUnavailable once the stream is closed:
  // the client disconnected, a write took longer than write_timeout, or the server is
  // stopping. The producer should then return.
  Task<Status> write(std::string_view data);
  // Sends `count` bytes of the regular file `fd` from `offset` with sendfile(2), so the bytes
  // never pass through user space. Only for sized responses (Response::sized); a chunked
  // stream fails with kInvalidArgument. Completes when the socket took the bytes; fails like
  // write(), and with kInternal when the file ends before `count` bytes or cannot be read.
  // Does not take ownership of fd. The first call makes the process ignore SIGPIPE (sendfile
  // cannot suppress it per call).
  Task<Status> sendFile(int fd, std::uint64_t offset, std::uint64_t count);
  // False once the stream is closed (see write()).
  bool isOpen() const { return open_; }
  // Registers fn to run (on the strand, once) when the stream closes, also while the producer
  // is waiting for something other than a write (new events, a timer): fn should wake it.
  // Runs fn at once if the stream is already closed.
  void onClose(std::function<void()> fn);

  template <typename F>
  Task<std::invoke_result_t<F&>> offload(F fn) {
    return detail::offload(*pool_, std::move(fn));
  }
  boost::asio::any_io_executor executor() const;

 private:
  friend class detail::Connection;
  StreamWriter(detail::Connection& connection, boost::asio::thread_pool& pool, bool chunked,
               std::optional<std::uint64_t> length);
  // Marks the stream closed and runs the close callbacks.
  void close(bool client_gone);

  detail::Connection* connection_;
  boost::asio::thread_pool* pool_;
  bool chunked_;
  std::optional<std::uint64_t> length_;
  std::uint64_t written_ = 0;
  bool open_ = true;
  bool client_gone_ = false;
  std::vector<std::function<void()>> on_close_;
};

class WebSocket;  // http/websocket.h
// Runs an upgraded WebSocket connection (see http/websocket.h); returning ends it.
using WebSocketHandler = std::function<Task<void>(WebSocket&)>;

// Produces a streamed body. Runs after the response header was sent; the Request stays valid
// while it runs. Returning ends the body.
using StreamProducer = std::function<Task<void>(StreamWriter&)>;

// A response: a full body in `body`, or a streamed one when `producer` is set (chunked, or
// with Content-Length when `stream_length` is set; a producer writing a different number of
// bytes gets its connection closed).
struct Response {
  unsigned status = 200;
  // Written as given; no framing headers (Content-Length, Transfer-Encoding, Connection): the
  // server sets those.
  HeaderList headers;
  std::string body;
  StreamProducer producer;
  std::optional<std::uint64_t> stream_length;
  // Set by webSocketResponse() (http/websocket.h): the connection upgrades and runs it.
  WebSocketHandler websocket;

  static Response text(unsigned status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  // `json_text` must already be serialized JSON.
  static Response json(unsigned status, std::string json_text);
  static Response empty(unsigned status);
  // A chunked streamed response, e.g. "application/x-ndjson".
  static Response stream(unsigned status, std::string content_type, StreamProducer producer);
  // A streamed response of exactly `length` bytes (downloads, Range answers).
  static Response sized(unsigned status, std::string content_type, std::uint64_t length,
                        StreamProducer producer);
  // Adds a header; returns *this for chaining.
  Response& header(std::string name, std::string value);
};

// The one ErrorCode → HTTP mapping of fleetlet:
//   kInvalidArgument 400, kNotFound 404, kAlreadyExists 409, kFailedPrecondition 409,
//   kResourceExhausted 507 (out of storage; body limits are 413 from the server itself),
//   kUnavailable 503, kInternal 500.
unsigned httpStatus(ErrorCode code);
// "ERR_BAD_REQUEST", "ERR_NOT_FOUND", "ERR_ALREADY_EXISTS", "ERR_FAILED_PRECONDITION",
// "ERR_RESOURCE_EXHAUSTED", "ERR_UNAVAILABLE", "ERR_INTERNAL".
std::string_view errorCodeName(ErrorCode code);
// {"code":"ERR_...","message":"..."} with the mapped status.
Response errorResponse(const Error& error);
Response errorResponse(unsigned status, std::string_view code, std::string_view message);

using Handler = std::function<Task<Response>(Request&)>;

struct RouteOptions {
  // Overrides ServerOptions::default_body_limit for this route.
  std::optional<std::uint64_t> body_limit;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  // Stops the server (with a short grace period) if it is running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds a route. `pattern` is a path whose segments are literals, `{name}` (one segment) or,
  // last, `{name...}` (the rest of the path). Literal segments win over parameters. Fails
  // with kInvalidArgument on a malformed pattern and kFailedPrecondition after start().
  // HEAD (RFC 9110 §9.3.2): a path with a GET route and no HEAD route of its own answers HEAD
  // by running the GET handler and sending its status and headers (Content-Length included)
  // without the body; a streamed body's producer is not run. 405 and preflights list HEAD.
  Status route(std::string_view method, std::string_view pattern, Handler handler,
               RouteOptions options = {});

  // Listens on TCP `address` (a literal IPv4/IPv6 address) and `port` (0: any free port).
  // Fails with the bind/listen errno (kAlreadyExists is not used: EADDRINUSE is kInternal
  // with sysErrno() set). May be called before or after start().
  Result<ListenerInfo> listenTcp(std::string_view address, std::uint16_t port,
                                 std::string tag = "");
  // Listens on a unix socket at `path`. A stale socket file is removed; fails with
  // kAlreadyExists when a server answers there. `mode` (e.g. 0660) is applied with chmod.
  Result<ListenerInfo> listenUnix(const std::string& path, std::string tag = "",
                                  std::optional<mode_t> mode = std::nullopt);
  // Accepts on an already listening stream socket (received by socket handoff) and tags its
  // connections with `tag`. Takes ownership of fd. Fails with kInvalidArgument when fd is not
  // a listening stream socket.
  Result<ListenerInfo> adoptListener(UniqueFd fd, std::string tag);
  // Closes every listener tagged `tag` (connections already accepted go on). Fails with
  // kNotFound when there is none.
  Status closeListeners(std::string_view tag);
  std::vector<ListenerInfo> listeners() const;

  // Starts the io and blocking threads; returns at once. Fails with kFailedPrecondition when
  // already started or stopped.
  Status start();
  // Graceful shutdown: stops accepting, closes idle connections, closes streamed responses
  // (their producers see isOpen() == false), lets in-flight requests finish for up to `grace`,
  // then closes what remains and joins all threads. Blocks; idempotent; any thread except
  // the server's own.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // Blocks until stop() has finished.
  void wait();

 private:
  std::unique_ptr<detail::ServerImpl> impl_;
};

}  // namespace fleetlet::http
