#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/router.h"
#include "http/websocket_internal.h"

namespace fleetlet::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

using Clock = std::chrono::steady_clock;
using ErrorCodeT = boost::system::error_code;

// Size of one body piece handed to handlers: the bound on per-request body memory.
constexpr std::size_t kBodyChunkSize = std::size_t{64} * 1024;
// Bytes a client may send (pipelined) while a streamed response runs before we stop reading.
constexpr std::size_t kMaxBufferedWhileStreaming = std::size_t{64} * 1024;
// A closing connection reads (and drops) at most this much of what the client still sends,
// so that it sees our response rather than a reset.
constexpr std::size_t kLingerBytes = std::size_t{1024} * 1024;
constexpr std::chrono::milliseconds kLingerTimeout{1000};
constexpr std::chrono::milliseconds kForceCloseWait{1000};

auto redirect(ErrorCodeT& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string describeSockaddr(const sockaddr* addr, socklen_t len) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (len >= sizeof(sockaddr_in) && addr->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, addr, sizeof(in));
    ::inet_ntop(AF_INET, &in.sin_addr, text.data(), text.size());
    return fmt::format("{}:{}", text.data(), ntohs(in.sin_port));
  }
  if (len >= sizeof(sockaddr_in6) && addr->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, addr, sizeof(in6));
    ::inet_ntop(AF_INET6, &in6.sin6_addr, text.data(), text.size());
    return fmt::format("[{}]:{}", text.data(), ntohs(in6.sin6_port));
  }
  if (addr->sa_family == AF_UNIX) return "unix";
  return "unknown";
}

bool isParseError(const ErrorCodeT& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
         ec != bhttp::error::partial_message && ec != bhttp::error::end_of_stream;
}

// Statuses whose responses never have a body (RFC 9110 §6.4.1): no Content-Length either.
bool bodilessStatus(unsigned status) { return status < 200 || status == 204 || status == 304; }

// The methods to announce for a path (405 Allow, preflight): HEAD goes with GET.
std::vector<std::string> announcedMethods(std::vector<std::string> methods) {
  auto get = std::find(methods.begin(), methods.end(), "GET");
  if (get != methods.end() && std::find(methods.begin(), methods.end(), "HEAD") == methods.end()) {
    methods.insert(get + 1, "HEAD");
  }
  return methods;
}

std::string jsonString(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Error mapping and Response helpers.

unsigned httpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kResourceExhausted:
      return 507;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "ERR_BAD_REQUEST";
    case ErrorCode::kNotFound:
      return "ERR_NOT_FOUND";
    case ErrorCode::kAlreadyExists:
      return "ERR_ALREADY_EXISTS";
    case ErrorCode::kFailedPrecondition:
      return "ERR_FAILED_PRECONDITION";
    case ErrorCode::kResourceExhausted:
      return "ERR_RESOURCE_EXHAUSTED";
    case ErrorCode::kUnavailable:
      return "ERR_UNAVAILABLE";
    case ErrorCode::kInternal:
      return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

Response errorResponse(const Error& error) {
  return errorResponse(httpStatus(error.code()), errorCodeName(error.code()), error.message());
}

Response errorResponse(unsigned status, std::string_view code, std::string_view message) {
  return Response::json(
      status, fmt::format(R"({{"code":{},"message":{}}})", jsonString(code), jsonString(message)));
}

Response Response::text(unsigned status, std::string body, std::string content_type) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  response.headers.emplace_back("Content-Type", std::move(content_type));
  return response;
}

Response Response::json(unsigned status, std::string json_text) {
  return text(status, std::move(json_text), "application/json");
}

Response Response::empty(unsigned status) {
  Response response;
  response.status = status;
  return response;
}

Response Response::stream(unsigned status, std::string content_type, StreamProducer producer) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::move(content_type));
  response.producer = std::move(producer);
  return response;
}

Response Response::sized(unsigned status, std::string content_type, std::uint64_t length,
                         StreamProducer producer) {
  Response response = stream(status, std::move(content_type), std::move(producer));
  response.stream_length = length;
  return response;
}

Response& Response::header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

namespace detail {

// ---------------------------------------------------------------------------------------------
// ServerImpl: listeners, routes, threads and the registry of live connections.

using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

struct Listener {
  Acceptor acceptor;
  ListenerInfo info;
  // Removed when the listener closes (only for sockets the server created).
  std::optional<std::string> unix_path;

  void close() {
    ErrorCodeT ec;
    acceptor.close(ec);
    if (unix_path) (void)::unlink(unix_path->c_str());
    unix_path.reset();
  }
};

class ServerImpl {
 public:
  explicit ServerImpl(ServerOptions options);
  ~ServerImpl();

  Result<ListenerInfo> addListener(UniqueFd fd, std::string tag,
                                   std::optional<std::string> unix_path);
  Status closeListeners(std::string_view tag);
  std::vector<ListenerInfo> listeners() const;
  Status start();
  void stop(std::chrono::milliseconds grace);
  void wait();
  void removeConnection(std::uint64_t id);
  bool stopping() const { return stopping_.load(); }

  struct RouteEntry {
    Handler handler;
    std::uint64_t body_limit;
  };

  const ServerOptions options_;
  // Created first, destroyed last (see ~ServerImpl).
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<asio::thread_pool> pool_;
  // Written only before start().
  Router router_;
  std::vector<RouteEntry> routes_;

 private:
  enum class Phase : std::uint8_t { kNew, kRunning, kStopping, kStopped };

  Task<void> acceptLoop(std::shared_ptr<Listener> listener);
  template <typename Fn>
  void forEachConnection(Fn fn);
  // Waits (mutex_ held through `lock`) until no connection is left or `deadline` passes.
  bool waitForConnections(std::unique_lock<std::mutex>& lock, Clock::time_point deadline);

  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Phase phase_ = Phase::kNew;                                       // guarded by mutex_
  std::vector<std::shared_ptr<Listener>> listeners_;                // guarded by mutex_
  std::map<std::uint64_t, std::weak_ptr<Connection>> connections_;  // guarded by mutex_
  std::uint64_t next_connection_id_ = 0;                            // guarded by mutex_
  int running_threads_ = 0;                                         // guarded by mutex_
  // Set by stop() when the loop could not be drained; ~ServerImpl then leaks io_.
  bool abandon_io_ = false;

  friend class fleetlet::http::Server;
};

// ---------------------------------------------------------------------------------------------
// Connection: one accepted socket, served request after request on its own strand.

class Connection {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  Connection(ServerImpl& server, Socket socket, std::string tag, std::string remote,
             std::uint64_t id)
      : server_(server),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        watcher_done_(socket_.get_executor()),
        tag_(std::move(tag)),
        remote_(std::move(remote)),
        id_(id),
        buffer_(server.options_.max_header_bytes + kBodyChunkSize) {}

  asio::any_io_executor executor() { return socket_.get_executor(); }
  // The parser of the current request: set from the first header byte read until the request
  // is done (run()); only called in between.
  bhttp::request_parser<bhttp::buffer_body>& parser() {
    return *parser_;  // NOLINT(bugprone-unchecked-optional-access): see above
  }

  // The connection's main loop. `self` keeps the connection alive while it runs.
  Task<void> run(std::shared_ptr<Connection> self);
  // Server stopping: closes an idle connection and closes a streamed response; a request in
  // progress finishes and then the connection closes. A connection whose request has arrived
  // but not been read yet (bytes in the socket: the loop had not resumed) is not idle: it is
  // answered (Connection: close). On the strand.
  void beginShutdown();
  // Grace period over: closes the socket. On the strand.
  void forceClose();

  Task<Result<std::size_t>> readInto(Request& request, char* out, std::size_t capacity);
  Task<Status> writeStream(StreamWriter& writer, std::string_view data);
  Task<Status> sendFileStream(StreamWriter& writer, int fd, std::uint64_t offset,
                              std::uint64_t count);

 private:
  enum class State : std::uint8_t { kWaiting, kHandling, kStreaming, kWebSocket };

  Task<void> watchdog(std::shared_ptr<Connection> self);
  void setDeadline(std::chrono::milliseconds timeout);
  void clearDeadline() { deadline_ = Clock::time_point::max(); }
  void closeSocket();
  // Serves the request whose header is in parser_. Returns whether to keep the connection.
  Task<bool> serve();
  Task<Response> dispatch(Request& request);
  Response preflight(const Router::Match& match);
  // Writes `response` (only its header when answering HEAD); returns whether the connection
  // may serve another request.
  Task<bool> writeResponse(Response& response, bool keep_alive);
  // Writes the status and header of `response` for a HEAD request: the Content-Length the
  // body would have had, no body, no producer run.
  Task<bool> writeHeadResponse(Response& response, bool keep_alive);
  // Upgrades to a WebSocket and runs response.websocket (426 when not an upgrade request).
  // Returns false: the connection ends with the handler.
  Task<bool> serveWebSocket(Response& response);
  template <typename Message>
  void decorate(Message& message, const Response& response, bool keep_alive);
  // Formats the status line and header of a full (not streamed) response into head_text_:
  // its headers, the server's default headers and CORS origin where it sets none, Connection:
  // close unless `keep_alive`, and Content-Length unless its status has no body.
  void formatHead(const Response& response, bool keep_alive);
  Task<void> watchForDisconnect(StreamWriter& writer);
  Task<void> lingeringClose();

  ServerImpl& server_;
  Socket socket_;
  asio::steady_timer timer_;
  asio::steady_timer watcher_done_;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::string tag_;
  std::string remote_;
  std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  std::string head_text_;  // formatHead()'s output, reused by every response
  State state_ = State::kWaiting;
  StreamWriter* writer_ = nullptr;
  bool finished_ = false;
  bool timed_out_ = false;
  // The request being answered is a HEAD request: responses go without a body.
  bool head_ = false;
  bool watcher_running_ = false;
  bool watcher_stop_ = false;
};

void Connection::setDeadline(std::chrono::milliseconds timeout) {
  deadline_ = Clock::now() + timeout;
  // Waking the watchdog early lets it re-arm; a later deadline is picked up when it wakes.
  if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);
}

void Connection::closeSocket() {
  ErrorCodeT ec;
  socket_.shutdown(asio::socket_base::shutdown_both, ec);
  socket_.close(ec);
}

Task<void> Connection::watchdog(std::shared_ptr<Connection> self) {
  (void)self;  // keeps the connection alive while the watchdog runs
  while (!finished_) {
    timer_.expires_at(deadline_);
    ErrorCodeT ec;
    co_await timer_.async_wait(redirect(ec));
    if (finished_) break;
    if (Clock::now() >= deadline_) {
      spdlog::debug("http: connection from {} timed out", remote_);
      timed_out_ = true;
      deadline_ = Clock::time_point::max();
      closeSocket();
      if (writer_ != nullptr) writer_->close(true);
    }
  }
}

void Connection::beginShutdown() {
  switch (state_) {
    case State::kWaiting: {
      ErrorCodeT ec;
      const std::size_t pending = socket_.is_open() ? socket_.available(ec) : 0;
      if (buffer_.size() == 0 && (ec || pending == 0)) closeSocket();
      break;
    }
    case State::kStreaming:
      if (writer_ != nullptr) writer_->close(false);
      break;
    case State::kHandling:
      break;
    case State::kWebSocket:
      closeSocket();
      break;
  }
}

void Connection::forceClose() {
  closeSocket();
  if (writer_ != nullptr) writer_->close(true);
}

Task<void> Connection::run(std::shared_ptr<Connection> self) {
  asio::co_spawn(executor(), watchdog(self), asio::detached);
  const ServerOptions& options = server_.options_;
  while (!server_.stopping() && socket_.is_open()) {
    parser_.emplace();
    parser_->header_limit(options.max_header_bytes);
    // Enforced per route while reading. Not boost::none: Beast 1.74 compares
    // `len > body_limit_` with an empty optional as true and rejects every body.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    state_ = State::kWaiting;
    head_ = false;
    setDeadline(options.header_timeout);
    ErrorCodeT ec;
    co_await bhttp::async_read_header(socket_, buffer_, *parser_, redirect(ec));
    clearDeadline();
    if (ec) {
      if (timed_out_ || !socket_.is_open()) break;
      std::optional<Response> answer;
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        answer = errorResponse(431, "ERR_HEADER_TOO_LARGE", "request header too large");
      } else if (isParseError(ec)) {
        answer = errorResponse(400, "ERR_BAD_REQUEST", "malformed request: " + ec.message());
      }
      if (answer) {
        spdlog::debug("http: bad request from {}: {}", remote_, ec.message());
        co_await writeResponse(*answer, false);
      }
      break;
    }
    state_ = State::kHandling;
    head_ = parser_->get().method() == bhttp::verb::head;
    bool keep_alive = co_await serve();
    if (!keep_alive) break;
  }
  co_await lingeringClose();
  finished_ = true;
  closeSocket();
  timer_.cancel();
  parser_.reset();
  server_.removeConnection(id_);
}

Task<void> Connection::lingeringClose() {
  if (!socket_.is_open() || timed_out_ || server_.stopping()) co_return;
  ErrorCodeT ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
  if (ec) co_return;
  setDeadline(kLingerTimeout);
  std::array<char, 4096> scratch{};
  std::size_t drained = 0;
  while (drained < kLingerBytes) {
    std::size_t n = co_await socket_.async_read_some(asio::buffer(scratch), redirect(ec));
    if (ec) break;
    drained += n;
  }
  clearDeadline();
}

Task<bool> Connection::serve() {
  Request request(*this, *server_.pool_);
  request.tag_ = tag_;
  request.remote_ = remote_;
  Response response = co_await dispatch(request);
  bool keep_alive = parser().get().keep_alive() && !server_.stopping();
  if (request.body_failure_) {
    const Error& error = *request.body_failure_;
    if (error.code() == ErrorCode::kUnavailable) co_return false;  // the client is gone
    response = error.code() == ErrorCode::kResourceExhausted
                   ? errorResponse(413, "ERR_PAYLOAD_TOO_LARGE", error.message())
                   : errorResponse(error);
    keep_alive = false;
  }
  // An unread body would be taken for the next request.
  if (!request.bodyDone()) keep_alive = false;
  if (response.websocket) co_return co_await serveWebSocket(response);
  co_return co_await writeResponse(response, keep_alive);
}

Task<bool> Connection::serveWebSocket(Response& response) {
  if (!detail::WebSocketAccess::isUpgrade(parser().get())) {
    Response refuse = errorResponse(426, "ERR_UPGRADE_REQUIRED", "this path speaks WebSocket only");
    refuse.header("Upgrade", "websocket");
    co_return co_await writeResponse(refuse, false);
  }
  auto ws = detail::WebSocketAccess::make(socket_, *server_.pool_, tag_,
                                          server_.options_.websocket_idle_timeout);
  state_ = State::kWebSocket;
  if (server_.stopping()) co_return false;
  auto accepted = co_await detail::WebSocketAccess::accept(*ws, parser().get());
  if (accepted) {
    try {
      co_await response.websocket(*ws);
    } catch (const std::exception& e) {
      spdlog::error("http: websocket handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("http: websocket handler threw a non-exception");
    }
  }
  state_ = State::kHandling;
  co_return false;
}

Response Connection::preflight(const Router::Match& match) {
  std::string methods;
  for (const std::string& method : announcedMethods(match.allowed_methods)) {
    methods += method + ", ";
  }
  methods += "OPTIONS";
  Response response = Response::empty(204);
  response.header("Access-Control-Allow-Methods", methods)
      .header("Access-Control-Allow-Headers", "Content-Type, Authorization")
      .header("Access-Control-Max-Age", "600");
  return response;
}

Task<Response> Connection::dispatch(Request& request) {
  auto& message = parser().get();
  std::string_view target(message.target().data(), message.target().size());
  std::size_t question = target.find('?');
  auto segments = splitPath(target.substr(0, question));
  if (!segments) co_return errorResponse(400, "ERR_BAD_REQUEST", segments.error().message());
  auto path = percentDecode(target.substr(0, question), false);
  if (!path) co_return errorResponse(400, "ERR_BAD_REQUEST", path.error().message());
  request.path_ = std::move(*path);
  if (question != std::string_view::npos) {
    auto query = parseQuery(target.substr(question + 1));
    if (!query) co_return errorResponse(400, "ERR_BAD_REQUEST", query.error().message());
    request.query_ = std::move(*query);
  }

  std::string_view method(message.method_string().data(), message.method_string().size());
  Router::Match match = server_.router_.find(method, *segments);
  if (method == "HEAD" && !match.found) {
    // No HEAD route of its own: the GET route answers (writeResponse drops the body).
    Router::Match get = server_.router_.find("GET", *segments);
    if (get.found) match = std::move(get);
  }
  if (method == "OPTIONS" && server_.options_.cors_origin && !match.found &&
      !match.allowed_methods.empty()) {
    co_return preflight(match);
  }
  if (!match.found) {
    if (match.allowed_methods.empty()) {
      co_return errorResponse(404, "ERR_NOT_FOUND",
                              fmt::format("no route for {} {}", method, request.path_));
    }
    std::string allow;
    for (const std::string& m : announcedMethods(match.allowed_methods)) {
      allow += (allow.empty() ? "" : ", ") + m;
    }
    Response response = errorResponse(
        405, "ERR_METHOD_NOT_ALLOWED",
        fmt::format("{} is not allowed on {} (allowed: {})", method, request.path_, allow));
    response.header("Allow", allow);
    co_return response;
  }

  const ServerImpl::RouteEntry& route = server_.routes_[match.route];
  request.params_ = std::move(match.params);
  request.body_limit_ = route.body_limit;
  if (auto length = request.contentLength(); length && *length > route.body_limit) {
    request.body_failure_ =
        Error(ErrorCode::kResourceExhausted,
              fmt::format("request body of {} bytes exceeds the limit of {} bytes", *length,
                          route.body_limit));
    co_return Response::empty(413);  // replaced in serve()
  }
  try {
    co_return co_await route.handler(request);
  } catch (const std::exception& e) {
    spdlog::error("http: handler for {} {} threw: {}", method, request.path_, e.what());
  } catch (...) {
    spdlog::error("http: handler for {} {} threw a non-exception", method, request.path_);
  }
  co_return errorResponse(500, "ERR_INTERNAL", "internal error");
}

template <typename Message>
void Connection::decorate(Message& message, const Response& response, bool keep_alive) {
  for (const auto& [name, value] : response.headers) message.insert(name, value);
  for (const auto& [name, value] : server_.options_.response_headers) {
    if (message.find(name) == message.end()) message.set(name, value);
  }
  const auto& origin = server_.options_.cors_origin;
  if (origin && message.find(bhttp::field::access_control_allow_origin) == message.end()) {
    message.set(bhttp::field::access_control_allow_origin, *origin);
  }
  message.keep_alive(keep_alive);
}

void Connection::formatHead(const Response& response, bool keep_alive) {
  // What Beast's serializer of a decorated response<string_body> writes (decorate() and
  // prepare_payload()), formatted into a buffer the connection keeps: a full response costs
  // no allocation for its header fields and no serializer state.
  auto has = [&](std::string_view name) {
    return std::any_of(response.headers.begin(), response.headers.end(), [&](const auto& h) {
      return beast::iequals(beast::string_view(h.first.data(), h.first.size()),
                            beast::string_view(name.data(), name.size()));
    });
  };
  std::string& out = head_text_;
  out.clear();
  auto line = [&out](std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
  };
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\n", response.status,
                 std::string_view(reason.data(), reason.size()));
  for (const auto& [name, value] : response.headers) line(name, value);
  for (const auto& [name, value] : server_.options_.response_headers) {
    if (!has(name)) line(name, value);
  }
  const auto& origin = server_.options_.cors_origin;
  if (origin && !has("Access-Control-Allow-Origin")) line("Access-Control-Allow-Origin", *origin);
  if (!keep_alive) line("Connection", "close");
  if (!bodilessStatus(response.status)) {
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", response.body.size());
  }
  out.append("\r\n");
}

Task<bool> Connection::writeHeadResponse(Response& response, bool keep_alive) {
  bhttp::response<bhttp::empty_body> message{static_cast<bhttp::status>(response.status), 11};
  decorate(message, response, keep_alive);
  if (!bodilessStatus(response.status)) {
    if (!response.producer) {
      message.content_length(response.body.size());
    } else if (response.stream_length) {
      message.content_length(*response.stream_length);
    } else {
      message.chunked(true);
    }
  }
  // The serializer of an empty body writes the header only, whatever it announces.
  bhttp::response_serializer<bhttp::empty_body> serializer{message};
  ErrorCodeT ec;
  setDeadline(server_.options_.write_timeout);
  co_await bhttp::async_write_header(socket_, serializer, redirect(ec));
  clearDeadline();
  co_return !ec && keep_alive;
}

Task<bool> Connection::writeResponse(Response& response, bool keep_alive) {
  if (head_) co_return co_await writeHeadResponse(response, keep_alive);
  const ServerOptions& options = server_.options_;
  ErrorCodeT ec;
  if (!response.producer) {
    if (bodilessStatus(response.status)) {
      // No body and no Content-Length: a 304's would claim the representation is empty.
      response.body.clear();
    }
    formatHead(response, keep_alive);
    // Header and body in one gather write (one sendmsg for a small response).
    const std::array<asio::const_buffer, 2> pieces{asio::buffer(head_text_),
                                                   asio::buffer(response.body)};
    setDeadline(options.write_timeout);
    co_await asio::async_write(socket_, pieces, redirect(ec));
    clearDeadline();
    co_return !ec && keep_alive;
  }

  bhttp::response<bhttp::empty_body> message{static_cast<bhttp::status>(response.status), 11};
  decorate(message, response, keep_alive);
  bool chunked = !response.stream_length.has_value();
  if (chunked) {
    message.chunked(true);
  } else {
    message.content_length(*response.stream_length);
  }
  bhttp::response_serializer<bhttp::empty_body> serializer{message};
  setDeadline(options.write_timeout);
  co_await bhttp::async_write_header(socket_, serializer, redirect(ec));
  clearDeadline();
  if (ec) co_return false;

  StreamWriter writer(*this, *server_.pool_, chunked, response.stream_length);
  writer_ = &writer;
  state_ = State::kStreaming;
  if (server_.stopping()) writer.close(false);
  watcher_running_ = true;
  watcher_stop_ = false;
  asio::co_spawn(executor(), watchForDisconnect(writer), asio::detached);

  bool producer_failed = false;
  try {
    co_await response.producer(writer);
  } catch (const std::exception& e) {
    spdlog::error("http: stream producer threw: {}", e.what());
    producer_failed = true;
  } catch (...) {
    spdlog::error("http: stream producer threw a non-exception");
    producer_failed = true;
  }

  state_ = State::kHandling;
  if (watcher_running_) {
    watcher_stop_ = true;
    socket_.cancel(ec);
    watcher_done_.expires_at(Clock::time_point::max());
    co_await watcher_done_.async_wait(redirect(ec));
  }
  writer_ = nullptr;

  bool complete = !writer.client_gone_ && !producer_failed;
  if (complete && chunked) {
    setDeadline(options.write_timeout);
    auto last = bhttp::make_chunk_last();  // named: see writeStream()
    co_await asio::async_write(socket_, last, redirect(ec));
    clearDeadline();
    complete = !ec;
  }
  if (!chunked && writer.written_ != *response.stream_length) complete = false;
  co_return complete&& keep_alive && !server_.stopping();
}

Task<void> Connection::watchForDisconnect(StreamWriter& writer) {
  // Reads while the response streams: EOF or an error means the client went away. Bytes a
  // client pipelines meanwhile stay in buffer_ for the next request.
  while (!watcher_stop_ && buffer_.size() < kMaxBufferedWhileStreaming) {
    ErrorCodeT ec;
    std::size_t n = co_await socket_.async_read_some(buffer_.prepare(4096), redirect(ec));
    if (ec) {
      if (!watcher_stop_) writer.close(true);
      break;
    }
    buffer_.commit(n);
  }
  watcher_running_ = false;
  watcher_done_.cancel();
}

Task<Result<std::size_t>> Connection::readInto(Request& request, char* out, std::size_t capacity) {
  if (request.body_failure_) co_return std::unexpected(*request.body_failure_);
  if (request.bodyDone() || capacity == 0) co_return 0;
  const ServerOptions& options = server_.options_;
  ErrorCodeT ec;
  if (!request.continue_sent_) {
    request.continue_sent_ = true;
    auto expect = request.header("Expect");
    if (expect &&
        beast::iequals(beast::string_view(expect->data(), expect->size()), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      setDeadline(options.write_timeout);
      co_await asio::async_write(socket_, asio::buffer(kContinue), redirect(ec));
      clearDeadline();
      if (ec) {
        request.body_failure_ = Error(ErrorCode::kUnavailable, "client went away: " + ec.message());
        co_return std::unexpected(*request.body_failure_);
      }
    }
  }
  auto failRead = [&](const ErrorCodeT& error) -> Error {
    request.body_failure_ =
        isParseError(error)
            ? Error(ErrorCode::kInvalidArgument, "malformed request body: " + error.message())
            : Error(ErrorCode::kUnavailable, timed_out_
                                                 ? std::string("request body timed out")
                                                 : "reading request body: " + error.message());
    return *request.body_failure_;
  };
  auto count = [&](std::size_t n) -> Result<std::size_t> {
    request.body_read_ += n;
    if (request.body_read_ > request.body_limit_) {
      request.body_failure_ =
          Error(ErrorCode::kResourceExhausted,
                fmt::format("request body exceeds the limit of {} bytes", request.body_limit_));
      return std::unexpected(*request.body_failure_);
    }
    return n;
  };

  if (auto length = request.contentLength()) {
    // A Content-Length body needs no decoding: it bypasses Beast's parser and goes from the
    // socket straight into `out` (one copy, as large as the caller's buffer), after the body
    // bytes that arrived with the header. Never reads past the body: a pipelined next request
    // stays in the socket (or in buffer_) for the next parser.
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(capacity, *length - request.body_read_));
    if (buffer_.size() > 0) {
      std::size_t n = asio::buffer_copy(asio::buffer(out, want), buffer_.data());
      buffer_.consume(n);
      co_return count(n);
    }
    setDeadline(options.body_read_timeout);
    std::size_t n = co_await socket_.async_read_some(asio::buffer(out, want), redirect(ec));
    clearDeadline();
    if (ec) co_return std::unexpected(failRead(ec));
    co_return count(n);
  }

  // Chunked: Beast decodes into `out`.
  // A flat_buffer starts small and Beast reads at most its free capacity per recv(); without
  // this a streamed body arrives ~1 KiB per syscall.
  if (buffer_.capacity() < kBodyChunkSize) buffer_.reserve(kBodyChunkSize);
  while (true) {
    auto& body = parser().get().body();
    body.data = out;
    body.size = capacity;
    body.more = true;
    setDeadline(options.body_read_timeout);
    co_await bhttp::async_read_some(socket_, buffer_, parser(), redirect(ec));
    clearDeadline();
    if (ec == bhttp::error::need_buffer) ec = {};
    std::size_t n = capacity - body.size;
    if (ec) co_return std::unexpected(failRead(ec));
    if (n > 0) co_return count(n);
    if (parser().is_done()) co_return 0;
  }
}

Task<Status> Connection::writeStream(StreamWriter& writer, std::string_view data) {
  if (!writer.open_) {
    co_return fail(ErrorCode::kUnavailable, "{}",
                   writer.client_gone_ ? "client disconnected" : "server is stopping");
  }
  if (data.empty()) co_return Status();
  if (writer.length_ && writer.written_ + data.size() > *writer.length_) {
    co_return fail(ErrorCode::kInvalidArgument, "write of {} bytes exceeds Content-Length {}",
                   data.size(), *writer.length_);
  }
  ErrorCodeT ec;
  setDeadline(server_.options_.write_timeout);
  if (writer.chunked_) {
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice, and a
    // chunk holds a shared_ptr.
    auto chunk = bhttp::make_chunk(asio::buffer(data));
    co_await asio::async_write(socket_, chunk, redirect(ec));
  } else {
    co_await asio::async_write(socket_, asio::buffer(data), redirect(ec));
  }
  clearDeadline();
  if (ec) {
    writer.close(true);
    co_return fail(ErrorCode::kUnavailable, "client disconnected: {}", ec.message());
  }
  writer.written_ += data.size();
  co_return Status();
}

Task<Status> Connection::sendFileStream(StreamWriter& writer, int fd, std::uint64_t offset,
                                        std::uint64_t count) {
  if (!writer.open_) {
    co_return fail(ErrorCode::kUnavailable, "{}",
                   writer.client_gone_ ? "client disconnected" : "server is stopping");
  }
  // Sized iff not chunked (writeStream).
  if (!writer.length_) {
    co_return fail(ErrorCode::kInvalidArgument, "sendFile needs a sized response");
  }
  if (count == 0) co_return Status();
  if (writer.written_ + count > *writer.length_) {
    co_return fail(ErrorCode::kInvalidArgument, "sendFile of {} bytes exceeds Content-Length {}",
                   count, *writer.length_);
  }
  // sendfile(2) has no MSG_NOSIGNAL: a peer that went away would kill the process.
  static const bool sigpipe_ignored = [] {
    (void)::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  ErrorCodeT ec;
  // Asio keeps working with a non-blocking descriptor; sendfile must not block the strand.
  socket_.native_non_blocking(true, ec);
  if (ec) co_return fail(ErrorCode::kInternal, "sendFile: {}", ec.message());
  auto position = static_cast<off_t>(offset);
  std::uint64_t left = count;
  while (left > 0) {
    if (!writer.open_) co_return fail(ErrorCode::kUnavailable, "client disconnected");
    std::size_t step = static_cast<std::size_t>(std::min<std::uint64_t>(left, 1u << 30));
    ssize_t n = ::sendfile(socket_.native_handle(), fd, &position, step);
    if (n > 0) {
      left -= static_cast<std::uint64_t>(n);
      writer.written_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) {
      co_return fail(ErrorCode::kInternal, "sendFile: file ended {} bytes early", left);
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      setDeadline(server_.options_.write_timeout);
      co_await socket_.async_wait(asio::socket_base::wait_write, redirect(ec));
      clearDeadline();
      if (ec) {
        writer.close(true);
        co_return fail(ErrorCode::kUnavailable, "client disconnected: {}", ec.message());
      }
      continue;
    }
    if (err == EPIPE || err == ECONNRESET) {
      writer.close(true);
      co_return fail(ErrorCode::kUnavailable, "client disconnected: {}", std::strerror(err));
    }
    co_return failErrno(err, "sendfile");
  }
  co_return Status();
}

// ---------------------------------------------------------------------------------------------
// ServerImpl

ServerImpl::ServerImpl(ServerOptions options)
    : options_(std::move(options)),
      io_(std::make_unique<asio::io_context>(std::max(1, options_.io_threads))),
      pool_(std::make_unique<asio::thread_pool>(std::max(1, options_.blocking_threads))) {}

ServerImpl::~ServerImpl() {
  stop(std::chrono::milliseconds(1000));
  // Order matters: blocking jobs post back to io_ executors, and coroutine frames still queued
  // in io_ hold listeners and connections.
  pool_->join();
  pool_.reset();
  {
    std::lock_guard lock(mutex_);
    listeners_.clear();
  }
  if (abandon_io_) {
    (void)io_.release();  // see stop()
  } else {
    io_.reset();
  }
}

Result<ListenerInfo> ServerImpl::addListener(UniqueFd fd, std::string tag,
                                             std::optional<std::string> unix_path) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return failErrno(errno, "getsockname");
  }
  ListenerInfo info;
  info.tag = std::move(tag);
  int family = address.ss_family;
  if (family == AF_UNIX) {
    sockaddr_un un{};
    std::memcpy(&un, &address, std::min<std::size_t>(length, sizeof(un)));
    info.address = unix_path.value_or(un.sun_path);
  } else if (family == AF_INET || family == AF_INET6) {
    info.address = describeSockaddr(reinterpret_cast<const sockaddr*>(&address), length);
    info.port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port)
                                  : ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  } else {
    return fail(ErrorCode::kInvalidArgument, "listener socket of unsupported family {}", family);
  }

  auto listener = std::make_shared<Listener>(Listener{Acceptor(asio::make_strand(*io_)), info, {}});
  ErrorCodeT ec;
  listener->acceptor.assign(
      asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP), fd.get(), ec);
  if (ec) return failErrno(ec.value(), "adopting listener {}", info.address);
  fd.release();
  listener->unix_path = std::move(unix_path);
  {
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::kStopping || phase_ == Phase::kStopped) {
      listener->close();
      return fail(ErrorCode::kFailedPrecondition, "server is stopped");
    }
    listeners_.push_back(listener);
  }
  asio::co_spawn(listener->acceptor.get_executor(), acceptLoop(listener), asio::detached);
  spdlog::debug("http: listening on {} (tag '{}')", info.address, info.tag);
  return info;
}

Task<void> ServerImpl::acceptLoop(std::shared_ptr<Listener> listener) {
  while (listener->acceptor.is_open()) {
    Connection::Socket socket(asio::make_strand(*io_));
    ErrorCodeT ec;
    co_await listener->acceptor.async_accept(socket, redirect(ec));
    if (stopping_ || !listener->acceptor.is_open()) break;
    if (ec) {
      // EMFILE and friends: back off instead of spinning; the backlog keeps the clients.
      spdlog::warn("http: accept on {} failed: {}", listener->info.address, ec.message());
      asio::steady_timer pause(listener->acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(redirect(ec));
      continue;
    }
    if (listener->info.port != 0) {
      // Small streamed chunks (NDJSON events) must not wait for Nagle's algorithm.
      int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    auto remote = socket.remote_endpoint(ec);
    std::string peer = ec ? "unknown" : describeSockaddr(remote.data(), remote.size());
    std::shared_ptr<Connection> connection;
    {
      std::lock_guard lock(mutex_);
      std::uint64_t id = next_connection_id_++;
      connection = std::make_shared<Connection>(*this, std::move(socket), listener->info.tag,
                                                std::move(peer), id);
      connections_[id] = connection;
    }
    asio::co_spawn(connection->executor(), connection->run(connection),
                   [](const std::exception_ptr& error) {
                     if (!error) return;
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       spdlog::error("http: connection failed: {}", e.what());
                     } catch (...) {
                       spdlog::error("http: connection failed");
                     }
                   });
  }
}

Status ServerImpl::closeListeners(std::string_view tag) {
  std::vector<std::shared_ptr<Listener>> closing;
  {
    std::lock_guard lock(mutex_);
    auto it = std::partition(listeners_.begin(), listeners_.end(),
                             [&](const auto& l) { return l->info.tag != tag; });
    closing.assign(it, listeners_.end());
    listeners_.erase(it, listeners_.end());
  }
  if (closing.empty()) return fail(ErrorCode::kNotFound, "no listener tagged '{}'", tag);
  for (auto& listener : closing) {
    asio::post(listener->acceptor.get_executor(), [listener] { listener->close(); });
  }
  return {};
}

std::vector<ListenerInfo> ServerImpl::listeners() const {
  std::lock_guard lock(mutex_);
  std::vector<ListenerInfo> infos;
  infos.reserve(listeners_.size());
  for (const auto& listener : listeners_) infos.push_back(listener->info);
  return infos;
}

Status ServerImpl::start() {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::kNew) return fail(ErrorCode::kFailedPrecondition, "server already started");
  work_.emplace(io_->get_executor());
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    ++running_threads_;
    threads_.emplace_back([this] {
      // Named for per-thread profiles (top -H, /proc/<pid>/task/*/comm, perf).
      ::pthread_setname_np(::pthread_self(), "http-io");
      try {
        io_->run();
      } catch (const std::exception& e) {
        spdlog::critical("http: io thread failed: {}", e.what());
        std::terminate();  // a broken invariant: every handler catches its own errors
      }
      std::lock_guard exit_lock(mutex_);
      --running_threads_;
      changed_.notify_all();
    });
  }
  phase_ = Phase::kRunning;
  return {};
}

template <typename Fn>
void ServerImpl::forEachConnection(Fn fn) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, weak] : connections_) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
  }
  for (auto& connection : live) {
    asio::post(connection->executor(), [connection, fn] { fn(*connection); });
  }
}

bool ServerImpl::waitForConnections(std::unique_lock<std::mutex>& lock,
                                    Clock::time_point deadline) {
  return changed_.wait_until(lock, deadline, [this] { return connections_.empty(); });
}

void ServerImpl::stop(std::chrono::milliseconds grace) {
  std::vector<std::shared_ptr<Listener>> closing;
  bool was_running = false;
  {
    std::unique_lock lock(mutex_);
    if (phase_ == Phase::kStopping || phase_ == Phase::kStopped) {
      changed_.wait(lock, [this] { return phase_ == Phase::kStopped; });
      return;
    }
    was_running = phase_ == Phase::kRunning;
    phase_ = Phase::kStopping;
    stopping_ = true;
    closing.swap(listeners_);
  }
  for (auto& listener : closing) {
    asio::post(listener->acceptor.get_executor(), [listener] { listener->close(); });
  }
  if (was_running) {
    forEachConnection([](Connection& c) { c.beginShutdown(); });
    std::unique_lock lock(mutex_);
    if (!waitForConnections(lock, Clock::now() + grace)) {
      spdlog::warn("http: {} connection(s) still busy after {} ms; closing them",
                   connections_.size(), grace.count());
      lock.unlock();
      forEachConnection([](Connection& c) { c.forceClose(); });
      lock.lock();
      waitForConnections(lock, Clock::now() + kForceCloseWait);
    }
    // Let the loop run out of work so every coroutine ends normally: destroying suspended
    // coroutine frames inside ~io_context is unsafe with Boost 1.74's strands.
    work_.reset();
    bool drained = changed_.wait_until(lock, Clock::now() + kForceCloseWait,
                                       [this] { return running_threads_ == 0; });
    lock.unlock();
    if (!drained) {
      io_->stop();
      abandon_io_ = true;
    }
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  } else {
    // Never started: run what the closes queued so accept loops end and sockets are released.
    io_->restart();
    io_->run_for(kForceCloseWait);
    if (!io_->stopped()) abandon_io_ = true;
  }
  if (abandon_io_) {
    spdlog::error(
        "http: work still pending after shutdown (a handler or producer ignores closing); "
        "leaking the event loop rather than destroying running coroutines");
  }
  std::lock_guard lock(mutex_);
  phase_ = Phase::kStopped;
  changed_.notify_all();
}

void ServerImpl::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return phase_ == Phase::kStopped; });
}

void ServerImpl::removeConnection(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  connections_.erase(id);
  changed_.notify_all();
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Request and StreamWriter

Request::Request(detail::Connection& connection, asio::thread_pool& pool)
    : connection_(&connection), pool_(&pool) {}

std::string_view Request::method() const {
  auto text = connection_->parser().get().method_string();
  return {text.data(), text.size()};
}

std::string_view Request::target() const {
  auto text = connection_->parser().get().target();
  return {text.data(), text.size()};
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  const auto& message = connection_->parser().get();
  auto it = message.find(beast::string_view(name.data(), name.size()));
  if (it == message.end()) return std::nullopt;
  return std::string_view(it->value().data(), it->value().size());
}

std::optional<std::string> Request::query(std::string_view name) const {
  for (const auto& [key, value] : query_) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [key, value] : params_) {
    if (key == name) return value;
  }
  return {};
}

std::optional<std::uint64_t> Request::contentLength() const {
  auto length = connection_->parser().content_length();
  if (!length) return std::nullopt;
  return *length;
}

bool Request::bodyDone() const {
  // A Content-Length body is read around the parser (see Connection::readInto).
  if (auto length = contentLength()) return body_read_ >= *length;
  return connection_->parser().is_done();
}

asio::any_io_executor Request::executor() const { return connection_->executor(); }

Task<Result<std::string_view>> Request::readSome() {
  if (chunk_.empty()) chunk_.resize(kBodyChunkSize);
  auto n = co_await connection_->readInto(*this, chunk_.data(), chunk_.size());
  if (!n) co_return std::unexpected(n.error());
  co_return std::string_view(chunk_.data(), *n);
}

Task<Result<std::size_t>> Request::readInto(std::span<char> out) {
  return connection_->readInto(*this, out.data(), out.size());
}

Task<Result<std::string>> Request::readBody() {
  std::string body;
  if (auto length = contentLength(); length && *length <= body_limit_) {
    // Straight into the string, without readSome()'s 64 KiB buffer (which a small request
    // would allocate, zero and free each time).
    body.resize(static_cast<std::size_t>(*length - std::min(*length, body_read_)));
    std::size_t filled = 0;
    while (filled < body.size()) {
      auto n = co_await connection_->readInto(*this, body.data() + filled, body.size() - filled);
      if (!n) co_return std::unexpected(n.error());
      if (*n == 0) break;
      filled += *n;
    }
    body.resize(filled);
    co_return body;
  }
  if (auto length = contentLength()) body.reserve(std::min(*length, body_limit_));
  while (true) {
    auto piece = co_await readSome();
    if (!piece) co_return std::unexpected(piece.error());
    if (piece->empty()) break;
    body.append(*piece);
  }
  co_return body;
}

Result<bool> boolQuery(const Request& request, std::string_view name) {
  auto text = request.query(name);
  if (!text || *text == "false" || *text == "0") return false;
  if (text->empty() || *text == "true" || *text == "1") return true;
  return fail(ErrorCode::kInvalidArgument, "query parameter {}: \"{}\" is not true or false", name,
              *text);
}

StreamWriter::StreamWriter(detail::Connection& connection, asio::thread_pool& pool, bool chunked,
                           std::optional<std::uint64_t> length)
    : connection_(&connection), pool_(&pool), chunked_(chunked), length_(length) {}

Task<Status> StreamWriter::write(std::string_view data) {
  return connection_->writeStream(*this, data);
}

Task<Status> StreamWriter::sendFile(int fd, std::uint64_t offset, std::uint64_t count) {
  return connection_->sendFileStream(*this, fd, offset, count);
}

void StreamWriter::onClose(std::function<void()> fn) {
  if (!open_) {
    fn();
    return;
  }
  on_close_.push_back(std::move(fn));
}

void StreamWriter::close(bool client_gone) {
  if (client_gone) client_gone_ = true;
  if (!open_) return;
  open_ = false;
  auto callbacks = std::move(on_close_);
  on_close_.clear();
  for (auto& fn : callbacks) {
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("http: stream close callback threw: {}", e.what());
    }
  }
}

asio::any_io_executor StreamWriter::executor() const { return connection_->executor(); }

// ---------------------------------------------------------------------------------------------
// Server

Server::Server(ServerOptions options)
    : impl_(std::make_unique<detail::ServerImpl>(std::move(options))) {}

Server::~Server() = default;

Status Server::route(std::string_view method, std::string_view pattern, Handler handler,
                     RouteOptions options) {
  {
    std::lock_guard lock(impl_->mutex_);
    if (impl_->phase_ != detail::ServerImpl::Phase::kNew) {
      return fail(ErrorCode::kFailedPrecondition, "routes must be added before start()");
    }
  }
  FLEETLET_ASSIGN_OR_RETURN(std::size_t index, impl_->router_.add(std::string(method), pattern));
  (void)index;
  impl_->routes_.push_back(
      {std::move(handler), options.body_limit.value_or(impl_->options_.default_body_limit)});
  return {};
}

Result<ListenerInfo> Server::listenTcp(std::string_view address, std::uint16_t port,
                                       std::string tag) {
  ErrorCodeT ec;
  auto ip = asio::ip::make_address(std::string(address), ec);
  if (ec) return fail(ErrorCode::kInvalidArgument, "listen: '{}' is not an IP address", address);
  asio::ip::tcp::endpoint endpoint(ip, port);
  UniqueFd fd(::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket for {}:{}", address, port);
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return failErrno(errno, "SO_REUSEADDR on {}:{}", address, port);
  }
  if (::bind(fd.get(), endpoint.data(), endpoint.size()) != 0) {
    return failErrno(errno, "bind {}:{}", address, port);
  }
  if (::listen(fd.get(), impl_->options_.backlog) != 0) {
    return failErrno(errno, "listen on {}:{}", address, port);
  }
  return impl_->addListener(std::move(fd), std::move(tag), std::nullopt);
}

Result<ListenerInfo> Server::listenUnix(const std::string& path, std::string tag,
                                        std::optional<mode_t> mode) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return fail(ErrorCode::kInvalidArgument, "unix socket path '{}' is empty or too long", path);
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const auto* addr = reinterpret_cast<const sockaddr*>(&address);

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fail(ErrorCode::kAlreadyExists, "{} exists and is not a socket", path);
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), addr, sizeof(address)) == 0) {
      return fail(ErrorCode::kAlreadyExists, "a server already listens on {}", path);
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return failErrno(errno, "removing stale socket {}", path);
    }
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket for {}", path);
  if (::bind(fd.get(), addr, sizeof(address)) != 0) return failErrno(errno, "bind {}", path);
  if (mode && ::chmod(path.c_str(), *mode) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return failErrno(err, "chmod {}", path);
  }
  if (::listen(fd.get(), impl_->options_.backlog) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return failErrno(err, "listen on {}", path);
  }
  return impl_->addListener(std::move(fd), std::move(tag), path);
}

Result<ListenerInfo> Server::adoptListener(UniqueFd fd, std::string tag) {
  if (!fd) return fail(ErrorCode::kInvalidArgument, "adoptListener: invalid fd");
  int type = 0;
  int accepting = 0;
  socklen_t length = sizeof(type);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
    return failErrno(errno, "adoptListener: fd {} is not a socket", fd.get());
  }
  length = sizeof(accepting);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0) {
    return failErrno(errno, "adoptListener: SO_ACCEPTCONN of fd {}", fd.get());
  }
  if (type != SOCK_STREAM || accepting == 0) {
    return fail(ErrorCode::kInvalidArgument,
                "adoptListener: fd {} is not a listening stream socket", fd.get());
  }
  return impl_->addListener(std::move(fd), std::move(tag), std::nullopt);
}

Status Server::closeListeners(std::string_view tag) { return impl_->closeListeners(tag); }

std::vector<ListenerInfo> Server::listeners() const { return impl_->listeners(); }

Status Server::start() { return impl_->start(); }

void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

void Server::wait() { impl_->wait(); }

}  // namespace fleetlet::http
