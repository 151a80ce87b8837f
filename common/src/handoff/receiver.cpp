#include "handoff/receiver.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "handoff/protocol.h"

namespace fleetlet::handoff {
namespace {

using Key = std::pair<std::string, std::string>;  // (app, listener)

// Messages read from one connection before the others get a turn.
constexpr int kMessagesPerTurn = 64;

Result<sockaddr_un> unixAddress(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& text = path.native();
  if (text.empty() || text.size() >= sizeof(address.sun_path)) {
    return fail(ErrorCode::kInvalidArgument,
                "handoff socket path \"{}\" is empty or longer than {}", text,
                sizeof(address.sun_path) - 1);
  }
  std::memcpy(address.sun_path, text.data(), text.size());
  return address;
}

// Removes a stale socket file at `path`; fails when a live socket or another file is there.
Status clearStaleSocket(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return failErrno(errno, "stat {}", path.string());
  }
  if (!S_ISSOCK(st.st_mode)) {
    return fail(ErrorCode::kFailedPrecondition, "{} exists and is not a socket", path.string());
  }
  FLEETLET_ASSIGN_OR_RETURN(sockaddr_un address, unixAddress(path));
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!probe) return failErrno(errno, "socket");
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 ||
      errno != ECONNREFUSED) {
    // Connected, or a live socket of another type (EPROTOTYPE): someone serves there.
    return fail(ErrorCode::kAlreadyExists, "{} is in use by a running process", path.string());
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return failErrno(errno, "remove stale socket {}", path.string());
  }
  return {};
}

struct Connection {
  UniqueFd fd;
  std::uint64_t id = 0;
  // Pairs added since sync_begin, while a sync is open.
  std::optional<std::set<Key>> sync;
};

}  // namespace

class HandoffReceiver::Impl {
 public:
  Impl(ReceiverOptions options, ReceiverCallbacks callbacks)
      : options_(std::move(options)), callbacks_(std::move(callbacks)) {}

  ~Impl() {
    if (thread_.joinable()) {
      std::uint64_t one = 1;
      (void)!::write(wake_.get(), &one, sizeof(one));
      thread_.join();
    }
    struct stat st {};
    if (listen_ && ::stat(options_.socket_path.c_str(), &st) == 0 && st.st_ino == socket_inode_) {
      ::unlink(options_.socket_path.c_str());
    }
  }

  Status bind() {
    if (!callbacks_.on_add || !callbacks_.on_remove) {
      return fail(ErrorCode::kInvalidArgument, "handoff receiver needs on_add and on_remove");
    }
    const auto& path = options_.socket_path;
    std::filesystem::path temporary = path;
    temporary += fmt::format(".{}.tmp", ::getpid());
    FLEETLET_ASSIGN_OR_RETURN(sockaddr_un address, unixAddress(temporary));
    FLEETLET_RETURN_IF_ERROR(clearStaleSocket(path));

    UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!sock) return failErrno(errno, "socket");
    ::unlink(temporary.c_str());
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return failErrno(errno, "bind {}", temporary.string());
    }
    auto cleanup = [&](Error error) {
      ::unlink(temporary.c_str());
      return std::unexpected(std::move(error));
    };
    if (::chmod(temporary.c_str(), options_.mode) != 0) {
      return cleanup(errnoError(errno, fmt::format("chmod {}", temporary.string())));
    }
    if (::listen(sock.get(), 16) != 0) {
      return cleanup(errnoError(errno, fmt::format("listen {}", temporary.string())));
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
      return cleanup(errnoError(errno, fmt::format("rename socket to {}", path.string())));
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) socket_inode_ = st.st_ino;

    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) return failErrno(errno, "eventfd");
    listen_ = std::move(sock);
    return {};
  }

  void startThread() {
    thread_ = std::thread([this] { run(); });
  }

  const std::filesystem::path& socketPath() const { return options_.socket_path; }

  std::vector<Key> listeners() const {
    std::lock_guard lock(mutex_);
    std::vector<Key> out;
    out.reserve(held_.size());
    for (const auto& [key, inode] : held_) out.push_back(key);
    return out;
  }

  ReceiverStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

  std::optional<Error> lastProtocolError() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

 private:
  void run() {
    std::vector<Connection> connections;
    std::uint64_t next_id = 0;
    while (true) {
      std::vector<pollfd> fds;
      fds.push_back({wake_.get(), POLLIN, 0});
      fds.push_back({listen_.get(), POLLIN, 0});
      for (const auto& c : connections) fds.push_back({c.fd.get(), POLLIN, 0});
      int ready = ::poll(fds.data(), fds.size(), -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        spdlog::critical("handoff: poll failed: {}", std::strerror(errno));
        return;  // a broken invariant; the service notices that no listener arrives
      }
      if (fds[0].revents != 0) return;
      // Connections first: indices into fds stay valid until accept appends.
      std::vector<bool> drop(connections.size(), false);
      for (std::size_t i = 0; i < connections.size(); ++i) {
        if (fds[i + 2].revents != 0) drop[i] = !serve(connections[i]);
      }
      for (std::size_t i = connections.size(); i-- > 0;) {
        if (drop[i]) {
          spdlog::debug("handoff: connection {} closed", connections[i].id);
          connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
      if ((fds[1].revents & POLLIN) != 0) {
        UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd) {
          spdlog::warn("handoff: accept on {} failed: {}", options_.socket_path.string(),
                       std::strerror(errno));
          continue;
        }
        if (connections.size() >= options_.max_connections) {
          spdlog::warn("handoff: more than {} agent connections; closing the new one",
                       options_.max_connections);
          continue;
        }
        connections.push_back(Connection{std::move(fd), next_id++, std::nullopt});
        std::lock_guard lock(mutex_);
        ++stats_.connections;
      }
    }
  }

  // Reads the queued messages of `connection`. Returns false when it must be closed.
  bool serve(Connection& connection) {
    for (int i = 0; i < kMessagesPerTurn; ++i) {
      auto received = receiveMessage(connection.fd.get());
      if (!received) {
        const Error& error = received.error();
        if (error.sysErrno() == EAGAIN) return true;
        if (error.code() == ErrorCode::kUnavailable) return false;  // reset by the peer
        spdlog::warn("handoff: dropping agent connection {}: {}", connection.id, error.message());
        std::lock_guard lock(mutex_);
        ++stats_.protocol_errors;
        last_error_ = error;
        return false;
      }
      std::optional<Message>& message = *received;
      if (!message) return false;  // orderly close
      if (auto applied = apply(connection, std::move(*message)); !applied) {
        spdlog::warn("handoff: dropping agent connection {}: {}", connection.id,
                     applied.error().message());
        std::lock_guard lock(mutex_);
        ++stats_.protocol_errors;
        last_error_ = applied.error();
        return false;
      }
      std::lock_guard lock(mutex_);
      ++stats_.messages;
    }
    return true;
  }

  Status apply(Connection& connection, Message message) {
    switch (message.op) {
      case Op::kSyncBegin:
        if (connection.sync) return fail(ErrorCode::kInvalidArgument, "sync_begin inside a sync");
        connection.sync.emplace();
        return {};
      case Op::kSyncEnd: {
        if (!connection.sync)
          return fail(ErrorCode::kInvalidArgument, "sync_end without sync_begin");
        std::set<Key> seen = std::move(*connection.sync);
        connection.sync.reset();
        for (const Key& key : heldKeys()) {
          if (!seen.contains(key)) removeOne(key);
        }
        return {};
      }
      case Op::kRemove:
        for (const Key& key : heldKeys()) {
          if (key.first == message.app &&
              (message.listener.empty() || key.second == message.listener)) {
            removeOne(key);
          }
        }
        return {};
      case Op::kAdd:
        add(connection, std::move(message));
        return {};
    }
    return fail(ErrorCode::kInternal, "unhandled handoff op");
  }

  void add(Connection& connection, Message message) {
    Key key{message.app, message.listener};
    if (connection.sync) connection.sync->insert(key);
    struct stat st {};
    ino_t inode = ::fstat(message.fd.get(), &st) == 0 ? st.st_ino : 0;
    std::optional<ino_t> held;
    {
      std::lock_guard lock(mutex_);
      if (auto it = held_.find(key); it != held_.end()) held = it->second;
    }
    if (held && *held == inode && inode != 0) return;  // the same socket again; fd closes here
    if (held) removeOne(key);
    Status added;
    try {
      added = callbacks_.on_add(key.first, key.second, std::move(message.fd));
    } catch (const std::exception& e) {
      added = fail(ErrorCode::kInternal, "on_add threw: {}", e.what());
    } catch (...) {
      added = fail(ErrorCode::kInternal, "on_add threw");
    }
    std::lock_guard lock(mutex_);
    if (added) {
      held_[key] = inode;
    } else {
      ++stats_.failed_adds;
      spdlog::warn("handoff: adding listener {} of app {} failed: {}", key.second, key.first,
                   added.error().message());
    }
  }

  void removeOne(const Key& key) {
    {
      std::lock_guard lock(mutex_);
      held_.erase(key);
    }
    try {
      callbacks_.on_remove(key.first, key.second);
    } catch (...) {
      spdlog::error("handoff: on_remove for {} of app {} threw", key.second, key.first);
    }
  }

  std::vector<Key> heldKeys() const { return listeners(); }

  ReceiverOptions options_;
  ReceiverCallbacks callbacks_;
  UniqueFd listen_;
  UniqueFd wake_;
  ino_t socket_inode_ = 0;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::map<Key, ino_t> held_;        // guarded by mutex_; written only by the receiver thread
  ReceiverStats stats_;              // guarded by mutex_
  std::optional<Error> last_error_;  // guarded by mutex_
};

Result<std::unique_ptr<HandoffReceiver>> HandoffReceiver::start(ReceiverOptions options,
                                                                ReceiverCallbacks callbacks) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(callbacks));
  if (auto bound = impl->bind(); !bound) {
    return std::unexpected(bound.error().wrap("handoff receiver"));
  }
  impl->startThread();
  return std::unique_ptr<HandoffReceiver>(new HandoffReceiver(std::move(impl)));
}

HandoffReceiver::HandoffReceiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HandoffReceiver::~HandoffReceiver() = default;

const std::filesystem::path& HandoffReceiver::socketPath() const { return impl_->socketPath(); }

std::vector<std::pair<std::string, std::string>> HandoffReceiver::listeners() const {
  return impl_->listeners();
}

ReceiverStats HandoffReceiver::stats() const { return impl_->stats(); }

std::optional<Error> HandoffReceiver::lastProtocolError() const {
  return impl_->lastProtocolError();
}

}  // namespace fleetlet::handoff
