#pragma once
// containerd's tasks: the running process of a container.
//
// Lifecycle: create (rootfs mounts and stdio) → start → wait (blocks until exit; call it on
// its own thread before kill) → delete (returns the exit status). All calls block.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "containerd/connection.h"
#include "containerd/types.h"

namespace fleetlet::containerd {

// Where a task's stdio goes: an existing file or FIFO path (opened O_WRONLY|O_APPEND by the
// shim), "binary:///path?args" (a logging binary), or "file:///path" (both streams into one
// file). Empty: discarded.
struct TaskIo {
  std::string stdin_uri;
  std::string stdout_uri;
  std::string stderr_uri;
};
// stdout and stderr appended to two files, created here if missing.
Result<TaskIo> fileIo(const std::string& stdout_path, const std::string& stderr_path);

struct ExitInfo {
  uint32_t exit_status = 0;
  std::chrono::system_clock::time_point exited_at;
};

struct TaskInfo {
  std::string id;
  uint32_t pid = 0;
  enum class State {
    kUnknown,
    kCreated,
    kRunning,
    kStopped,
    kPaused,
    kPausing
  } state = State::kUnknown;
  uint32_t exit_status = 0;
};
std::string_view toString(TaskInfo::State state);

class TaskService : public ServiceBase {
 public:
  using ServiceBase::ServiceBase;
  // Creates the task (not yet running); returns its pid.
  Result<uint32_t> create(const std::string& container_id, const std::vector<Mount>& rootfs,
                          const TaskIo& io) const;
  // Starts a created task; returns its pid.
  Result<uint32_t> start(const std::string& container_id) const;
  // Blocks until the task exits (or containerd goes away: kUnavailable).
  Result<ExitInfo> wait(const std::string& container_id) const;
  // Sends a signal to the task's init process, or to all its processes.
  Status kill(const std::string& container_id, int signal, bool all = false) const;
  // Deletes a stopped task and returns how it exited. kNotFound when there is no task.
  Result<ExitInfo> remove(const std::string& container_id) const;
  // The task, or nullopt when the container has no task.
  Result<std::optional<TaskInfo>> get(const std::string& container_id) const;
  Result<std::vector<TaskInfo>> list() const;
};

}  // namespace fleetlet::containerd
