#include "ttrpc/server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "ttrpc/socket.h"
#include "ttrpc/ttrpc.pb.h"

namespace fleetlet::ttrpc {

struct Server::Connection {
  UniqueFd fd;
  std::mutex write_mu;
  std::atomic<std::size_t> in_flight{0};

  // Writes one frame whole; false when the peer is gone.
  bool send(std::uint32_t stream, const wire::Response& response) {
    std::string body;
    response.SerializeToString(&body);
    auto frame = encodeFrame(stream, MessageType::kResponse, body);
    if (!frame) {
      wire::Response refused;
      refused.mutable_status()->set_code(static_cast<int>(StatusCode::kResourceExhausted));
      refused.mutable_status()->set_message(frame.error().message());
      refused.SerializeToString(&body);
      frame = encodeFrame(stream, MessageType::kResponse, body);
    }
    std::lock_guard lock(write_mu);
    return writeAll(fd.get(), *frame);
  }
};

std::string_view RequestContext::get(std::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return {};
}

Result<std::unique_ptr<Server>> Server::listen(const std::filesystem::path& path) {
  FLEETLET_ASSIGN_OR_RETURN(UniqueFd fd, listenUnix(path));
  return adopt(std::move(fd));
}

std::unique_ptr<Server> Server::adopt(UniqueFd listener) {
  return std::unique_ptr<Server>(new Server(std::move(listener)));
}

Server::Server(UniqueFd listener)
    : listener_(std::move(listener)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Server::~Server() {
  shutdown();
  std::unique_lock lock(threads_mu_);
  threads_cv_.wait(lock, [&] { return threads_ == 0; });
}

void Server::registerMethod(std::string_view service, std::string_view method, Handler handler) {
  methods_[fmt::format("/{}/{}", service, method)] = std::move(handler);
}

void Server::threadStarted() {
  std::lock_guard lock(threads_mu_);
  ++threads_;
}

void Server::threadDone() {
  std::lock_guard lock(threads_mu_);
  if (--threads_ == 0) threads_cv_.notify_all();
}

void Server::shutdown() {
  if (stopping_.exchange(true)) return;
  std::uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  std::lock_guard lock(threads_mu_);
  for (auto& weak : connections_) {
    if (auto conn = weak.lock()) ::shutdown(conn->fd.get(), SHUT_RDWR);
  }
}

void Server::serve() {
  while (!stopping_) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stopping_ || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;  // EAGAIN, ECONNABORTED, EMFILE: try again on the next wake-up
    if (!peerAllowed(fd.get())) continue;
    auto conn = std::make_shared<Connection>();
    conn->fd = std::move(fd);
    {
      std::lock_guard lock(threads_mu_);
      std::erase_if(connections_, [](const auto& w) { return w.expired(); });
      connections_.push_back(conn);
      ++threads_;
      // shutdown() may have walked the list just before this connection joined it.
      if (stopping_) ::shutdown(conn->fd.get(), SHUT_RDWR);
    }
    std::thread([this, conn] {
      serveConnection(conn);
      threadDone();
    }).detach();
  }
}

void Server::serveConnection(const std::shared_ptr<Connection>& conn) {
  FrameDecoder decoder;
  std::string buf(kReadChunk, '\0');
  while (!stopping_) {
    ssize_t n = ::recv(conn->fd.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    decoder.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    while (auto frame = decoder.next()) handleFrame(conn, std::move(*frame));
  }
}

void Server::handleFrame(const std::shared_ptr<Connection>& conn, Frame frame) {
  auto refuse = [&](StatusCode code, std::string message) {
    wire::Response response;
    response.mutable_status()->set_code(static_cast<int>(code));
    response.mutable_status()->set_message(std::move(message));
    conn->send(frame.header.stream_id, response);
  };
  if (frame.oversized) {
    return refuse(StatusCode::kResourceExhausted,
                  fmt::format("message length {} exceeds maximum message size of {}",
                              frame.header.length, kMaxMessageSize));
  }
  // Other types are reserved for later protocol versions and ignored, as ttrpc does.
  if (frame.header.type != static_cast<std::uint8_t>(MessageType::kRequest)) return;
  if (frame.header.stream_id % 2 != 1) {
    return refuse(StatusCode::kInvalidArgument,
                  "StreamID must be odd for client initiated streams");
  }
  if (conn->in_flight.fetch_add(1) >= kMaxInFlight) {
    conn->in_flight.fetch_sub(1);
    return refuse(StatusCode::kResourceExhausted,
                  fmt::format("more than {} requests in flight on one connection", kMaxInFlight));
  }
  threadStarted();
  std::thread([this, conn, stream = frame.header.stream_id, payload = std::move(frame.payload)] {
    runRequest(conn, stream, payload);
    conn->in_flight.fetch_sub(1);
    threadDone();
  }).detach();
}

void Server::runRequest(const std::shared_ptr<Connection>& conn, std::uint32_t stream,
                        const std::string& payload) {
  wire::Response response;
  auto set_status = [&](StatusCode code, std::string message) {
    response.mutable_status()->set_code(static_cast<int>(code));
    response.mutable_status()->set_message(std::move(message));
  };
  wire::Request request;
  if (!request.ParseFromString(payload)) {
    set_status(StatusCode::kInvalidArgument, "unmarshal request error: not a ttrpc Request");
    conn->send(stream, response);
    return;
  }
  auto it = methods_.find("/" + request.service() + "/" + request.method());
  if (it == methods_.end()) {
    set_status(StatusCode::kUnimplemented,
               fmt::format("method {}/{} not implemented", request.service(), request.method()));
    conn->send(stream, response);
    return;
  }
  RequestContext ctx;
  for (const auto& kv : request.metadata()) ctx.metadata.emplace_back(kv.key(), kv.value());
  if (request.timeout_nano() > 0) ctx.timeout = std::chrono::nanoseconds(request.timeout_nano());
  auto result = it->second(ctx, request.payload());
  if (result) {
    response.set_payload(std::move(*result));
    response.mutable_status()->set_code(0);
  } else {
    set_status(result.error().code, std::move(result.error().message));
  }
  conn->send(stream, response);
}

}  // namespace fleetlet::ttrpc
