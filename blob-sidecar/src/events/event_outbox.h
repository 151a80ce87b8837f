#pragma once
// The metadata-event outbox: events are written into an SQLite table in the same transaction
// as the blob they describe, and an EventPublisher thread drains the table by POSTing batches
// to the event service (`<events-url>/api/v1/events/publish`). An event leaves the table only
// after the service answered 2xx, so nothing is lost while the service is down or the blob
// service restarts; delivery is at-least-once.
//
// Concurrency: enqueueEvent() runs on the caller's connection (inside its transaction).
// EventPublisher owns one thread, its own Database connection and its own HTTP client;
// notify() and the destructor may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "error/error.h"
#include "json/json.h"
#include "sqlite/database.h"

namespace fleetlet::blobevents {

// Stream of blob metadata events (blobs-v1.md).
inline constexpr std::string_view kMetadataSemantics = "com.actyx.os.blobs.metadata";
inline constexpr std::string_view kMetadataName = "ActyxOS-BlobService-Metadata";

// The outbox table; part of the store's schema migrations.
inline constexpr std::string_view kOutboxSchema =
    "CREATE TABLE event_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);";

// {"semantics":..,"name":..,"payload":metadata}
Json metadataEvent(const Json& metadata);

// Appends `event` (one element of a publish request's "data") to the outbox. Run it inside
// the transaction that stores what the event describes. Fails with the SQLite error.
Status enqueueEvent(sqlite::Database& db, const Json& event);

struct PublisherOptions {
  // Base URL of the event service, e.g. "http://127.0.0.1:4454".
  std::string events_url = "http://127.0.0.1:4454";
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10000};
  // Events per publish request.
  int batch = 100;
};

class EventPublisher {
 public:
  // `db` is the publisher's own connection to the database holding the outbox table.
  static std::unique_ptr<EventPublisher> create(sqlite::Database db, PublisherOptions options);
  // Stops the thread: a request in flight finishes (bounded by the client's timeouts).
  ~EventPublisher();
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  void start();
  // New events are in the outbox: publish them now (also cuts a retry wait short).
  void notify();
  // Events delivered so far by this instance.
  int64_t delivered() const;

 private:
  EventPublisher(sqlite::Database db, PublisherOptions options);
  void run();
  // One batch; returns the number of events delivered (0 when the outbox is empty) or the
  // reason the batch could not be delivered.
  Result<int64_t> publishBatch();

  sqlite::Database db_;  // used only by the publisher thread
  const PublisherOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;      // guarded by mutex_
  bool pending_ = true;    // guarded by mutex_; start by draining what a restart left
  int64_t delivered_ = 0;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace fleetlet::blobevents
