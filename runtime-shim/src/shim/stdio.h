#pragma once
// The task's stdio as containerd names it in CreateTaskRequest:
//   ""                    /dev/null
//   a fifo path           (ctr's fifos) opened without blocking and handed to the app
//   another path          an existing file, opened O_WRONLY|O_APPEND
//   file:///path          stdout and stderr appended to one file (created with its parents)
//   binary:///path?k=v    a logger started with fd 3 = stdout pipe, fd 4 = stderr pipe,
//                         fd 5 = ready pipe, env CONTAINER_ID / CONTAINER_NAMESPACE; the app
//                         starts only once the logger closed (or wrote to) fd 5.
// The app gets the descriptors themselves: the shim copies no bytes.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::shim {

struct StdioPaths {
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
};

struct OpenedStdio {
  UniqueFd in, out, err;  // for the app's 0, 1, 2
  // A pidfd of the binary:// logger (empty without one): finishLogger() ends it on delete.
  UniqueFd logger;
};

// A logger process `spawn` started: its pid (-1 when fork failed) and a pidfd of it opened
// before anything could reap it (empty when that failed).
struct SpawnedLogger {
  pid_t pid = -1;
  UniqueFd pidfd;
};

// Starts a logger process through `spawn` (which forks, so the reaper owns the exit).
using LoggerSpawner = std::function<SpawnedLogger(const std::function<void()>& in_child)>;

// A pidfd of `pid` (empty on failure, e.g. when it has been reaped).
UniqueFd pidfdOf(pid_t pid);

// Ends a binary:// logger as containerd's shims do when its process is deleted (its pipes'
// write ends closed by then): SIGTERM, after which the logger writes what the pipes still hold
// and exits; SIGKILL if it has not exited `grace` later. Returns once it has exited (or a
// second bound passed after the SIGKILL), so the log is complete when Delete answers.
void finishLogger(const UniqueFd& pidfd,
                  std::chrono::milliseconds grace = std::chrono::seconds(12));

// Opens everything. kInvalidArgument for an unknown scheme or a logger that fails to start;
// kNotFound for a missing path.
Result<OpenedStdio> openStdio(const StdioPaths& paths, const std::string& ns, const std::string& id,
                              const LoggerSpawner& spawn);

}  // namespace fleetlet::shim
