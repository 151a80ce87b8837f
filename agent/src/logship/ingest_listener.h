#pragma once
// The console service's ingest listener: a unix stream socket fleetletd creates at a path of
// its own (mode 0600 in a 0700 directory: only root reaches it) and hands to fleetlet-streams
// under handoff::kNodeApp. The service serves POST /api/v1/logs/ingest only on it, so only
// fleetletd can post entries on behalf of apps; fleetletd connects to the path it bound. The
// socket works the same whether the service runs on the host or in a container (the fd
// travels, the path does not need to be mounted anywhere).

#include <filesystem>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::logship {

// Binds and listens on `path` (a stale file there is replaced; its directory is created 0700).
// kInvalidArgument when the path is too long for a unix socket, else the errno.
Result<UniqueFd> listenIngest(const std::filesystem::path& path);

}  // namespace fleetlet::logship
