#pragma once
// RuncProcess: container mode, a drop-in for io.containerd.runc.v2's init process. The shim
// mounts the rootfs containerd sends at <bundle>/rootfs, runs `runc create` with the task's
// stdio and a pid file (runc puts the process in the spec's cgroup and namespaces; the init
// waits in runc's exec fifo), `runc start` at Start, and `runc delete --force` plus the
// unmount at cleanup. runc's own errors come from its JSON log (<bundle>/runc-log.json).
// The container's init is reparented to the shim (a subreaper), whose reaper reports its exit.
//
// runc's state lives under the runtime options' root, by default <dir of containerd's
// socket>/runc/<namespace> (ShimContext::runc_root); the binary is options.binary_name or
// "runc" on PATH.
// Both are recorded in the bundle (runc.root, runc.binary) for the `delete` subcommand.
//
// Thread-safety: one caller at a time (the task service serialises).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "error/error.h"
#include "shim/reaper.h"
#include "shim/stdio.h"
#include "shim/task_process.h"

namespace fleetlet::shim {

struct RootfsMount {
  std::string type, source;
  std::vector<std::string> options;
};

struct RuncConfig {
  std::string id;
  std::filesystem::path bundle;
  std::string root;    // runc --root
  std::string binary;  // runc or a compatible one
};

class RuncProcess : public TaskProcess {
 public:
  // kInvalidArgument with runc's message when runc refuses the bundle; mounts are undone.
  static Result<std::unique_ptr<RuncProcess>> create(const RuncConfig& config,
                                                     const std::vector<RootfsMount>& rootfs,
                                                     OpenedStdio io, Reaper& reaper,
                                                     Reaper::Callback on_exit);
  ~RuncProcess() override;

  pid_t pid() const override { return pid_; }
  Status start() override;
  Status cleanup() override;

  // An extra process in the running container, as the Go shim does it: `runc exec --detach
  // --process <file> --pid-file <file>` with `io` as its stdio. `process_json` is the OCI
  // process the Exec request carries. Returns the process's host pid once runc has started it;
  // its exit reaches `on_exit` through the reaper (even when it ended before this returns).
  // kInvalidArgument with runc's message when runc refuses (e.g. a missing program).
  Result<pid_t> exec(const std::string& exec_id, const std::string& process_json, OpenedStdio io,
                     Reaper::Callback on_exit);

  // What the `delete` subcommand does when the shim is gone: runc delete --force and
  // unmount, from the files in the bundle. Idempotent.
  static void cleanupBundle(const std::filesystem::path& bundle, const std::string& id);

 private:
  RuncProcess(RuncConfig config, Reaper& reaper) : config_(std::move(config)), reaper_(reaper) {}
  // cleanup()'s work; not virtual, so the destructor can use it.
  Status releaseRuncState();

  RuncConfig config_;
  Reaper& reaper_;
  pid_t pid_ = -1;
  bool started_ = false;
  bool cleaned_ = false;
  bool mounted_ = false;
};

}  // namespace fleetlet::shim
