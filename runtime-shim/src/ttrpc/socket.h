#pragma once
// Unix stream sockets for ttrpc: listen, connect, whole writes, peer checks.

#include <filesystem>
#include <string_view>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::ttrpc {

// Binds and listens on `path` (close-on-exec). kInvalidArgument when the path does not fit
// sun_path (107 bytes); kAlreadyExists (EADDRINUSE) when something is already bound there.
Result<UniqueFd> listenUnix(const std::filesystem::path& path);
// Connects to `path`; accepts a "unix://" prefix. kUnavailable when nobody listens.
Result<UniqueFd> connectUnix(std::string_view address);
// Writes all of `data` (MSG_NOSIGNAL, retrying EINTR); false when the peer is gone.
bool writeAll(int fd, std::string_view data);
// True when the peer runs as root or with this process's uid.
bool peerAllowed(int fd);

}  // namespace fleetlet::ttrpc
