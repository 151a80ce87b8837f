#pragma once
// Replicator: site replication of event logs through a NATS JetStream hub
// (docs/replication.md, shared/notes/nats-jetstream.md).
//
// SQLite stays the truth. A pump publishes this node's own log to its stream
// FL_<site>_<source> (stream sequence = offset + 1) with an expected-last-sequence on every
// message, and after any error re-reads the stream's last sequence and resumes from there.
// One ordered consumer per other source ingests that source's stream from the SQLite cursor
// (its highest stored offset + 2) through EventStore::ingest(). Local publishing never waits
// for the hub.
//
// Concurrency
// - start() and the destructor run on the controlling thread. The pump and the maintainer
//   (discovery of sources, consumers, lag, identity checks) are threads of their own; nats.c
//   delivers messages and connection events on its threads; EventStore completes ingests on
//   its writer thread. Shared state is guarded by mutex_ (and each feed's own mutex).
// - The store's commit listener wakes the pump through a PumpWake, which outlives it.
// - The destructor stops both threads, unsubscribes every consumer and waits until nats.c
//   finished its callbacks and the store completed every ingest in flight, then closes the
//   connection. The store must outlive the Replicator.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "events/replicated.h"
#include "metrics/exposition.h"
#include "store/event_store.h"

// nats.c types, kept out of this header.
struct __natsConnection;
struct __jsCtx;

namespace fleetlet::streams {

struct ReplicationOptions {
  // Hub URLs (nats://host:port or tls://...); empty: no replication.
  std::vector<std::string> urls;
  std::string site = "site";
  // Credentials: user and password, or a NATS credentials file (JWT and seed).
  std::string user;
  std::string password;
  std::string credentials_file;
  // TLS: a CA file to trust (turns TLS on), a client certificate and key.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // Limits of this node's stream when it creates it (Discard=new: a full stream refuses new
  // events, it never drops unreplicated ones). -1: unlimited.
  std::int64_t stream_max_bytes = std::int64_t{256} << 20;
  std::int64_t stream_max_msgs = -1;
  int stream_replicas = 1;
  // Largest message body accepted from the hub (larger ones are ignored and counted).
  std::size_t max_event_bytes = std::size_t{8} * 1024 * 1024 + 64 * 1024;
  // How long start() waits for the hub before it starts without it, and how long a restore
  // of this node's own log may go without progress before start() fails.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds restore_stall_timeout{30000};
  // How often sources are discovered and lag is read from the hub.
  std::chrono::milliseconds discovery_interval{1000};
  // Events (and their bytes, counted with eventBytes()) ingested but not yet committed, over
  // all sources, before delivery waits.
  std::size_t ingest_window = 8192;
  std::size_t ingest_window_bytes = std::size_t{32} * 1024 * 1024;
};

// Wakes the pump after this node committed events of its own. The store's commit listener
// calls committed(); shared with the Replicator, so it stays valid after it is gone.
struct PumpWake {
  std::mutex mutex;
  std::condition_variable cv;
  bool pending = false;  // guarded by mutex
  void notify();
  void committed(const std::vector<std::shared_ptr<const Event>>& events,
                 std::string_view own_source);
};

class Replicator {
 public:
  // Connects to the hub (retrying in the background when it is unreachable). When connected
  // within connect_timeout: fails with kAlreadyExists when another live node answers for this
  // source id, and restores this node's own events the hub holds beyond the local log (a
  // wiped node) before returning. Then starts the pump and the maintainer.
  // `wake` must be fed by the store's commit listener (set before start(): a restore commits).
  static Result<std::unique_ptr<Replicator>> start(ReplicationOptions options, EventStore& store,
                                                   std::shared_ptr<PumpWake> wake);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // {"enabled":true,"site","source","hub":{...},"pump":{...},"sources":{...},"rejected":{...}}
  std::string statusJson() const;
  // Writes the fleetlet_streams_replication_* families (docs/observability.md).
  void writeMetrics(metrics::TextWriter& out) const;

  struct Feed;  // one ingested source (replicator.cpp)

 private:
  Replicator(ReplicationOptions options, EventStore& store, std::shared_ptr<PumpWake> wake);
  Status connect();
  // Another live node answering for our source id: kAlreadyExists. Unreachable: ok.
  Status checkIdentity();
  Status answerIdentity();
  // Creates our stream when missing; returns its last sequence.
  Result<std::uint64_t> ownStreamLastSeq();
  // Whether message `last` (>= 1) of our stream is this node's event at offset last - 1
  // (a hostile or foreign message there leaves the count right but the log wrong): "" when it
  // is, else what differs. Errors reading the hub or the local log are errors.
  Result<std::string> checkOwnStreamTail(std::uint64_t last);
  Status restoreOwnLog(std::uint64_t hub_last);

  void pumpLoop();
  // Publishes local events from published_ on; returns false after an error (then resync).
  bool publishBacklog();
  // After a failed round and at shutdown: waits (bounded) for the publishes still in flight
  // to be answered or time out, and drops any left, so the next round starts with none
  // pending and a dead hub does not hold up the stop.
  void abandonRound();
  void maintainLoop();
  void discover();
  Status subscribe(Feed& feed);
  void unsubscribe(Feed& feed);
  bool connected() const;

  void setPumpState(std::string state, std::string error = "");
  // Hands `events` (accepted from `feed`, `bytes` by eventBytes()) to the store as one request.
  void ingestBatch(Feed& feed, std::vector<Event> events, std::size_t bytes);

 public:
  // Called from nats.c and store callbacks (replicator.cpp); not for other callers.
  // `seq`: the stream sequence; `consumer_seq`: the delivery sequence of the consumer.
  void onMessage(Feed& feed, std::string_view body, std::uint64_t seq, std::uint64_t consumer_seq);
  // A natsStatus from nats.c's asynchronous error handler (slow consumer, missed heartbeat).
  void onAsyncError(int status);
  void onConnection(bool up);
  void onPublishError(std::string error, int code);
  void ingestDone(Feed& feed, std::size_t events, std::size_t bytes, const Status& status);

 private:
  const ReplicationOptions options_;
  EventStore& store_;
  const std::string source_;
  const std::string subject_;
  const std::string stream_;
  const std::string instance_;  // this process, answers identity requests

  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  void* identity_sub_ = nullptr;  // natsSubscription*

  std::shared_ptr<PumpWake> wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> resync_{true};
  std::atomic<bool> publish_failed_{false};

  mutable std::mutex mutex_;
  std::condition_variable cv_;  // maintainer wake-ups, ingest window
  // Guarded by mutex_:
  bool hub_connected_ = false;
  std::string hub_url_;
  std::uint64_t disconnects_ = 0;
  std::uint64_t connects_ = 0;
  bool identity_checked_ = false;
  std::string pump_state_ = "starting";
  std::string pump_error_;
  std::int64_t published_ = -1;  // next offset the hub expects; -1: unknown
  std::uint64_t published_events_ = 0;
  std::uint64_t pump_errors_ = 0;
  std::map<std::string, std::unique_ptr<Feed>, std::less<>> feeds_;
  std::size_t in_flight_ = 0;        // ingested events not yet committed, all feeds
  std::size_t in_flight_bytes_ = 0;  // their eventBytes()
  std::uint64_t rejected_[kRejectionCount] = {};
  // Ingest and delivery counters (status "ingest", /metrics).
  std::uint64_t ingest_requests_ = 0;        // store requests (delivery batches)
  std::uint64_t ingest_window_waits_ = 0;    // deliveries that waited for the window
  std::uint64_t ingest_window_wait_us_ = 0;  // and how long, in total
  std::uint64_t consumer_restarts_ = 0;      // ordered consumers re-created by nats.c
  std::uint64_t slow_consumers_ = 0;         // messages dropped past the pending limits
  std::uint64_t missed_heartbeats_ = 0;
  std::uint64_t async_errors_ = 0;

  std::thread pump_;
  std::thread maintainer_;
};

// Splits "a,b,c" into URLs, refusing empty ones.
Result<std::vector<std::string>> splitHubUrls(std::string_view text);

}  // namespace fleetlet::streams
