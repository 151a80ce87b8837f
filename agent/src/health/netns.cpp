#include "health/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

namespace fleetlet::health {

Result<UniqueFd> socketInNetworkNamespace(pid_t pid, int domain, int type, int protocol) {
  std::string ns_path = fmt::format("/proc/{}/ns/net", pid);
  UniqueFd target(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) return failErrno(errno, "open network namespace {}", ns_path);

  Result<UniqueFd> out = fail(ErrorCode::kInternal, "socket in {}: not run", ns_path);
  std::thread worker([&] {
    // Save this thread's own namespace (/proc/thread-self, not /proc/self: the main
    // thread's) to return to it; the thread ends right after, so even a failed return leaves
    // nothing else running in the app's namespace.
    UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home) {
      out = failErrno(errno, "open own network namespace");
      return;
    }
    if (::setns(target.get(), CLONE_NEWNET) != 0) {
      out = failErrno(errno, "enter network namespace {}", ns_path);
      return;
    }
    int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    int socket_errno = errno;
    if (::setns(home.get(), CLONE_NEWNET) != 0) {
      spdlog::warn("health: leaving network namespace {} failed ({}); the thread ends there",
                   ns_path, std::strerror(errno));
    }
    if (fd < 0) {
      out = failErrno(socket_errno, "socket in network namespace {}", ns_path);
      return;
    }
    out = UniqueFd(fd);
  });
  worker.join();
  return out;
}

}  // namespace fleetlet::health
