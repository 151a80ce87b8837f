#pragma once
// The routes of fleetletd's local API (docs/local-api.md) on an http::Server, served from a
// core::NodeService:
//   POST /v1/apply                   manifest text (YAML or JSON) → 201 {"revision","apps"}
//   GET  /v1/apps                    → {"apps":[AppStatus...]}
//   GET  /v1/apps/{name}             → AppDetail
//   POST /v1/apps/{name}/restart     → 200 {"app","restarted":true}
//   GET  /v1/apps/{name}/logs        ?tail=N&follow=true&since=T&until=T → NDJSON log entries
//   GET  /v1/node/logs               ?tail=N&since=T&until=T → fleetletd's own log (NDJSON)
//   GET  /v1/status                  → NodeStatus
//   GET  /v1/events                  ?after=SEQ&limit=N&follow=true → NDJSON NodeEvent
//   GET  /v1/top                     → the apps' and node's usage (MetricsEndpoints::top)
//   GET  /metrics                    → Prometheus text (MetricsEndpoints::exposition)
// Errors are {"code","message"} with the status of http::httpStatus(). A {name} that is not a
// valid app name (manifest::checkAppName) is 400 on every route, before the service is asked.
//
// NodeService calls that may block run on the server's blocking pool (offload), never on its
// I/O threads; events() and watchEvents() do not block and run on the I/O thread. An events
// follower waits on an Asio timer that the service's watch wakes: it holds no thread while it
// waits, so any number of followers leave the pool to the other requests. A logs follower
// holds a pool thread only for each short poll (every log_poll).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/node_service.h"
#include "error/error.h"
#include "json/json.h"

namespace fleetlet::http {
class Server;
}

namespace fleetlet::api {

// fleetletd's metrics (docs/observability.md), served on the API socket and, with
// --metrics-listen, alone on a TCP listener (MetricsServer). Both functions may block: they run
// on the server's blocking pool.
struct MetricsEndpoints {
  // GET /metrics: the exposition (Prometheus text format 0.0.4). Unset: no /metrics route.
  std::function<std::string()> exposition;
  // GET /v1/top: the apps' and the node's usage as JSON (fleetletctl top). Unset: no route.
  std::function<Json()> top;
};

struct RouteConfig {
  // Largest manifest POST /v1/apply takes; larger bodies get 413.
  std::uint64_t apply_body_limit = std::uint64_t{1024} * 1024;
  // Default and largest `limit` of GET /v1/events (events per response or per batch).
  std::size_t event_limit = 1000;
  // How often a logs follower looks for new lines.
  std::chrono::milliseconds log_poll{250};
  // fleetletd's own log (logs/node_log.h) for GET /v1/node/logs; empty: 404.
  std::filesystem::path node_log_dir;
  MetricsEndpoints metrics;
};

// Adds the routes above to `server` (before server.start()). `service` must outlive the
// server's last request. Fails like http::Server::route().
Status registerRoutes(http::Server& server, core::NodeService& service, RouteConfig config = {});
// Adds GET /metrics and GET /v1/top for the endpoints that are set.
Status registerMetricsRoutes(http::Server& server, const MetricsEndpoints& endpoints);

}  // namespace fleetlet::api
