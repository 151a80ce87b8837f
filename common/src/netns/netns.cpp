#include "netns/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "os/unique_fd.h"

namespace fleetlet::netns {
namespace {

// Makes `dir` a shared mount point, bind-mounting it onto itself first when it is not a mount
// point yet (what `ip netns add` does to /run/netns).
Status makeSharedMountPoint(const std::filesystem::path& dir) {
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
  if (errno != EINVAL) return failErrno(errno, "make {} a shared mount", dir.string());
  if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    return failErrno(errno, "bind-mount {} onto itself", dir.string());
  }
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return failErrno(errno, "make {} a shared mount", dir.string());
  }
  return {};
}

}  // namespace

Status runInNetns(const std::filesystem::path& netns, const std::function<void()>& fn) {
  UniqueFd target(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) return failErrno(errno, "open network namespace {}", netns.string());
  Status entered;
  std::thread worker([&] {
    // The thread's own namespace: /proc/self would name the main thread's.
    UniqueFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!original) {
      entered = failErrno(errno, "open /proc/thread-self/ns/net");
      return;
    }
    if (::setns(target.get(), CLONE_NEWNET) != 0) {
      entered = failErrno(errno, "enter network namespace {}", netns.string());
      return;
    }
    fn();
    if (::setns(original.get(), CLONE_NEWNET) != 0) {
      // A thread left in the app's namespace would create the caller's later sockets there.
      (void)std::fprintf(stderr, "fleetlet: cannot return from network namespace %s: %s\n",
                         netns.c_str(), std::strerror(errno));
      std::abort();
    }
  });
  worker.join();
  return entered;
}

Status bringLoopbackUp() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return failErrno(errno, "socket for interface ioctl");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &request) != 0) {
    return failErrno(errno, "SIOCGIFFLAGS lo");
  }
  if ((request.ifr_flags & IFF_UP) != 0) return {};
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &request) != 0) {
    return failErrno(errno, "SIOCSIFFLAGS lo up");
  }
  return {};
}

Result<NamedNetns> NamedNetns::create(const std::string& name, const std::filesystem::path& dir) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return fail(ErrorCode::kInvalidArgument, "network namespace name \"{}\" is not a file name",
                name);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failErrno(ec.value(), "create {}", dir.string());
  FLEETLET_RETURN_IF_ERROR(makeSharedMountPoint(dir));

  auto path = dir / name;
  UniqueFd pin(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!pin) return failErrno(errno, "create network namespace file {}", path.string());
  pin.reset();
  NamedNetns owner(path);  // removes the file again if anything below fails

  Status made;
  std::thread worker([&] {
    // A thread of its own: unshare() moves only this thread, which ends right after.
    if (::unshare(CLONE_NEWNET) != 0) {
      made = failErrno(errno, "unshare network namespace");
      return;
    }
    if (auto up = bringLoopbackUp(); !up) {
      made = std::unexpected(up.error().wrap("new network namespace {}", path.string()));
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      made = failErrno(errno, "bind-mount network namespace on {}", path.string());
    }
  });
  worker.join();
  if (!made) return std::unexpected(made.error());
  return owner;
}

Result<NamedNetns> NamedNetns::adopt(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return failErrno(errno, "network namespace {}", path.string());
  return NamedNetns(path);
}

bool NamedNetns::isPinned(const std::filesystem::path& path) {
  constexpr decltype(statfs::f_type) kNsfsMagic = 0x6e736673;  // NSFS_MAGIC, linux/magic.h
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == kNsfsMagic;
}

Status NamedNetns::remove(const std::filesystem::path& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return failErrno(errno, "unmount network namespace {}", path.string());
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return failErrno(errno, "remove network namespace file {}", path.string());
  }
  return {};
}

NamedNetns::NamedNetns(NamedNetns&& other) noexcept : path_(std::exchange(other.path_, {})) {}

NamedNetns& NamedNetns::operator=(NamedNetns&& other) noexcept {
  if (this != &other) {
    (void)reset();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

NamedNetns::~NamedNetns() { (void)reset(); }

Status NamedNetns::reset() {
  if (path_.empty()) return {};
  return remove(std::exchange(path_, {}));
}

std::filesystem::path NamedNetns::release() { return std::exchange(path_, {}); }

}  // namespace fleetlet::netns
