#include "handoff/sender.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "handoff/protocol.h"

namespace fleetlet::handoff {

HandoffSender::HandoffSender(SenderOptions options) : options_(options) {}

HandoffSender::~HandoffSender() = default;

Status HandoffSender::connect(const std::filesystem::path& service_socket) {
  std::lock_guard lock(mutex_);
  disconnectLocked();
  path_ = service_socket;
  return connectLocked();
}

Status HandoffSender::reconnectIfNeeded() {
  std::lock_guard lock(mutex_);
  if (path_.empty()) {
    return fail(ErrorCode::kFailedPrecondition, "handoff sender: connect() was never called");
  }
  if (connectionAliveLocked()) return {};
  disconnectLocked();
  return connectLocked();
}

bool HandoffSender::connected() const {
  std::lock_guard lock(mutex_);
  return connection_.valid();
}

int HandoffSender::pollFd() const {
  std::lock_guard lock(mutex_);
  return connection_.get();
}

Status HandoffSender::add(const std::string& app, const std::string& name, UniqueFd listener) {
  FLEETLET_RETURN_IF_ERROR(validateName("app", app));
  FLEETLET_RETURN_IF_ERROR(validateName("listener", name));
  if (!listener) return fail(ErrorCode::kInvalidArgument, "add {}/{}: invalid fd", app, name);
  std::lock_guard lock(mutex_);
  UniqueFd& slot = listeners_[Key{app, name}];
  // The old socket closes only after the service has the new one: its queue is not orphaned
  // by a gap in which neither side accepts.
  UniqueFd old = std::exchange(slot, std::move(listener));
  deliverLocked(Message::add(app, name, UniqueFd(::dup(slot.get()))));
  return {};
}

Status HandoffSender::remove(const std::string& app, const std::string& name) {
  FLEETLET_RETURN_IF_ERROR(validateName("app", app));
  if (!name.empty()) FLEETLET_RETURN_IF_ERROR(validateName("listener", name));
  std::lock_guard lock(mutex_);
  bool found = false;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (it->first.first == app && (name.empty() || it->first.second == name)) {
      it = listeners_.erase(it);
      found = true;
    } else {
      ++it;
    }
  }
  if (found) deliverLocked(Message::remove(app, name));
  return {};
}

int HandoffSender::find(const std::string& app, const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = listeners_.find(Key{app, name});
  return it == listeners_.end() ? -1 : it->second.get();
}

std::vector<std::pair<std::string, std::string>> HandoffSender::listeners() const {
  std::lock_guard lock(mutex_);
  std::vector<Key> keys;
  keys.reserve(listeners_.size());
  for (const auto& [key, fd] : listeners_) keys.push_back(key);
  return keys;
}

Status HandoffSender::connectLocked() {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& text = path_.native();
  if (text.empty() || text.size() >= sizeof(address.sun_path)) {
    return fail(ErrorCode::kInvalidArgument, "handoff socket path \"{}\" is empty or too long",
                text);
  }
  std::memcpy(address.sun_path, text.data(), text.size());
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) return failErrno(errno, "socket");
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(options_.send_timeout);
  timeval timeout{static_cast<time_t>(micros.count() / 1000000),
                  static_cast<suseconds_t>(micros.count() % 1000000)};
  if (::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0) {
    return failErrno(errno, "SO_SNDTIMEO");
  }
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int err = errno;
    return std::unexpected(Error(
        ErrorCode::kUnavailable,
        fmt::format("connect to handoff socket {}: {}", path_.string(), std::strerror(err)), err));
  }

  // Re-send the whole set; the service drops what is not in it at sync_end.
  auto sync = [&]() -> Status {
    FLEETLET_RETURN_IF_ERROR(sendMessage(sock.get(), Message::syncBegin()));
    for (const auto& [key, fd] : listeners_) {
      FLEETLET_RETURN_IF_ERROR(
          sendMessage(sock.get(), Message::add(key.first, key.second, UniqueFd(::dup(fd.get())))));
    }
    return sendMessage(sock.get(), Message::syncEnd());
  };
  if (auto synced = sync(); !synced) {
    return std::unexpected(synced.error().wrap("sync with {}", path_.string()));
  }
  connection_ = std::move(sock);
  spdlog::debug("handoff: connected to {}, sent {} listeners", path_.string(), listeners_.size());
  return {};
}

bool HandoffSender::connectionAliveLocked() const {
  if (!connection_) return false;
  pollfd p{connection_.get(), POLLIN, 0};
  int ready = ::poll(&p, 1, 0);
  // The service never writes: any event (data, EOF, POLLHUP, POLLERR) means it is gone.
  return ready == 0;
}

void HandoffSender::disconnectLocked() { connection_.reset(); }

void HandoffSender::deliverLocked(const Message& message) {
  if (!connection_) return;
  auto sent = sendMessage(connection_.get(), message);
  if (sent) return;
  spdlog::info("handoff: {}; reconnecting to {}", sent.error().message(), path_.string());
  disconnectLocked();
  if (auto again = connectLocked(); !again) {
    spdlog::info("handoff: {} (will re-sync on reconnect)", again.error().message());
  }
}

}  // namespace fleetlet::handoff
