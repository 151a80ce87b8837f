#pragma once
// The event service's HTTP routes (ActyxOS v1: /api/v1/events/...), on http::Server.
//
// Concurrency: handlers run on their connection's strand; blocking reads go through offload(),
// publishes through the store's group-commit writer (awaited without blocking a thread).
// The store and hub must outlive the server's stop().

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "error/error.h"
#include "http/server.h"
#include "store/event_store.h"
#include "subscribe/hub.h"

namespace fleetlet::streams {

struct EventsApiOptions {
  // Largest publish/query/subscribe body; larger ones get 413.
  std::uint64_t max_body = std::uint64_t{8} * 1024 * 1024;
  // Events a live subscriber may fall behind before it is cut off with a final error line.
  std::size_t subscriber_queue_limit = 65536;
  // Events read from storage per page (query and catch-up).
  std::size_t page_size = 2000;
  // WebSocket heartbeat interval; a client that has not acked the previous one within the
  // next interval is disconnected.
  std::chrono::milliseconds heartbeat_interval{30000};
};

// The final NDJSON line a cut-off subscriber receives.
inline constexpr std::string_view kTooSlowCode = "ERR_SUBSCRIBER_TOO_SLOW";

// The app identity of a request: the app of a handed-over listener's tag (handoff::appTag),
// "" for the service's own listeners.
std::string appOfListener(std::string_view tag);

// Adds the routes. Events published through a handed-over listener carry its app.
Status registerEventsApi(http::Server& server, EventStore& store, Hub& hub,
                         const EventsApiOptions& options);

}  // namespace fleetlet::streams
