#pragma once
// Reaper: the one owner of waitpid() in the shim.
//
// The shim is a child subreaper (PR_SET_CHILD_SUBREAPER), so the task, its descendants that
// outlive their parents, and loggers are all reaped here. A second waitpid() anywhere else
// would steal exits (ECHILD, lost exit codes), so nothing else may wait. Exits are dispatched
// by pid to the callback registered with watch(); an exit that arrives before its pid is
// watched (a process that dies at once) is kept and delivered by watch() itself. Exits of
// pids nobody watches (orphans, loggers) are dropped after a bounded backlog.
//
// Threads: start() runs a reaper thread that takes SIGCHLD through a signalfd. SIGCHLD must
// be blocked in every thread, so call blockSigchld() in main() before any thread starts.
// Callbacks run on the reaper thread and must not block for long.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::shim {

// An exit as containerd reports it: the code, or 128 + signal for a killed process.
struct ProcessExit {
  int status = 0;
  std::chrono::system_clock::time_point at;
};

int exitCodeOf(int wait_status);

class Reaper {
 public:
  using Callback = std::function<void(pid_t, ProcessExit)>;

  // Blocks SIGCHLD in the calling thread (and the threads it will create).
  static void blockSigchld();

  // Makes this process a subreaper and starts the reaper thread.
  static Result<std::unique_ptr<Reaper>> start();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;
  ~Reaper();

  // Delivers `pid`'s exit to `callback` once (on a thread of its own when it already
  // happened, so the caller may hold a lock the callback takes).
  void watch(pid_t pid, Callback callback);
  // Stops watching `pid` (its exit will be dropped).
  void forget(pid_t pid);

  // Serialises fork() with exit dispatch: run `spawn` (which forks and returns the pid)
  // so that the child's exit cannot be reaped before watch() has seen it. Returns the pid.
  pid_t spawnWatched(const std::function<pid_t()>& spawn, Callback callback);

 private:
  Reaper(UniqueFd signal_fd, UniqueFd wake_fd);
  void loop();
  void reapAll();

  UniqueFd signal_fd_;
  UniqueFd wake_fd_;
  std::mutex mu_;
  std::map<pid_t, Callback> watched_;                    // guarded by mu_
  std::deque<std::pair<pid_t, ProcessExit>> unclaimed_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace fleetlet::shim
