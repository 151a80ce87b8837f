#pragma once
// Service: fleetlet-streams assembled: the event store, the live hub, the log store and two
// HTTP servers (events on one listener set, console on another).
//
// Concurrency: start() and stop() from one controlling thread (main or a test). Everything
// else runs on the servers' threads and the store's writer thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "api/console_api.h"
#include "api/events_api.h"
#include "console/log_store.h"
#include "error/error.h"
#include "handoff/receiver.h"
#include "http/server.h"
#include "memory/trimmer.h"
#include "replication/replicator.h"
#include "store/event_store.h"
#include "subscribe/hub.h"

namespace fleetlet::streams {

struct ServiceOptions {
  std::filesystem::path data_dir;
  std::string events_address = "127.0.0.1";
  std::uint16_t events_port = 4454;
  std::string console_address = "127.0.0.1";
  std::uint16_t console_port = 4457;
  std::string source_id;
  sqlite::Synchronous synchronous = sqlite::Synchronous::kFull;
  std::chrono::microseconds group_wait{0};  // StoreOptions::group_wait
  int sync_threads = 2;                     // StoreOptions::sync_threads
  EventsApiOptions events;
  ConsoleApiOptions console;
  MemoryTrimmer::Options trimmer;
  std::uint64_t log_app_cap_bytes = std::uint64_t{16} * 1024 * 1024;
  std::uint64_t log_total_cap_bytes = std::uint64_t{256} * 1024 * 1024;
  // Request header deadline (slowloris) and per-read/-write timeouts of both servers.
  std::chrono::milliseconds header_timeout{30000};
  std::chrono::milliseconds io_timeout{30000};
  // When set, fleetletd hands listeners over this unix socket (docs/socket-handoff.md):
  // listener "events" goes to the event service, "console" to the console service.
  std::filesystem::path handoff_socket;
  // Site replication through a NATS JetStream hub; off when replication.urls is empty.
  ReplicationOptions replication;
};

class Service {
 public:
  // Opens the stores, binds both listeners and starts serving. Fails with the store's or the
  // bind's error (nothing keeps running then).
  static Result<std::unique_ptr<Service>> start(ServiceOptions options);
  // Stops both servers, then closes the stores (pending publishes complete first).
  ~Service();

  void stop();

  const http::ListenerInfo& eventsListener() const { return events_listener_; }
  const http::ListenerInfo& consoleListener() const { return console_listener_; }
  http::Server& eventsServer() { return *events_server_; }
  http::Server& consoleServer() { return *console_server_; }
  EventStore& store() { return *store_; }
  LogStore& logs() { return *logs_; }
  Hub& hub() { return *hub_; }
  MemoryTrimmer& trimmer() { return *trimmer_; }
  // Null when replication is off.
  Replicator* replicator() { return replicator_.get(); }
  // The exposition of GET /metrics (docs/observability.md). Blocks briefly (store counters).
  std::string metricsText() const;

 private:
  explicit Service(ServiceOptions options) : options_(std::move(options)) {}
  // GET /replication (status JSON) and GET /metrics on the event service's listener.
  Status registerStatusRoutes();

  ServiceOptions options_;
  // Declared so that destruction runs servers, log store, replicator, event store (joining its
  // writer, which still delivers to the hub), then the hub and the trimmer.
  std::unique_ptr<MemoryTrimmer> trimmer_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<Replicator> replicator_;  // stops before the store, after the servers
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<http::Server> events_server_;
  std::unique_ptr<http::Server> console_server_;
  std::unique_ptr<handoff::HandoffReceiver> handoff_;  // destroyed before the servers
  http::ListenerInfo events_listener_;
  http::ListenerInfo console_listener_;
  bool stopped_ = false;
};

}  // namespace fleetlet::streams
