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
#include "memory/trimmer.h"
#include "store/event_store.h"
#include "subscribe/hub.h"

namespace fleetlet::streams {

struct EventsApiOptions {
  // Largest publish/query/subscribe body; larger ones get 413.
  std::uint64_t max_body = std::uint64_t{8} * 1024 * 1024;
  // How far (events, bytes) a live subscriber may fall behind before it is cut off: its queue
  // is dropped at once, and it gets a final error line after the write in flight (a client
  // that stopped reading is closed at the server's write timeout instead; a WebSocket at its
  // heartbeat deadline).
  QueueLimit subscriber_queue;
  // How much a page read from storage holds (query and catch-up); one page is what a reader
  // holds in memory at a time (about twice while it is serialized).
  PageLimit page;
  // WebSocket heartbeat interval; a client that has not acked a heartbeat within an interval
  // of its being due is disconnected, whether or not the heartbeat could be sent.
  std::chrono::milliseconds heartbeat_interval{30000};
};

// The final NDJSON line a cut-off subscriber receives.
inline constexpr std::string_view kTooSlowCode = "ERR_SUBSCRIBER_TOO_SLOW";

// The app identity of a request: the app of a handed-over listener's tag (handoff::appTag),
// "" for the service's own listeners.
std::string appOfListener(std::string_view tag);

// Adds the routes. Events published through a handed-over listener carry its app. Large
// buffers freed after a request or page are reported to `trimmer`. The store, hub, trimmer
// and options must outlive the server's stop().
Status registerEventsApi(http::Server& server, EventStore& store, Hub& hub, MemoryTrimmer& trimmer,
                         const EventsApiOptions& options);

}  // namespace fleetlet::streams
