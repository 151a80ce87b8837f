#include "health/netns.h"

#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <string>

#include "netns/netns.h"

namespace fleetlet::health {

Result<UniqueFd> socketInNetworkNamespace(pid_t pid, int domain, int type, int protocol) {
  std::string ns_path = fmt::format("/proc/{}/ns/net", pid);
  std::optional<Result<UniqueFd>> out;
  FLEETLET_RETURN_IF_ERROR(netns::runInNetns(ns_path, [&] {
    int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) {
      out = failErrno(errno, "socket in network namespace {}", ns_path);
    } else {
      out = UniqueFd(fd);
    }
  }));
  if (!out) return fail(ErrorCode::kInternal, "socket in {}: not run", ns_path);
  return std::move(*out);
}

}  // namespace fleetlet::health
