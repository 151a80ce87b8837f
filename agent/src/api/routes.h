#pragma once
// The routes of fleetletd's local API (docs/local-api.md) on an http::Server, served from a
// core::NodeService:
//   POST /v1/apply                   manifest text (YAML or JSON) → 201 {"revision","apps"}
//   GET  /v1/apps                    → {"apps":[AppStatus...]}
//   GET  /v1/apps/{name}             → AppDetail
//   POST /v1/apps/{name}/restart     → 200 {"app","restarted":true}
//   GET  /v1/apps/{name}/logs        ?tail=N&follow=true → NDJSON log entries
//   GET  /v1/status                  → NodeStatus
//   GET  /v1/events                  ?after=SEQ&limit=N&follow=true → NDJSON NodeEvent
// Errors are {"code","message"} with the status of http::httpStatus().
//
// Every NodeService call runs on the server's blocking pool (offload), never on its I/O
// threads. A follower of events holds one blocking thread for up to follow_wait at a time;
// size ServerOptions::blocking_threads for the followers expected.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/node_service.h"
#include "error/error.h"

namespace fleetlet::http {
class Server;
}

namespace fleetlet::api {

struct RouteConfig {
  // Largest manifest POST /v1/apply takes; larger bodies get 413.
  std::uint64_t apply_body_limit = std::uint64_t{1024} * 1024;
  // Longest NodeService::events() wait of an events follower. Bounds how long a follower
  // takes to notice that its client left or the server stops.
  std::chrono::milliseconds follow_wait{1000};
  // Default and largest `limit` of GET /v1/events (events per response or per batch).
  std::size_t event_limit = 1000;
  // How often a logs follower looks for new lines.
  std::chrono::milliseconds log_poll{250};
};

// Adds the routes above to `server` (before server.start()). `service` must outlive the
// server's last request. Fails like http::Server::route().
Status registerRoutes(http::Server& server, core::NodeService& service, RouteConfig config = {});

}  // namespace fleetlet::api
