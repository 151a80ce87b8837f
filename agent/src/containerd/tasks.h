#pragma once
// containerd's tasks: the running process of a container.
//
// Lifecycle: create (rootfs mounts and stdio) → start → wait (blocks until exit; call it on
// its own thread before kill) → delete (returns the exit status). All calls block.

#include <chrono>
#include <cstdint>
#include <map>
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
  enum class State : std::uint8_t {
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

// What a task's cgroup uses (containerd's Tasks.Metrics, cgroups v1 statistics).
struct TaskMetrics {
  uint64_t cpu_ns = 0;            // CPU time used, user and system, since the cgroup was made
  uint64_t memory_bytes = 0;      // memory charged now (memory.usage_in_bytes, page cache included)
  uint64_t memory_max_bytes = 0;  // the peak of memory_bytes (0: not reported)
  std::optional<uint64_t> memory_limit_bytes;  // nullopt: no limit
  uint64_t pids = 0;                           // processes and threads now
  std::optional<uint64_t> pids_limit;          // nullopt: no limit
  uint64_t oom_kills = 0;
};

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
  // The cgroup statistics of every task in the namespace, by container id, in one call. Tasks
  // whose statistics are not cgroups v1 (or that the shim could not read) are left out.
  // kUnavailable when containerd does not answer within `timeout`.
  Result<std::map<std::string, TaskMetrics>> metrics(
      std::chrono::milliseconds timeout = kDefaultCallTimeout) const;

  // --- Exec: extra processes inside a running task (probes, `ctr task exec`). ---
  // An exec process is addressed by (container_id, exec_id); exec ids are unique per task and
  // match containerd's identifier rules ([A-Za-z0-9]+ joined by . _ -, at most 76 chars).
  // Lifecycle: exec (created, not running) → startProcess → waitProcess → removeProcess.
  // Until removeProcess the exec id stays taken, even after the process exited.

  // Creates exec process `exec_id` in the task of `container_id` from an OCI process spec
  // (JSON of runtime-spec's `process` object: args, env, cwd, user, ...). kNotFound when the
  // container has no task, kAlreadyExists when the exec id is taken. `timeout` bounds the call.
  Status exec(const std::string& container_id, const std::string& exec_id,
              const std::string& process_spec_json, const TaskIo& io,
              std::chrono::milliseconds timeout = kDefaultCallTimeout) const;
  // Starts a created exec process; returns its pid (in the host's pid namespace).
  Result<uint32_t> startProcess(const std::string& container_id, const std::string& exec_id,
                                std::chrono::milliseconds timeout = kDefaultCallTimeout) const;
  // Waits up to `timeout` (0: no limit) for the exec process to exit; nullopt when it is still
  // running then. Returns at once for a process that already exited and was not removed.
  Result<std::optional<ExitInfo>> waitProcess(const std::string& container_id,
                                              const std::string& exec_id,
                                              std::chrono::milliseconds timeout) const;
  // Sends a signal to one exec process.
  Status killProcess(const std::string& container_id, const std::string& exec_id, int signal,
                     std::chrono::milliseconds timeout = kDefaultCallTimeout) const;
  // Deletes an exited exec process, freeing its id; returns how it exited. kNotFound when
  // unknown; kFailedPrecondition while it still runs.
  Result<ExitInfo> removeProcess(const std::string& container_id, const std::string& exec_id,
                                 std::chrono::milliseconds timeout = kDefaultCallTimeout) const;
};

// The type URL of an OCI process spec in TaskService::exec's Any.
inline constexpr char kOciProcessTypeUrl[] =
    "types.containerd.io/opencontainers/runtime-spec/1/Process";

}  // namespace fleetlet::containerd
