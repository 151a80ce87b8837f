#pragma once
// Sockets inside another process's network namespace.
//
// A socket stays in the namespace it was created in, so only its creation needs to happen
// there: connect, send and receive then work from any thread. Creation runs on a dedicated
// short-lived thread (netns::runInNetns), because setns(CLONE_NEWNET) changes only the
// calling thread and the caller's threads (a probe worker, curl) must never find themselves
// in an app's namespace.
//
// Thread-safety: free functions, safe from any thread.

#include <sys/types.h>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::health {

// socket(domain, type | SOCK_CLOEXEC, protocol) inside the network namespace of `pid`
// (/proc/<pid>/ns/net). Fails with kNotFound when the process is gone, with the errno of
// setns or socket otherwise. Blocks only for a thread's start and join. Note that a pid that
// was reused by another process names that process's namespace: callers probe a task they
// know to be running.
Result<UniqueFd> socketInNetworkNamespace(pid_t pid, int domain, int type, int protocol = 0);

}  // namespace fleetlet::health
