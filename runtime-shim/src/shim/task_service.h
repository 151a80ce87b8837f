#pragma once
// containerd.task.v2.Task for one task (the shim serves one container, as containerd 1.6
// starts one shim per container): a native app when the spec's root is "/" and containerd
// sends no rootfs, else a container through runc. The RPCs, their states and events:
//
//   Create   fork the sandboxed child, blocked before exec          → /tasks/create
//   Start    let it exec                                            → /tasks/start
//   (exit)   the reaper reports it                                  → /tasks/exit
//   Delete   kill leftovers in the cgroup, remove the cgroup        → /tasks/delete
//   Shutdown exit the shim once the task is deleted (after the event queue drained)
//
// The task mutex orders Start's event before the exit's, so containerd never sees an exit
// before its start, even for a program that ends at once. Memory OOM kills in the task's
// cgroup publish /tasks/oom. Exec runs extra processes in the task (see exec()); Pause,
// Resume, Checkpoint and ResizePty answer UNIMPLEMENTED; CloseIO is accepted (stdin EOF reaches the
// app through the fifo itself).
//
// Threads: each RPC runs on its own server thread; an exit on a thread of its own (never the
// reaper's, which RPCs holding mu_ may wait for: runc start/delete); the OOM
// watcher on its own. All task state is guarded by mu_.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "shim/cgroup.h"
#include "shim/native_process.h"
#include "shim/publisher.h"
#include "shim/reaper.h"
#include "shim/runc_process.h"
#include "ttrpc/server.h"

namespace fleetlet::shim {

namespace task = containerd::task::v2;

struct ShimContext {
  std::string ns;
  std::string id;
  std::filesystem::path bundle;
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";
  // Default runc --root for container tasks when the runtime options name none:
  // <dir of containerd's socket>/runc/<namespace> (/run/containerd/runc/<ns>, as the Go shim).
  std::filesystem::path runc_root;
  // Called (on some thread) once Shutdown decided the shim should exit.
  std::function<void()> request_exit;
};

// The file in the bundle where Create records the task's pid and cgroup for `delete`.
inline constexpr const char* kInitPidFile = "init.pid";
inline constexpr const char* kCgroupFile = "cgroup.path";

// The cgroup a task uses: the spec's linux.cgroupsPath, else /<namespace>/<id>.
std::string cgroupPathFor(const NativeSpec& spec, const std::string& ns, const std::string& id);

class TaskService {
 public:
  TaskService(ShimContext ctx, Reaper& reaper, Publisher& publisher);
  ~TaskService();
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  void registerWith(ttrpc::Server& server);

  ttrpc::RpcResult<task::CreateTaskResponse> create(const task::CreateTaskRequest& r);
  ttrpc::RpcResult<task::StartResponse> start(const task::StartRequest& r);
  ttrpc::RpcResult<task::StateResponse> state(const task::StateRequest& r);
  ttrpc::RpcResult<task::DeleteResponse> remove(const task::DeleteRequest& r);
  ttrpc::RpcResult<task::PidsResponse> pids(const task::PidsRequest& r);
  ttrpc::RpcResult<void> kill(const task::KillRequest& r);
  ttrpc::RpcResult<task::WaitResponse> wait(const task::WaitRequest& r);
  ttrpc::RpcResult<task::StatsResponse> stats(const task::StatsRequest& r);
  ttrpc::RpcResult<task::ConnectResponse> connect(const task::ConnectRequest& r);
  ttrpc::RpcResult<void> shutdown(const task::ShutdownRequest& r);
  ttrpc::RpcResult<void> closeIo(const task::CloseIORequest& r);
  ttrpc::RpcResult<void> update(const task::UpdateTaskRequest& r);
  // An extra process in the running task. Native: it joins the app's namespaces, cgroup, user
  // and syscall filter (NativeProcess with `join`). Container: `runc exec` runs the request's
  // process spec in the container. Exec records it (nothing runs), Start runs it, its exit
  // publishes /tasks/exit with its exec id, Delete forgets it.
  ttrpc::RpcResult<void> exec(const task::ExecProcessRequest& r);

 private:
  enum class Phase : std::uint8_t { kNone, kCreated, kRunning, kStopped, kDeleted };
  struct ExecProcess {
    NativeSpec spec;  // native: the app's, with the exec's program and user
    task::ExecProcessRequest request;
    std::unique_ptr<TaskProcess> process;
    pid_t pid = 0;
    Phase phase = Phase::kCreated;
    ProcessExit exit{};
    UniqueFd logger;  // its binary:// logger (pidfd), if any
  };
  ttrpc::RpcResult<task::StartResponse> execStart(const task::StartRequest& r);
  ttrpc::RpcResult<task::StateResponse> execState(const task::StateRequest& r);
  ttrpc::RpcResult<void> execKill(const task::KillRequest& r);
  ttrpc::RpcResult<task::WaitResponse> execWait(const task::WaitRequest& r);
  ttrpc::RpcResult<task::DeleteResponse> execRemove(const task::DeleteRequest& r);
  ttrpc::RpcResult<void> checkId(const std::string& id, const std::string& exec_id) const;
  void onExit(pid_t pid, ProcessExit exit);
  // For openStdio: starts a logger process that the reaper reaps; its pidfd comes back.
  LoggerSpawner loggerSpawner();
  // For a process's exits: onExit() on a thread of its own.
  Reaper::Callback exitHandler();
  void watchOom(int fd);
  void publishOomIfNew();  // requires mu_

  ShimContext ctx_;
  Reaper& reaper_;
  Publisher& publisher_;

  mutable std::mutex mu_;
  std::condition_variable exited_cv_;
  Phase phase_ = Phase::kNone;            // guarded by mu_
  std::unique_ptr<TaskProcess> process_;  // guarded by mu_
  UniqueFd logger_;     // guarded by mu_: the init process's binary:// logger (pidfd), if any
  pid_t pid_ = 0;       // guarded by mu_
  ProcessExit exit_{};  // guarded by mu_: valid once kStopped
  std::optional<Cgroup> cgroup_;              // guarded by mu_
  task::CreateTaskRequest created_;           // guarded by mu_: for State
  std::uint64_t oom_seen_ = 0;                // guarded by mu_: OOM kills reported
  std::optional<NativeSpec> native_spec_;     // guarded by mu_: a native task's spec, for execs
  SandboxSummary sandbox_;                    // guarded by mu_: what a native task got
  std::map<std::string, ExecProcess> execs_;  // guarded by mu_: by exec id
  std::optional<std::thread> oom_thread_;
  UniqueFd oom_stop_;  // eventfd that ends the OOM watcher
};

}  // namespace fleetlet::shim
