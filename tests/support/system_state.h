#pragma once
// Read-only views of the machine's state that fixtures and tests assert on and clean up:
// mounts, processes, containerd shims. Linux only (reads /proc).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"

namespace fleetlet::testing {

// Mount points at or below `dir` in this mount namespace, deepest first.
Result<std::vector<std::filesystem::path>> mountsUnder(const std::filesystem::path& dir);

// Lazily unmounts (MNT_DETACH) every mount point at or below `dir`, deepest first. Returns
// the first failure but tries them all.
Status unmountAllUnder(const std::filesystem::path& dir);

// True while `pid` exists and is not a zombie.
bool processAlive(pid_t pid);

// The command line of `pid` split at NULs; empty when the process is gone.
std::vector<std::string> processCmdline(pid_t pid);

// Pids of containerd-shim* processes started by the containerd listening on `socket`
// (their argv holds "-address <socket>").
std::vector<pid_t> shimsOf(const std::filesystem::path& socket);

// SIGKILLs each shim of `socket` and its direct children (the containers' init processes),
// waits up to `timeout` for them to disappear, then removes what they leave behind: the shim
// socket under /run/containerd/s/ and runc's state dir under /run/containerd/runc/<ns>/<id>
// (only when its rootfs is under socket's directory). Returns how many shims there were.
int killShimsOf(const std::filesystem::path& socket, std::chrono::milliseconds timeout);

// Polls `done` every 20 ms until it returns true or `timeout` passes; returns its last value.
template <typename Predicate>
bool waitFor(Predicate done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace fleetlet::testing
