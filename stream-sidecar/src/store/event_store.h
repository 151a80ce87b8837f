#pragma once
// EventStore: the durable event log of one node, on SQLite (WAL).
//
// Concurrency
// - publish() and ingest() only enqueue, under a mutex of their own (never one a writer holds
//   while it commits, syncs or completes). Writer threads (StoreOptions::sync_threads of them;
//   one when the store does not sync itself) take turns: the one whose turn it is takes every
//   request queued so far, assigns offsets and Lamport times and writes them all in one
//   transaction on the write connection (group commit), then hands the turn on.
// - Durable acknowledgement (StoreOptions::synchronous == kFull, the default): SQLite runs at
//   synchronous=NORMAL, so COMMIT writes the WAL without syncing it; the writer then
//   fdatasyncs the WAL itself, outside its turn, so the next writer commits the next group
//   while this one syncs. A group is durable once an fdatasync that began after its COMMIT
//   returned has returned (fdatasync covers every write made before it began, whichever
//   descriptor made it), so several fdatasyncs run at once and each may complete groups
//   committed by others. After an fdatasync failure the store refuses every write (the kernel
//   may have dropped the dirty pages); readers keep working.
// - Completion publishes a durable group: the offsets move, the commit listener runs, then
//   each request's callback. It is serialized and in commit order, on a writer thread.
//   Readers never see a group before it is durable: offsets() moves at completion, and
//   queries and subscriptions are bounded by offsets().
// - readPage() and offsets() may be called from any thread. readPage() blocks (SQLite) and
//   uses a pooled read connection of its own (WAL readers never block the writer).
// - A checkpointer thread with its own connection copies the WAL into the database
//   (PRAGMA wal_checkpoint(PASSIVE)) once 4 MiB were committed or a second after the first
//   commit since the last one, so commits normally never pay for a checkpoint's writes and
//   fsyncs. Only when the WAL passes 64 MiB (sustained load the checkpointer cannot finish
//   under) does a commit checkpoint inline, which bounds the WAL.
// - The destructor lets the writers commit and complete what is queued and joins every
//   thread; publishes after it began fail with kUnavailable.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "events/event.h"
#include "os/unique_fd.h"
#include "sqlite/database.h"

namespace fleetlet::streams {

struct StoreOptions {
  // Directory holding events.db (created if missing).
  std::filesystem::path dir;
  // This node's source id; "" uses the one kept in the database, generated on first open.
  std::string source_id;
  // Microseconds since the Unix epoch; the system clock when unset.
  std::function<std::int64_t()> clock;
  // kFull: a 201 survives power loss (the store fdatasyncs the WAL before acknowledging, see
  // above). kNormal/kOff hand the setting to SQLite and acknowledge at COMMIT: tests and
  // benchmarks may lower it to measure.
  sqlite::Synchronous synchronous = sqlite::Synchronous::kFull;
  // SQLite page cache per connection (writer and each pooled reader), KiB. Appends touch the
  // tail of the index only, and the kernel caches the file: a small cache keeps the service
  // small (DESIGN.md: < 10 MiB with 20 apps) without costing throughput.
  int cache_kib = 512;
  // The writer writes each group's WAL frames with one system call, not two per page
  // (sqlite::OpenOptions::batch_wal_writes; ~12 pages per group of ~10 events).
  bool batch_wal_writes = true;
  // Adaptive group commit: when the previous group held requests of several publishers, the
  // writer taking the turn waits up to this long for about as many requests before it
  // commits, so one commit and one fdatasync cover them. Never after a group of one publish
  // (a lone publisher pays nothing). 0 (the default): commit at once. Off by default: before
  // syncs overlapped it made groups fuller but not faster (docs/streams.md, "Where the
  // single-event time goes"); overlapping syncs made it moot.
  std::chrono::microseconds group_wait{0};
  // With kFull: writer threads, i.e. how many fdatasyncs of the WAL may run at once while the
  // next group commits (at least 1). An idle writer also runs a second fdatasync next to the
  // one running for the latest commits, and whichever returns first completes them: on the
  // 2-core VM that cut the fsync tail severalfold (docs/streams.md).
  int sync_threads = 2;
  // With kFull: syncs the WAL file descriptor; returns 0 or an errno value. ::fdatasync when
  // unset; unit tests inject failures.
  std::function<int(int fd)> sync_file;
};

// A query over stored events: events matching any filter with lower < offset <= upper for
// sources present in `upper` (absent from `lower` means from offset 0).
struct QuerySpec {
  std::vector<Filter> filters;
  Order order = Order::kSourceOrdered;
  OffsetMap lower;
  OffsetMap upper;
};

// Where a query stands (keyset pagination); start with a default Cursor. The ordered query
// lists keys only, up to PageLimit::events at a time; readPage() then reads those events by
// key until a page is full, so a sort never holds payloads and a large event costs one read.
struct Cursor {
  struct Key {
    std::string source;
    std::int64_t offset = 0;
  };
  // Position of the last key listed.
  bool started = false;
  std::string source;
  std::int64_t offset = 0;
  std::int64_t lamport = 0;
  // Keys listed but not read yet, in order; and whether the ordered query has listed all.
  std::deque<Key> pending;
  bool listed_all = false;
};

// How much one readPage() returns: at most `events` events, and no more once they reach
// `bytes` (counted with eventBytes()). A page therefore holds at most `bytes` plus one event,
// and an event larger than `bytes` comes alone.
struct PageLimit {
  std::size_t events = 2000;
  std::size_t bytes = std::size_t{1024} * 1024;
};

struct Page {
  std::vector<Event> events;
  // False once the query is exhausted; true when a limit cut the page (the next one may still
  // be empty).
  bool more = false;
};

class EventStore {
 public:
  using PublishCallback = std::function<void(Result<std::vector<PublishReceipt>>)>;
  using CommitListener = std::function<void(const std::vector<std::shared_ptr<const Event>>&)>;
  using IngestCallback = std::function<void(Status)>;

  // Opens or creates the store. Fails with the SQLite error (kUnavailable when the file cannot
  // be opened, kFailedPrecondition for a database from a newer version).
  static Result<std::unique_ptr<EventStore>> open(StoreOptions options);
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  const std::string& sourceId() const { return source_id_; }

  // The schema history of events.db, one script per version (shipped scripts are never
  // edited): migrations().first(n) is the schema a store of version n has.
  static sqlite::Migrations migrations();

  // Called once the events of a group commit are durable, with those events in offset order;
  // one call at a time, in commit order, on a writer thread. Set before the first publish;
  // must not block for long.
  void setCommitListener(CommitListener listener);

  // Enqueues `events` published by `app` ("" = host). `done` runs (on a writer thread) once they
  // are durable (receipts in request order) or failed (then none of them was acknowledged; after a
  // failed fdatasync they may still be in the file). Never blocks on I/O.
  void publish(std::string app, std::vector<NewEvent> events, PublishCallback done);

  // Enqueues events replicated from another node, or this node's own events restored from the
  // hub (docs/replication.md). All of one source, with contiguous offsets, the first being the
  // next after the highest stored offset of that source; each keeps its source, offset,
  // lamport, timestamp and app. They are committed like publishes (same group, same fsync,
  // then the commit listener) and the Lamport clock moves past every lamport ingested, so
  // later local events sort after them. `done` runs like publish()'s once they are durable, or
  // fails with kFailedPrecondition when the offsets do not follow on (then none of them is stored;
  // other requests of the group are unaffected) or the SQLite error. The caller must not ingest
  // this node's own source while local publishes can run. Never blocks.
  void ingest(std::vector<Event> events, IngestCallback done);

  // The highest durable offset per source. Never blocks on I/O.
  OffsetMap offsets() const;

  // Reads the next events of `spec` after `cursor` in the spec's order, within `limit`, and
  // advances the cursor. Blocks.
  Result<Page> readPage(const QuerySpec& spec, Cursor& cursor, PageLimit limit);

  struct Stats {
    std::uint64_t commits = 0;
    std::uint64_t events = 0;         // published here
    std::uint64_t ingested = 0;       // replicated from the hub
    std::uint64_t group_waits = 0;    // adaptive waits for more requests (StoreOptions)
    std::uint64_t group_wait_us = 0;  // their total time
    std::uint64_t commit_us = 0;      // time in writeGroup (BEGIN..COMMIT; with kFull
                                      // the WAL's fdatasync is apart, below)
    std::uint64_t syncs = 0;          // fdatasyncs of the WAL (kFull)
    std::uint64_t sync_us = 0;        // their total time (concurrent ones each count)
  };
  Stats stats() const;

 private:
  // A publish (events, done) or an ingest (remote, ingested).
  struct Pending {
    std::string app;
    std::vector<NewEvent> events;
    PublishCallback done;
    std::vector<Event> remote;
    IngestCallback ingested;
  };
  // What a group commit wrote: the events in commit order, the new highest offset of every
  // source it touched, and the outcome of each ingest request (unused for publishes).
  struct GroupResult {
    std::vector<std::shared_ptr<const Event>> events;
    OffsetMap offsets;
    std::vector<Status> ingests;
  };
  // A committed group waiting to be durable.
  struct Committed {
    std::uint64_t seq = 0;  // commit sequence number, from 1
    std::vector<Pending> group;
    GroupResult result;
    std::vector<std::vector<PublishReceipt>> receipts;
    std::uint64_t commit_us = 0;
    std::uint64_t group_wait_us = 0;
    bool waited = false;
  };

  explicit EventStore(StoreOptions options);
  Status init();
  // Appends a request for the writers (moving from `pending`); false once the store closes
  // (then `pending` is untouched).
  bool enqueue(Pending& pending);
  void writerLoop();
  void checkpointLoop();
  // Takes the turn and commits what is queued (queue_mutex_ held through `lock`, released
  // while writing); returns the group's commit sequence number, 0 when nothing was committed.
  std::uint64_t commitTurn(std::unique_lock<std::mutex>& lock);
  // Whether an idle writer should run a second fdatasync next to the one running for the
  // latest commits (queue_mutex_ held): whichever returns first completes them.
  bool hedgeWanted() const;
  // Makes the groups up to `seq` durable (fdatasync unless a sync that began later covers
  // them, or the store does not sync; seq 0: a hedge of the latest sync) and completes every
  // durable group. Called and returns with queue_mutex_ held through `lock`.
  void syncAndComplete(std::unique_lock<std::mutex>& lock, std::uint64_t seq);
  // Publishes a durable group: offsets, stats, commit listener, callbacks. Under
  // complete_mutex_.
  void completeGroup(Committed& committed);
  // Writes one group; returns what it committed or the error (nothing committed).
  Result<GroupResult> writeGroup(std::vector<Pending>& group,
                                 std::vector<std::vector<PublishReceipt>>& receipts);
  // Completes every request of `group` with `error`.
  static void failGroup(std::vector<Pending>& group, const Error& error);
  // Lists the next keys of `spec` after the cursor's position, up to `limit`, into
  // cursor.pending, in the spec's order.
  Status listKeys(sqlite::Database& db, const QuerySpec& spec, Cursor& cursor, std::size_t limit);
  Result<std::unique_ptr<sqlite::Database>> acquireReader();
  void releaseReader(std::unique_ptr<sqlite::Database> db);

  StoreOptions options_;
  std::filesystem::path db_path_;
  std::string source_id_;

  // Owned by the writer whose turn it is (committing_), and init() before they start.
  std::unique_ptr<sqlite::Database> writer_db_;
  std::int64_t next_offset_ = 0;
  std::int64_t lamport_ = 0;
  OffsetMap committed_offsets_;     // highest committed (maybe not yet durable) offset per source
  std::size_t last_publishes_ = 0;  // publish requests of the previous group
  std::chrono::steady_clock::duration last_commit_{};  // how long the last writeGroup took
  std::optional<sqlite::Statement> insert_;            // prepared once
  std::optional<sqlite::Statement> upsert_;

  // Requests not yet taken by a writer. Publishers (the HTTP threads) only append under
  // incoming_mutex_ and take queue_mutex_ only to wake a sleeping writer (enqueue()), so they
  // never wait for a writer's bookkeeping.
  std::mutex incoming_mutex_;
  std::vector<Pending> incoming_;              // guarded by incoming_mutex_
  bool closing_ = false;                       // guarded by incoming_mutex_: refuse new requests
  std::atomic<std::size_t> incoming_size_{0};  // incoming_.size(), written under its mutex
  std::size_t last_group_size_ = 0;            // owned by the writer with the turn

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  bool stopping_ = false;  // guarded by queue_mutex_
  // Written under queue_mutex_; atomic so that enqueue() may read them without it.
  std::atomic<bool> committing_{false};     // a writer has the turn
  std::atomic<bool> group_waiting_{false};  // it waits for a fuller group
  std::atomic<int> sleeping_writers_{0};    // writers waiting on queue_cv_ for work
  CommitListener listener_;                 // set before publishing starts

  mutable std::mutex offsets_mutex_;
  OffsetMap offsets_;  // guarded by offsets_mutex_
  Stats stats_;        // guarded by offsets_mutex_

  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<sqlite::Database>> readers_;  // guarded by readers_mutex_

  // Durable acknowledgement (synchronous == kFull).
  bool sync_wal_ = false;
  UniqueFd wal_fd_;  // the -wal file, opened read-only for fdatasync
  // Guarded by queue_mutex_:
  std::deque<Committed> unsynced_;      // committed, not completed, in commit order
  std::uint64_t committed_seq_ = 0;     // the last group committed
  std::uint64_t sync_started_seq_ = 0;  // the highest group a running or finished sync covers
  int syncs_for_started_ = 0;           // syncs running that cover exactly that far
  std::uint64_t durable_seq_ = 0;
  std::optional<Error> sync_failure_;  // set once, never cleared
  std::mutex complete_mutex_;          // serializes completion (taken before queue_mutex_)

  std::unique_ptr<sqlite::Database> checkpoint_db_;  // owned by the checkpointer thread
  std::uint64_t uncheckpointed_bytes_ = 0;           // guarded by queue_mutex_
  std::condition_variable checkpoint_cv_;

  std::vector<std::thread> writers_;
  std::thread checkpointer_;
};

}  // namespace fleetlet::streams
