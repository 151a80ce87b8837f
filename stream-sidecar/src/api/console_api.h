#pragma once
// The console (logging) service's HTTP routes (ActyxOS v1 /api/v1/logs plus reading and
// following logs).
//
// Concurrency: handlers run on their connection's strand; LogStore calls are offloaded. The
// log store must outlive the server's stop().

#include <cstdint>

#include "console/log_store.h"
#include "error/error.h"
#include "http/server.h"

namespace fleetlet::streams {

struct ConsoleApiOptions {
  std::uint64_t max_body = std::uint64_t{1024} * 1024;
};

// Adds POST and GET /api/v1/logs. The app of a posted entry is its listener's app
// (appOfListener(), "" for host clients).
Status registerConsoleApi(http::Server& server, LogStore& logs, const ConsoleApiOptions& options);

}  // namespace fleetlet::streams
