#pragma once
// Listening sockets created inside another network namespace (the agent side of the socket
// handoff, see docs/socket-handoff.md).
//
// Concurrency: every function is thread-safe. runInNetns() and listenInNetns() block the
// caller while a dedicated, short-lived thread enters the namespace, does the work and leaves
// it again; the caller's own thread never changes namespace. If that thread cannot switch back
// to its original namespace the process aborts (a thread stuck in an app's namespace would
// silently create the agent's later sockets there).
//
// Privileges: entering a namespace needs CAP_SYS_ADMIN, SIOCGSKNS needs CAP_NET_ADMIN. Without
// them the calls fail with the errno (EPERM) in the Error.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "error/error.h"
#include "netns/netns.h"
#include "os/unique_fd.h"

namespace fleetlet::handoff {

// listen() backlog when none is given: big enough to hold a service restart's burst of
// clients. Always capped by the namespace's net.core.somaxconn.
inline constexpr int kDefaultBacklog = 4096;

// Runs fn inside the network namespace at `netns` (see netns/netns.h).
using netns::runInNetns;

// Creates a TCP listener bound to `address`:`port` (a literal IPv4 or IPv6 address; port 0
// picks a free port, see boundPort()) inside the network namespace at `netns`: brings `lo` up
// there if it is down (a bind to 127.0.0.1 succeeds while lo is down, but clients would get
// ENETUNREACH), sets SO_REUSEADDR and SOCK_CLOEXEC and listens with
// min(backlog, somaxconn) (backlog <= 0 means kDefaultBacklog). The caller owns the returned
// fd; the socket stays in that namespace for its whole life (and keeps the namespace alive
// after `ip netns del` until the last duplicate is closed).
// With `reuse_port`, SO_REUSEPORT too: a new listener can be bound beside one that another
// holder still has (a restarted agent re-creating what the service holds); both must set it.
// Fails with kInvalidArgument for a malformed address, kNotFound for a missing namespace and
// the errno of the failing call (bind: EADDRINUSE is kInternal with sysErrno() set).
Result<UniqueFd> listenInNetns(const std::filesystem::path& netns, const std::string& address,
                               std::uint16_t port, int backlog = kDefaultBacklog,
                               bool reuse_port = false);

// The inode of the network namespace socket `fd` lives in (ioctl SIOCGSKNS; CAP_NET_ADMIN).
Result<ino_t> socketNetnsInode(int fd);
// The inode of the namespace at `netns` (stat). Compare with socketNetnsInode() to detect a
// namespace that was deleted and re-created under the same name: the old listener then no
// longer applies and must be re-created. Fails with kNotFound when the path does not exist.
Result<ino_t> netnsInode(const std::filesystem::path& netns);

// The local TCP port of a bound socket (getsockname).
Result<std::uint16_t> boundPort(int fd);

}  // namespace fleetlet::handoff
