#pragma once
// The shim's manager: the `start` and `delete` subcommands containerd runs, and the
// long-lived server they lead to (containerd runtime v2, runtime/v2/README.md):
//
//   containerd-shim-fleetlet-v1 -namespace NS -address SOCK -publish-binary BIN -id ID start
//     cwd = bundle, env TTRPC_ADDRESS; prints the shim's socket address and exits 0 after
//     forking the server (runServe, no exec) into its own session (it survives containerd
//     restarts) with stdio on /dev/null, so containerd's pipes close.
//   ... -id ID -bundle DIR delete
//     the shim is gone: kill what is left of the task, remove its cgroup and socket, print a
//     binary DeleteResponse{pid, exit_status 137, exited_at}. Idempotent.
//   ... (no subcommand, listener on fd 3)   serve the Task service until Shutdown.
//
// Socket: <dir of -address>/s/<hash of address/ns/id> (containerd's own shims use
// /run/containerd/s/<sha256>), falling back to /run/fleetlet-shim/ when that path would not
// fit sun_path. An address in use is reused when something answers there (a shim for the
// same task is alive), else removed and bound again.

#include <filesystem>
#include <string>
#include <vector>

#include "error/error.h"

namespace fleetlet::shim {

struct ShimFlags {
  std::string ns;
  std::string address;         // containerd's gRPC socket
  std::string publish_binary;  // unused: events go over ttrpc to $TTRPC_ADDRESS
  std::string id;
  std::string bundle;
  bool debug = false;
  std::string action;  // "start", "delete" or "" (serve)
};

// Go-flag style: -name value, -name=value, --name value; the action is the first
// non-flag word. kInvalidArgument naming the flag for anything unknown or missing.
Result<ShimFlags> parseFlags(const std::vector<std::string>& args);

// The socket path for a task (see above).
std::filesystem::path socketPathFor(const std::string& containerd_address, const std::string& ns,
                                    const std::string& id);

// The subcommands; each returns the process exit code.
// runStart must be called by a process with one thread (it forks the server).
int runStart(const ShimFlags& flags);
int runDelete(const ShimFlags& flags);
int runServe(const ShimFlags& flags);

}  // namespace fleetlet::shim
