#include "store/event_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <string_view>
#include <variant>

namespace fleetlet::streams {
namespace {

// Schema history; never edit a shipped entry, append new ones.
constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE events(
  source TEXT NOT NULL,
  event_offset INTEGER NOT NULL,
  lamport INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  semantics TEXT NOT NULL,
  name TEXT NOT NULL,
  payload TEXT NOT NULL,
  app TEXT NOT NULL,
  PRIMARY KEY(source, event_offset)) WITHOUT ROWID;
CREATE INDEX events_by_semantics ON events(semantics, lamport, source);
CREATE INDEX events_by_stream ON events(semantics, name, lamport, source);
CREATE INDEX events_by_name ON events(name, lamport, source);
CREATE INDEX events_by_lamport ON events(lamport, source);
CREATE TABLE sources(source TEXT PRIMARY KEY, max_offset INTEGER NOT NULL) WITHOUT ROWID;
)sql",
    // 2: no query walks events_by_lamport (EXPLAIN QUERY PLAN: offset bounds always take the
    // primary key; docs/streams.md, "Indexes"); it served only the Lamport clock's start
    // value, max(lamport), which sources now keeps per source. One b-tree write less per event.
    R"sql(
ALTER TABLE sources ADD COLUMN max_lamport INTEGER NOT NULL DEFAULT 0;
UPDATE sources SET max_lamport =
  coalesce((SELECT max(lamport) FROM events WHERE events.source = sources.source), 0);
DROP INDEX events_by_lamport;
)sql",
};

constexpr std::string_view kColumns =
    "semantics, name, source, timestamp, lamport, event_offset, payload, app";

std::int64_t systemMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string generateSourceId() {
  std::random_device random;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string id;
  for (int i = 0; i < 16; ++i) id += "0123456789abcdef"[digit(random)];
  return id;
}

using BindValue = std::variant<std::int64_t, std::string>;

Status bindValues(sqlite::Statement& stmt, const std::vector<BindValue>& values) {
  int index = 0;
  for (const auto& v : values) {
    ++index;
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
      FLEETLET_RETURN_IF_ERROR(stmt.bind(index, *i));
    } else {
      FLEETLET_RETURN_IF_ERROR(stmt.bind(index, std::string_view(std::get<std::string>(v))));
    }
  }
  return {};
}

Event readEvent(const sqlite::Statement& stmt) {
  Event e;
  e.semantics = stmt.columnText(0);
  e.name = stmt.columnText(1);
  e.source = stmt.columnText(2);
  e.timestamp = stmt.columnInt64(3);
  e.lamport = stmt.columnInt64(4);
  e.offset = stmt.columnInt64(5);
  e.payload = stmt.columnText(6);
  e.app = stmt.columnText(7);
  return e;
}

}  // namespace

EventStore::EventStore(StoreOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = systemMicros;
  db_path_ = options_.dir / "events.db";
}

sqlite::Migrations EventStore::migrations() { return kMigrations; }

Result<std::unique_ptr<EventStore>> EventStore::open(StoreOptions options) {
  std::unique_ptr<EventStore> store(new EventStore(std::move(options)));
  FLEETLET_RETURN_IF_ERROR(store->init());
  const int writers = store->sync_wal_ ? store->options_.sync_threads : 1;
  for (int i = 0; i < writers; ++i) {
    store->writers_.emplace_back([s = store.get()] {
      // Named for per-thread profiles (top -H, /proc/<pid>/task/*/comm, perf).
      ::pthread_setname_np(::pthread_self(), "events-writer");
      s->writerLoop();
    });
  }
  store->checkpointer_ = std::thread([s = store.get()] {
    ::pthread_setname_np(::pthread_self(), "events-checkpt");
    s->checkpointLoop();
  });
  return store;
}

Status EventStore::init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return failErrno(ec.value(), "create data dir {}", options_.dir.string());
  // With kFull the syncer threads fdatasync the WAL (see the header): SQLite's COMMIT only
  // writes it. Checkpoints sync the WAL and the database at NORMAL as at FULL.
  sync_wal_ = options_.synchronous == sqlite::Synchronous::kFull;
  auto db = sqlite::Database::open(
      db_path_, kMigrations,
      {.synchronous = sync_wal_ ? sqlite::Synchronous::kNormal : options_.synchronous,
       .cache_kib = options_.cache_kib,
       .batch_wal_writes = options_.batch_wal_writes});
  if (!db) return std::unexpected(db.error().wrap("open event store"));
  writer_db_ = std::make_unique<sqlite::Database>(std::move(*db));
  // Checkpoints run on their own thread (checkpointLoop). Under sustained load that one can
  // never finish a checkpoint (new frames keep coming), so the WAL could grow without bound:
  // past 64 MiB the writer checkpoints inline between transactions, which lets the WAL
  // restart. A WAL reset is truncated back to 64 MiB.
  FLEETLET_RETURN_IF_ERROR(
      writer_db_->exec("PRAGMA wal_autocheckpoint=16384; PRAGMA journal_size_limit=67108864"));
  auto checkpoint_db = sqlite::Database::open(
      db_path_, kMigrations, {.synchronous = options_.synchronous, .cache_kib = 64});
  if (!checkpoint_db) return std::unexpected(checkpoint_db.error().wrap("open checkpointer"));
  checkpoint_db_ = std::make_unique<sqlite::Database>(std::move(*checkpoint_db));

  // The source id: the flag wins; otherwise the kept one; otherwise a new one, kept.
  FLEETLET_ASSIGN_OR_RETURN(auto get,
                            writer_db_->prepare("SELECT value FROM meta WHERE key = 'source'"));
  FLEETLET_ASSIGN_OR_RETURN(bool has, get.step());
  std::string kept = has ? get.columnText(0) : "";
  source_id_ = !options_.source_id.empty() ? options_.source_id : kept;
  if (source_id_.empty()) source_id_ = generateSourceId();
  if (kept.empty()) {
    FLEETLET_ASSIGN_OR_RETURN(auto put,
                              writer_db_->prepare("INSERT INTO meta VALUES('source', ?)"));
    FLEETLET_RETURN_IF_ERROR(put.bindAll(source_id_));
    FLEETLET_RETURN_IF_ERROR(put.run());
  }

  FLEETLET_ASSIGN_OR_RETURN(auto sources,
                            writer_db_->prepare("SELECT source, max_offset FROM sources"));
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, sources.step());
    if (!row) break;
    offsets_[sources.columnText(0)] = sources.columnInt64(1);
  }
  committed_offsets_ = offsets_;
  auto own = offsets_.find(source_id_);
  next_offset_ = own == offsets_.end() ? 0 : own->second + 1;
  FLEETLET_ASSIGN_OR_RETURN(
      auto lamport, writer_db_->prepare("SELECT coalesce(max(max_lamport), 0) FROM sources"));
  FLEETLET_ASSIGN_OR_RETURN(bool lrow, lamport.step());
  lamport_ = lrow ? lamport.columnInt64(0) : 0;
  FLEETLET_ASSIGN_OR_RETURN(auto insert,
                            writer_db_->prepare("INSERT INTO events(source, event_offset, lamport, "
                                                "timestamp, semantics, name, payload, app) "
                                                "VALUES(?,?,?,?,?,?,?,?)"));
  insert_.emplace(std::move(insert));
  FLEETLET_ASSIGN_OR_RETURN(
      auto upsert,
      writer_db_->prepare("INSERT INTO sources(source, max_offset, max_lamport) VALUES(?, ?, ?) "
                          "ON CONFLICT(source) DO UPDATE SET max_offset = excluded.max_offset, "
                          "max_lamport = max(max_lamport, excluded.max_lamport)"));
  upsert_.emplace(std::move(upsert));
  if (sync_wal_) {
    // The WAL exists from the first open in WAL mode and keeps its inode while any connection
    // is open (the writer's is, for the store's lifetime). fdatasync works on the inode, so a
    // descriptor of our own syncs what SQLite wrote through its own.
    auto wal = db_path_;
    wal += "-wal";
    wal_fd_.reset(::open(wal.c_str(), O_RDONLY | O_CLOEXEC));
    if (!wal_fd_) return failErrno(errno, "open {} for fdatasync", wal.string());
    // SQLite would sync the directory with the WAL's first sync at FULL: a WAL file created
    // just now must survive power loss before the first acknowledgement relies on it.
    UniqueFd dir(::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsync(dir.get()) != 0) {
      return failErrno(errno, "fsync data dir {}", options_.dir.string());
    }
    if (!options_.sync_file)
      options_.sync_file = [](int fd) { return ::fdatasync(fd) == 0 ? 0 : errno; };
    options_.sync_threads = std::max(1, options_.sync_threads);
  }
  spdlog::info("[store] opened {} source={} next_offset={} lamport={}", db_path_.string(),
               source_id_, next_offset_, lamport_);
  return {};
}

EventStore::~EventStore() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
    std::lock_guard incoming(incoming_mutex_);
    closing_ = true;
  }
  queue_cv_.notify_all();
  checkpoint_cv_.notify_all();
  for (auto& t : writers_) t.join();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void EventStore::checkpointLoop() {
  constexpr std::uint64_t kCheckpointBytes = std::uint64_t{4} * 1024 * 1024;
  std::unique_lock lock(queue_mutex_);
  while (!stopping_) {
    // Checkpoint after 4 MiB of commits, or a second after the first commit since the last
    // checkpoint: a trickle of small publishes does not pay for checkpoint I/O at each fsync.
    checkpoint_cv_.wait(lock, [&] { return stopping_ || uncheckpointed_bytes_ > 0; });
    checkpoint_cv_.wait_for(lock, std::chrono::seconds(1),
                            [&] { return stopping_ || uncheckpointed_bytes_ >= kCheckpointBytes; });
    if (stopping_) break;
    uncheckpointed_bytes_ = 0;
    lock.unlock();
    if (auto s = checkpoint_db_->exec("PRAGMA wal_checkpoint(PASSIVE)"); !s) {
      spdlog::warn("[store] checkpoint: {}", s.error().describe());
    }
    lock.lock();
  }
  lock.unlock();
  (void)checkpoint_db_->exec("PRAGMA wal_checkpoint(PASSIVE)");
}

void EventStore::setCommitListener(CommitListener listener) { listener_ = std::move(listener); }

bool EventStore::enqueue(Pending& pending) {
  {
    std::lock_guard incoming(incoming_mutex_);
    if (closing_) return false;
    incoming_.push_back(std::move(pending));
    incoming_size_.store(incoming_.size());
  }
  // A writer with the turn takes the queue when it hands the turn on, and a writer back from
  // a sync looks at it before it waits: only a sleeping writer while no one has the turn, or
  // one waiting for a fuller group, needs a wake-up. Sequentially consistent with the writers'
  // side (handOn() stores committing_ then loads incoming_size_; a writer counts itself in
  // sleeping_writers_ before it checks incoming_size_): either they see the request or this
  // sees them, so the publisher takes queue_mutex_ only when someone sleeps.
  if (group_waiting_.load()) {
    std::lock_guard lock(queue_mutex_);
    queue_cv_.notify_all();
  } else if (sleeping_writers_.load() > 0 && !committing_.load()) {
    std::lock_guard lock(queue_mutex_);
    queue_cv_.notify_one();
  }
  return true;
}

void EventStore::publish(std::string app, std::vector<NewEvent> events, PublishCallback done) {
  Pending pending{std::move(app), std::move(events), std::move(done)};
  if (!enqueue(pending)) pending.done(fail(ErrorCode::kUnavailable, "event store is closing"));
}

void EventStore::ingest(std::vector<Event> events, IngestCallback done) {
  Pending pending{.remote = std::move(events), .ingested = std::move(done)};
  if (!enqueue(pending)) {
    pending.ingested(fail(ErrorCode::kUnavailable, "event store is closing"));
  }
}

void EventStore::failGroup(std::vector<Pending>& group, const Error& error) {
  for (auto& p : group) {
    if (p.ingested) {
      p.ingested(std::unexpected(error));
    } else {
      p.done(std::unexpected(error));
    }
  }
}

OffsetMap EventStore::offsets() const {
  std::lock_guard lock(offsets_mutex_);
  return offsets_;
}

EventStore::Stats EventStore::stats() const {
  std::lock_guard lock(offsets_mutex_);
  return stats_;
}

void EventStore::writerLoop() {
  std::unique_lock lock(queue_mutex_);
  auto ready = [&] {
    return (!committing_.load() && (stopping_ || incoming_size_.load() > 0)) || hedgeWanted();
  };
  while (true) {
    // Counted before the check, so a publisher either sees this writer or it sees the request
    // (enqueue()).
    sleeping_writers_.fetch_add(1);
    while (!ready()) queue_cv_.wait(lock);
    sleeping_writers_.fetch_sub(1);
    if (!committing_.load() && incoming_size_.load() > 0) {
      if (std::uint64_t seq = commitTurn(lock); seq > 0) syncAndComplete(lock, seq);
    } else if (hedgeWanted()) {
      syncAndComplete(lock, 0);
    } else {
      break;  // stopping: everything queued was committed
    }
  }
  queue_cv_.notify_all();  // the other writers stop too
}

bool EventStore::hedgeWanted() const {
  return sync_wal_ && !sync_failure_ && durable_seq_ < sync_started_seq_ && syncs_for_started_ < 2;
}

std::uint64_t EventStore::commitTurn(std::unique_lock<std::mutex>& lock) {
  using Clock = std::chrono::steady_clock;
  committing_.store(true);
  // Adaptive group commit (StoreOptions::group_wait).
  std::uint64_t waited_us = 0;
  bool waited = false;
  if (last_publishes_ > 1 && options_.group_wait.count() > 0 && !stopping_) {
    const std::size_t target =
        incoming_size_.load() + std::max<std::size_t>(1, last_publishes_ * 3 / 4);
    const auto limit = options_.group_wait;
    auto start = Clock::now();
    group_waiting_.store(true);
    queue_cv_.wait_until(lock, start + limit,
                         [&] { return stopping_ || incoming_size_.load() >= target; });
    group_waiting_.store(false);
    waited = true;
    waited_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  }
  // Swapped out under incoming_mutex_, which publishers hold only to append; the empty
  // vector left behind keeps the capacity of the last group.
  std::vector<Pending> group;
  group.reserve(last_group_size_);
  {
    std::lock_guard incoming(incoming_mutex_);
    group.swap(incoming_);
    incoming_size_.store(0);
  }
  last_group_size_ = group.size();
  // Hands the turn on (lock held): the next writer may commit what queued meanwhile. Stores
  // committing_ before it loads incoming_size_ (see enqueue()).
  auto handOn = [this] {
    committing_.store(false);
    if (incoming_size_.load() > 0 || stopping_) queue_cv_.notify_one();
  };
  if (sync_failure_) {
    Error failure = *sync_failure_;
    handOn();
    lock.unlock();
    failGroup(group, failure);
    lock.lock();
    return 0;
  }
  lock.unlock();
  // The turn's state (writer_db_, offsets, clocks) is this thread's until handOn().
  last_publishes_ = 0;
  for (const auto& p : group) last_publishes_ += p.ingested ? 0 : 1;
  const auto commit_start = Clock::now();
  Committed committed;
  auto result = writeGroup(group, committed.receipts);
  last_commit_ = Clock::now() - commit_start;
  if (!result) {
    lock.lock();
    handOn();
    lock.unlock();
    spdlog::error("[store] group commit of {} requests failed: {}", group.size(),
                  result.error().describe());
    failGroup(group, result.error());
    lock.lock();
    return 0;
  }
  for (const auto& [source, offset] : result->offsets) committed_offsets_[source] = offset;
  std::size_t bytes = 0;
  for (const auto& e : result->events) bytes += e->payload.size() + 64;
  committed.group = std::move(group);
  committed.result = std::move(*result);
  committed.commit_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(last_commit_).count());
  committed.waited = waited;
  committed.group_wait_us = waited_us;
  lock.lock();
  // Numbered in the turn, so sequence numbers follow commit order.
  const std::uint64_t seq = committed.seq = ++committed_seq_;
  unsynced_.push_back(std::move(committed));
  uncheckpointed_bytes_ += bytes;
  handOn();
  checkpoint_cv_.notify_one();
  return seq;
}

void EventStore::syncAndComplete(std::unique_lock<std::mutex>& lock, std::uint64_t seq) {
  using Clock = std::chrono::steady_clock;
  std::uint64_t target = seq;
  int err = 0;
  if (sync_wal_) {
    if (seq == 0) {
      target = sync_started_seq_;  // a hedge
      ++syncs_for_started_;
    } else if (sync_started_seq_ >= seq) {
      return;  // a sync that began later covers it
    } else {
      // Covers every group committed so far (their WAL writes have returned).
      target = sync_started_seq_ = committed_seq_;
      syncs_for_started_ = 1;
      queue_cv_.notify_one();  // an idle writer may hedge it
    }
    lock.unlock();
    const auto start = Clock::now();
    err = options_.sync_file(wal_fd_.get());
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    {
      std::lock_guard stats(offsets_mutex_);
      stats_.syncs++;
      stats_.sync_us += static_cast<std::uint64_t>(took.count());
    }
  } else {
    lock.unlock();
  }
  {
    std::lock_guard complete(complete_mutex_);
    std::vector<Committed> ready;
    std::optional<Error> failure;
    lock.lock();
    if (sync_wal_ && target == sync_started_seq_) --syncs_for_started_;
    if (err != 0 && !sync_failure_) {
      sync_failure_ = Error(ErrorCode::kUnavailable,
                            fmt::format("event store: fdatasync of the WAL failed ({}); the "
                                        "store refuses writes until the service restarts",
                                        std::strerror(err)));
      spdlog::critical("[store] {}", sync_failure_->message());
    }
    if (!sync_failure_) durable_seq_ = std::max(durable_seq_, target);
    // After a failure nothing still unsynced may be acknowledged: a later sync succeeding
    // says nothing of the pages the failed one dropped.
    while (!unsynced_.empty() && (sync_failure_ || unsynced_.front().seq <= durable_seq_)) {
      ready.push_back(std::move(unsynced_.front()));
      unsynced_.pop_front();
    }
    failure = sync_failure_;
    lock.unlock();
    for (auto& c : ready) {
      if (failure) {
        failGroup(c.group, *failure);
      } else {
        completeGroup(c);
      }
    }
  }
  lock.lock();
}

void EventStore::completeGroup(Committed& c) {
  const auto& events = c.result.events;
  {
    std::lock_guard lock(offsets_mutex_);
    for (const auto& [source, offset] : c.result.offsets) offsets_[source] = offset;
    stats_.commits++;
    if (c.waited) {
      stats_.group_waits++;
      stats_.group_wait_us += c.group_wait_us;
    }
    stats_.commit_us += c.commit_us;
    std::size_t ingested = 0;
    for (std::size_t i = 0; i < c.group.size(); ++i) {
      if (c.group[i].ingested && c.result.ingests[i]) ingested += c.group[i].remote.size();
    }
    stats_.ingested += ingested;
    stats_.events += events.size() - ingested;
  }
  if (listener_ && !events.empty()) listener_(events);
  for (std::size_t i = 0; i < c.group.size(); ++i) {
    if (c.group[i].ingested) {
      c.group[i].ingested(std::move(c.result.ingests[i]));
    } else {
      c.group[i].done(std::move(c.receipts[i]));
    }
  }
}

Result<EventStore::GroupResult> EventStore::writeGroup(
    std::vector<Pending>& group, std::vector<std::vector<PublishReceipt>>& receipts) {
  const std::int64_t first_offset = next_offset_;
  const std::int64_t first_lamport = lamport_;
  auto restore = [&](Error e) {
    next_offset_ = first_offset;
    lamport_ = first_lamport;
    return std::unexpected(std::move(e));
  };
  std::size_t count = 0;
  for (const auto& p : group) count += p.events.size() + p.remote.size();
  GroupResult result;
  auto& events = result.events;
  events.reserve(count);
  receipts.assign(group.size(), {});
  result.ingests.assign(group.size(), Status{});
  if (count == 0) return result;

  auto txn = writer_db_->begin();
  if (!txn) return restore(txn.error().wrap("begin"));
  auto& insert = insert_;
  auto store = [&](const Event& e) {
    auto status = insert->bindAll(e.source, e.offset, e.lamport, e.timestamp, e.semantics, e.name,
                                  e.payload, e.app);
    if (status) status = insert->run();
    // Always reset: the statement is reused by the next group, also after a failure.
    if (auto reset = insert->reset(); status && !reset) status = reset;
    return status;
  };
  // The next offset of every other source this group ingests into (this node's own is
  // next_offset_), and the highest lamport the group stores per source.
  OffsetMap next;
  OffsetMap top_lamport;
  auto nextOf = [&](const std::string& source) -> std::int64_t& {
    if (source == source_id_) return next_offset_;
    auto it = next.find(source);
    if (it == next.end()) {
      auto stored = committed_offsets_.find(source);
      it = next.emplace(source, stored == committed_offsets_.end() ? 0 : stored->second + 1).first;
    }
    return it->second;
  };
  const std::int64_t now = options_.clock();
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (group[i].ingested) {
      auto& remote = group[i].remote;
      if (remote.empty()) continue;
      std::int64_t& expected = nextOf(remote.front().source);
      for (std::size_t k = 0; k < remote.size(); ++k) {
        if (remote[k].source != remote.front().source ||
            remote[k].offset != expected + static_cast<std::int64_t>(k)) {
          result.ingests[i] =
              fail(ErrorCode::kFailedPrecondition, "ingest of {} offset {}: expected {} offset {}",
                   remote[k].source, remote[k].offset, remote.front().source,
                   expected + static_cast<std::int64_t>(k));
          break;
        }
      }
      if (!result.ingests[i]) continue;
      std::int64_t& top = top_lamport[remote.front().source];
      for (auto& e : remote) {
        if (auto status = store(e); !status) return restore(status.error().wrap("ingest event"));
        lamport_ = std::max(lamport_, e.lamport);
        top = std::max(top, e.lamport);
        events.push_back(std::make_shared<const Event>(std::move(e)));
      }
      expected += static_cast<std::int64_t>(remote.size());
      continue;
    }
    receipts[i].reserve(group[i].events.size());
    for (auto& in : group[i].events) {
      auto e = std::make_shared<Event>();
      e->semantics = std::move(in.semantics);
      e->name = std::move(in.name);
      e->source = source_id_;
      e->timestamp = now;
      e->lamport = ++lamport_;
      e->offset = next_offset_++;
      e->payload = std::move(in.payload);
      e->app = group[i].app;
      if (auto status = store(*e); !status) return restore(status.error().wrap("insert event"));
      receipts[i].push_back({e->source, e->offset, e->lamport, e->timestamp});
      events.push_back(std::move(e));
    }
  }
  if (events.empty()) return result;  // only refused ingests: nothing to commit
  if (next_offset_ != first_offset) {
    next.emplace(source_id_, next_offset_);
    top_lamport[source_id_] = lamport_;  // local events take ++lamport_: the last is the top
  }
  auto& upsert = upsert_;
  for (const auto& [source, next_of_source] : next) {
    auto status = upsert->bindAll(source, next_of_source - 1, top_lamport[source]);
    if (status) status = upsert->run();
    if (auto reset = upsert->reset(); status && !reset) status = reset;
    if (!status) return restore(status.error().wrap("update sources"));
    result.offsets[source] = next_of_source - 1;
  }
  if (auto commit = txn->commit(); !commit) return restore(commit.error().wrap("commit"));
  return result;
}

Result<std::unique_ptr<sqlite::Database>> EventStore::acquireReader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!readers_.empty()) {
      auto db = std::move(readers_.back());
      readers_.pop_back();
      return db;
    }
  }
  auto db = sqlite::Database::open(
      db_path_, kMigrations,
      {.synchronous = options_.synchronous, .cache_kib = options_.cache_kib});
  if (!db) return std::unexpected(db.error().wrap("open event store reader"));
  return std::make_unique<sqlite::Database>(std::move(*db));
}

void EventStore::releaseReader(std::unique_ptr<sqlite::Database> db) {
  std::lock_guard lock(readers_mutex_);
  if (readers_.size() < 8) readers_.push_back(std::move(db));
}

Result<Page> EventStore::readPage(const QuerySpec& spec, Cursor& cursor, PageLimit limit) {
  Page page;
  if (limit.events == 0) return page;
  FLEETLET_ASSIGN_OR_RETURN(auto db, acquireReader());
  if (cursor.pending.empty() && !cursor.listed_all) {
    FLEETLET_RETURN_IF_ERROR(listKeys(*db, spec, cursor, limit.events));
  }
  {
    auto stmt = db->prepare(
        fmt::format("SELECT {} FROM events WHERE source = ? AND event_offset = ?", kColumns));
    if (!stmt) return std::unexpected(stmt.error().wrap("query"));
    std::size_t bytes = 0;
    while (!cursor.pending.empty() && page.events.size() < limit.events && bytes < limit.bytes) {
      const Cursor::Key& key = cursor.pending.front();
      FLEETLET_RETURN_IF_ERROR(stmt->bindAll(key.source, key.offset));
      auto row = stmt->step();
      if (!row) return std::unexpected(row.error().wrap("query"));
      // Events are never deleted: a listed key is there.
      if (*row) {
        page.events.push_back(readEvent(*stmt));
        bytes += eventBytes(page.events.back());
      }
      FLEETLET_RETURN_IF_ERROR(stmt->reset());
      cursor.pending.pop_front();
    }
  }
  releaseReader(std::move(db));
  page.more = !cursor.pending.empty() || !cursor.listed_all;
  return page;
}

Status EventStore::listKeys(sqlite::Database& db, const QuerySpec& spec, Cursor& cursor,
                            std::size_t limit) {
  std::vector<BindValue> values;
  std::string bounds;
  bool all = false;
  for (const auto& f : spec.filters) all = all || f.matchesAll();
  // With a semantics/name filter, its (…, lamport, source) index should drive the scan; the
  // unary + keeps the planner (which has no statistics) from picking the primary key for the
  // offset bounds and filtering every event of the range.
  const char* bound = all ? "(source = ? AND event_offset > ? AND event_offset <= ?)"
                          : "(+source = ? AND +event_offset > ? AND +event_offset <= ?)";
  for (const auto& [source, upper] : spec.upper) {
    auto lower_it = spec.lower.find(source);
    std::int64_t lower = lower_it == spec.lower.end() ? -1 : lower_it->second;
    if (lower >= upper) continue;
    if (!bounds.empty()) bounds += " OR ";
    bounds += bound;
    values.emplace_back(source);
    values.emplace_back(lower);
    values.emplace_back(upper);
  }
  if (bounds.empty() || spec.filters.empty()) {
    cursor.listed_all = true;
    return {};
  }

  std::string filters;
  if (!all) {
    for (const auto& f : spec.filters) {
      if (!filters.empty()) filters += " OR ";
      std::string clause;
      auto add = [&](std::string_view column, const std::string& value) {
        if (!clause.empty()) clause += " AND ";
        clause += fmt::format("{} = ?", column);
        values.emplace_back(value);
      };
      if (f.semantics) add("semantics", *f.semantics);
      if (f.name) add("name", *f.name);
      if (f.source) add("source", *f.source);
      filters += "(" + clause + ")";
    }
  }

  std::string keyset;
  std::string order;
  switch (spec.order) {
    case Order::kSourceOrdered:
      keyset = "(source, event_offset) > (?, ?)";
      order = "source, event_offset";
      if (cursor.started) {
        values.emplace_back(cursor.source);
        values.emplace_back(cursor.offset);
      }
      break;
    case Order::kLamport:
      keyset = "(lamport, source) > (?, ?)";
      order = "lamport, source";
      if (cursor.started) {
        values.emplace_back(cursor.lamport);
        values.emplace_back(cursor.source);
      }
      break;
    case Order::kLamportReverse:
      keyset = "(lamport, source) < (?, ?)";
      order = "lamport DESC, source DESC";
      if (cursor.started) {
        values.emplace_back(cursor.lamport);
        values.emplace_back(cursor.source);
      }
      break;
  }
  std::string sql =
      fmt::format("SELECT source, event_offset, lamport FROM events WHERE ({})", bounds);
  if (!filters.empty()) sql += fmt::format(" AND ({})", filters);
  if (cursor.started) sql += " AND " + keyset;
  sql += fmt::format(" ORDER BY {} LIMIT {}", order, limit);

  auto stmt = db.prepare(sql);
  if (!stmt) return std::unexpected(stmt.error().wrap("query"));
  FLEETLET_RETURN_IF_ERROR(bindValues(*stmt, values));
  std::size_t listed = 0;
  while (true) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error().wrap("query"));
    if (!*row) break;
    cursor.started = true;
    cursor.source = stmt->columnText(0);
    cursor.offset = stmt->columnInt64(1);
    cursor.lamport = stmt->columnInt64(2);
    cursor.pending.push_back({cursor.source, cursor.offset});
    ++listed;
  }
  cursor.listed_all = listed < limit;
  return {};
}

}  // namespace fleetlet::streams
