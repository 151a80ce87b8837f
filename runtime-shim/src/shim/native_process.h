#pragma once
// A native app's process: a host binary started in the sandbox its NativeSpec asks for.
//
// Create forks the child, which sets up its namespaces and mounts, then blocks on a pipe;
// the shim puts it in its cgroup meanwhile. So the task has a real pid at Create and runs
// under its limits from its first instruction, and nothing of the app runs before Start.
// Start releases the child, which drops privileges (user, capabilities, no-new-privileges,
// seccomp) and execs. Failures in the child come back over a close-on-exec pipe as text.
//
// Thread-safety: one caller at a time (the task service serialises).

#include <sys/types.h>

#include <memory>
#include <string>

#include "error/error.h"
#include "os/unique_fd.h"
#include "shim/reaper.h"
#include "shim/spec.h"
#include "shim/stdio.h"
#include "shim/task_process.h"

namespace fleetlet::shim {

// What the sandbox resolved to, for logs and `describe`.
struct SandboxSummary {
  SandboxLevel level = SandboxLevel::kSandboxed;
  uid_t uid = 0;
  gid_t gid = 0;
};

class NativeProcess : public TaskProcess {
 public:
  // Forks the child and waits until it is ready to exec (or failed). `io` is consumed; the
  // child's exit goes to `on_exit` through the reaper. The cgroup placement happens through
  // `place(pid)` before the child is told to go. kInvalidArgument / kNotFound for a spec the
  // host cannot satisfy (missing binary, bind source, ...), with the child's message.
  //
  // With `join` > 0 the process is an exec in a running app: instead of making namespaces and
  // mounts it joins those of process `join` (mount, network, IPC, UTS: the app's view of the
  // host), then drops privileges and filters syscalls as the spec's level says. The caller
  // passes the user the app got (SandboxSummary), so the exec runs as the app.
  static Result<std::unique_ptr<NativeProcess>> create(const NativeSpec& spec,
                                                       const std::string& ns, const std::string& id,
                                                       OpenedStdio io, Reaper& reaper,
                                                       Reaper::Callback on_exit,
                                                       const std::function<Status(pid_t)>& place,
                                                       pid_t join = 0);
  ~NativeProcess() override;

  pid_t pid() const override { return pid_; }
  const SandboxSummary& sandbox() const { return summary_; }

  // Lets the child exec. Returns once the exec happened, or the child's error.
  Status start() override;

 private:
  NativeProcess() = default;

  pid_t pid_ = -1;
  UniqueFd go_;      // write end: one byte releases the child
  UniqueFd status_;  // read end: 'R' ready, 'E'+message, EOF after exec
  SandboxSummary summary_;
};

}  // namespace fleetlet::shim
