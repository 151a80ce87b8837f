#include "ttrpc/socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace fleetlet::ttrpc {
namespace {

Result<sockaddr_un> unixAddress(std::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return fail(ErrorCode::kInvalidArgument,
                "unix socket path '{}' is empty or longer than {} bytes", path,
                sizeof(addr.sun_path) - 1);
  }
  std::copy(path.begin(), path.end(), addr.sun_path);
  return addr;
}

}  // namespace

Result<UniqueFd> listenUnix(const std::filesystem::path& path) {
  FLEETLET_ASSIGN_OR_RETURN(sockaddr_un addr, unixAddress(path.native()));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket for {}", path.string());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    if (err == EADDRINUSE) {
      return std::unexpected(Error(ErrorCode::kAlreadyExists,
                                   fmt::format("bind {}: address in use", path.string()), err));
    }
    return failErrno(err, "bind {}", path.string());
  }
  if (::listen(fd.get(), 64) != 0) return failErrno(errno, "listen on {}", path.string());
  return fd;
}

Result<UniqueFd> connectUnix(std::string_view address) {
  if (address.starts_with("unix://")) address.remove_prefix(7);
  FLEETLET_ASSIGN_OR_RETURN(sockaddr_un addr, unixAddress(address));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket for {}", address);
  while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EINTR) continue;
    return std::unexpected(Error(ErrorCode::kUnavailable,
                                 fmt::format("connect to {}: {}", address, std::strerror(errno)),
                                 errno));
  }
  return fd;
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool peerAllowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == 0 || cred.uid == ::geteuid();
}

}  // namespace fleetlet::ttrpc
