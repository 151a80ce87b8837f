#include "handoff/netns_listener.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <optional>

#include "netns/netns.h"

namespace fleetlet::handoff {
namespace {

// net.core.somaxconn of the current thread's namespace (/proc/sys/net is per namespace).
std::optional<int> somaxconn() {
  std::ifstream in("/proc/sys/net/core/somaxconn");
  int value = 0;
  if (in >> value && value > 0) return value;
  return std::nullopt;
}

Result<UniqueFd> listenHere(const std::string& address, std::uint16_t port, int backlog,
                            bool reuse_port) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = 0;
  if (auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
      ::inet_pton(AF_INET, address.c_str(), &in4->sin_addr) == 1) {
    family = AF_INET;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
             ::inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    length = sizeof(sockaddr_in6);
  } else {
    return fail(ErrorCode::kInvalidArgument, "\"{}\" is not an IPv4 or IPv6 address", address);
  }

  FLEETLET_RETURN_IF_ERROR(netns::bringLoopbackUp());
  UniqueFd sock(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return failErrno(errno, "socket");
  int one = 1;
  if (::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return failErrno(errno, "SO_REUSEADDR");
  }
  if (reuse_port && ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return failErrno(errno, "SO_REUSEPORT");
  }
  if (family == AF_INET6 &&
      ::setsockopt(sock.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
    return failErrno(errno, "IPV6_V6ONLY");
  }
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    return failErrno(errno, "bind {}:{}", address, port);
  }
  if (backlog <= 0) backlog = kDefaultBacklog;
  if (auto cap = somaxconn()) backlog = std::min(backlog, *cap);
  if (::listen(sock.get(), backlog) != 0) return failErrno(errno, "listen {}:{}", address, port);
  return sock;
}

}  // namespace

Result<UniqueFd> listenInNetns(const std::filesystem::path& netns, const std::string& address,
                               std::uint16_t port, int backlog, bool reuse_port) {
  std::optional<Result<UniqueFd>> result;
  FLEETLET_RETURN_IF_ERROR(
      runInNetns(netns, [&] { result.emplace(listenHere(address, port, backlog, reuse_port)); }));
  if (!result.has_value()) {
    return fail(ErrorCode::kInternal, "listen on {}:{} in {}: not run", address, port,
                netns.string());
  }
  if (!*result) {
    return std::unexpected(
        result->error().wrap("listen on {}:{} in {}", address, port, netns.string()));
  }
  return std::move(**result);
}

Result<ino_t> socketNetnsInode(int fd) {
  UniqueFd ns(::ioctl(fd, SIOCGSKNS));
  if (!ns) return failErrno(errno, "SIOCGSKNS on fd {}", fd);
  struct stat st {};
  if (::fstat(ns.get(), &st) != 0) return failErrno(errno, "fstat namespace of fd {}", fd);
  return st.st_ino;
}

Result<ino_t> netnsInode(const std::filesystem::path& netns) {
  struct stat st {};
  if (::stat(netns.c_str(), &st) != 0) return failErrno(errno, "stat {}", netns.string());
  return st.st_ino;
}

Result<std::uint16_t> boundPort(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return failErrno(errno, "getsockname fd {}", fd);
  }
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  }
  return fail(ErrorCode::kInvalidArgument, "fd {} is not a TCP socket", fd);
}

}  // namespace fleetlet::handoff
