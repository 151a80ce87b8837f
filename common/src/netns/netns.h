#pragma once
// Network namespaces: running code inside one, and named, persistent ones.
//
// A named namespace is pinned by a bind mount of its nsfs inode on a file (<dir>/<name>, as
// `ip netns add` does under /run/netns), so it outlives every process in it and can be handed
// to CNI plugins (CNI_NETNS) and to runc by path.
//
// Concurrency: every function is thread-safe. They block the caller while a dedicated,
// short-lived thread enters (or creates) the namespace, does the work and ends; the caller's
// own thread never changes namespace. If runInNetns()'s thread cannot switch back to its
// original namespace the process aborts (a thread stuck in an app's namespace would silently
// create the caller's later sockets there).
//
// Privileges: CAP_SYS_ADMIN (setns, unshare, mount); without it calls fail with EPERM.

#include <filesystem>
#include <functional>
#include <string>

#include "error/error.h"

namespace fleetlet::netns {

inline constexpr const char* kDefaultNetnsDir = "/run/netns";

// Runs fn on a new thread that has entered the network namespace at `netns` (a path such as
// /run/netns/<name> or /proc/<pid>/ns/net) and waits for it. Fails with kNotFound when
// `netns` does not exist and with the setns errno when it cannot be entered; fn does not run
// then. fn must not start threads that outlive it (they would inherit the namespace).
// Processes fn spawns start in that namespace.
Status runInNetns(const std::filesystem::path& netns, const std::function<void()>& fn);

// Brings the loopback interface of the calling thread's namespace up if it is down.
Status bringLoopbackUp();

// Owns a named network namespace: created by create(), removed (unmounted and unlinked) by
// remove() or the destructor unless released.
class NamedNetns {
 public:
  // Creates a new network namespace with `lo` up and pins it at <dir>/<name>. Creates `dir`
  // if needed and makes it a shared mount point (as iproute2 does) so the pin propagates to
  // mount namespaces created later. Fails with kAlreadyExists when <dir>/<name> exists, with
  // kInvalidArgument for a name that is empty or contains '/', and with the errno of the
  // failing call otherwise; nothing is left behind on failure.
  static Result<NamedNetns> create(const std::string& name,
                                   const std::filesystem::path& dir = kDefaultNetnsDir);
  // Takes ownership of an existing pinned namespace (after a restart). kNotFound if missing.
  static Result<NamedNetns> adopt(const std::filesystem::path& path);

  // Whether `path` is a pinned namespace (a bind mount of an nsfs file). False for a missing
  // path and for the plain file create() leaves when it is killed between making the file and
  // mounting the namespace on it; remove() clears such a file.
  static bool isPinned(const std::filesystem::path& path);

  // Unmounts and unlinks the pin at `path`. Succeeds when it is already gone. The namespace
  // itself ends when its last process and open fd are gone.
  static Status remove(const std::filesystem::path& path);

  NamedNetns(NamedNetns&& other) noexcept;
  NamedNetns& operator=(NamedNetns&& other) noexcept;
  NamedNetns(const NamedNetns&) = delete;
  NamedNetns& operator=(const NamedNetns&) = delete;
  ~NamedNetns();

  const std::filesystem::path& path() const { return path_; }
  // Removes the pin now; the error of remove() if that fails (the object then owns nothing).
  Status reset();
  // Gives up ownership: the namespace stays. Returns its path.
  std::filesystem::path release();

 private:
  explicit NamedNetns(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace fleetlet::netns
