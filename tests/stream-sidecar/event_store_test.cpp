#include "store/event_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>

#include "sqlite/database.h"
#include "support/temp_dir.h"

namespace fleetlet::streams {
namespace {

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("streams-store");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
  }
  std::unique_ptr<EventStore> open(std::string source = "s1",
                                   std::chrono::microseconds group_wait = {}) {
    auto store = EventStore::open({.dir = dir_->path(),
                                   .source_id = std::move(source),
                                   .clock = [this] { return ++now_; },
                                   .group_wait = group_wait});
    EXPECT_TRUE(store) << store.error().message();
    return std::move(*store);
  }
  // Opens with a WAL sync function of the test's (durable acknowledgement, the default mode).
  std::unique_ptr<EventStore> openSyncing(std::function<int(int)> sync_file, int sync_threads) {
    auto store = EventStore::open({.dir = dir_->path(),
                                   .source_id = "s1",
                                   .clock = [this] { return ++now_; },
                                   .sync_threads = sync_threads,
                                   .sync_file = std::move(sync_file)});
    EXPECT_TRUE(store) << store.error().message();
    return std::move(*store);
  }
  static int realSync(int fd) { return ::fdatasync(fd) == 0 ? 0 : errno; }
  static Result<std::vector<PublishReceipt>> publish(EventStore& store, int count,
                                                     std::string semantics = "sem") {
    std::vector<NewEvent> events;
    for (int i = 0; i < count; ++i) events.push_back({semantics, "n", std::to_string(i)});
    return publishEvents(store, std::move(events));
  }
  static Result<std::vector<PublishReceipt>> publishEvents(EventStore& store,
                                                           std::vector<NewEvent> events) {
    std::promise<Result<std::vector<PublishReceipt>>> done;
    store.publish("", std::move(events), [&](auto r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  std::optional<fleetlet::testing::TempDir> dir_;
  std::int64_t now_ = 1000;
};

TEST_F(EventStoreTest, ConcurrentPublishersShareCommitsAndGetGaplessOffsets) {
  auto store = open();
  constexpr int kRequests = 200;
  std::vector<std::promise<Result<std::vector<PublishReceipt>>>> done(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    store->publish("", {{"sem", "n", "1"}, {"sem", "n", "2"}},
                   [&done, i](auto r) { done[i].set_value(std::move(r)); });
  }
  std::vector<bool> seen(kRequests * 2, false);
  for (auto& d : done) {
    auto r = d.get_future().get();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), 2u);
    EXPECT_EQ((*r)[1].offset, (*r)[0].offset + 1);  // a request's events stay together
    for (const auto& receipt : *r) seen.at(static_cast<std::size_t>(receipt.offset)) = true;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kRequests * 2);
  EXPECT_EQ(store->offsets(), (OffsetMap{{"s1", kRequests * 2 - 1}}));
  EXPECT_LT(store->stats().commits, static_cast<std::uint64_t>(kRequests));  // grouped
}

// The adaptive group wait (off by default) changes when a group starts, never what it stores.
TEST_F(EventStoreTest, GroupWaitKeepsClosedLoopPublishersGaplessInFewerCommits) {
  auto store = open("s1", std::chrono::milliseconds(5));
  constexpr int kPublishers = 4;
  constexpr int kEach = 25;
  std::vector<std::future<std::vector<std::int64_t>>> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.push_back(std::async(std::launch::async, [&store] {
      std::vector<std::int64_t> offsets;
      for (int i = 0; i < kEach; ++i) {
        auto r = publish(*store, 1);
        if (!r) return offsets;
        offsets.push_back(r->at(0).offset);
      }
      return offsets;
    }));
  }
  std::vector<std::int64_t> all;
  for (auto& p : publishers) {
    auto offsets = p.get();
    EXPECT_EQ(offsets.size(), static_cast<std::size_t>(kEach));
    EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));
    all.insert(all.end(), offsets.begin(), offsets.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kPublishers * kEach));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<std::int64_t>(i));
  auto stats = store->stats();
  EXPECT_GT(stats.group_waits, 0u);  // requests were queued while others were answered
  EXPECT_LT(stats.commits, static_cast<std::uint64_t>(kPublishers * kEach));
}

TEST_F(EventStoreTest, ReopenKeepsOffsetsAndLamport) {
  std::int64_t lamport = 0;
  {
    auto store = open();
    auto r = publish(*store, 3);
    ASSERT_TRUE(r);
    lamport = r->back().lamport;
  }
  auto store = open();
  auto r = publish(*store, 1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at(0).offset, 3);
  EXPECT_GT(r->at(0).lamport, lamport);
}

TEST_F(EventStoreTest, PagesWalkEachOrderCompletely) {
  auto store = open();
  ASSERT_TRUE(publish(*store, 25));
  for (Order order : {Order::kLamport, Order::kLamportReverse, Order::kSourceOrdered}) {
    QuerySpec spec{{Filter{}}, order, {{"s1", 2}}, {{"s1", 20}}};
    Cursor cursor;
    std::vector<std::int64_t> offsets;
    while (true) {
      auto page = store->readPage(spec, cursor, {.events = 4});
      ASSERT_TRUE(page) << page.error().message();
      EXPECT_LE(page->events.size(), 4u);
      for (const auto& e : page->events) offsets.push_back(e.offset);
      if (!page->more) break;
    }
    ASSERT_EQ(offsets.size(), 18u);
    if (order == Order::kLamportReverse) std::reverse(offsets.begin(), offsets.end());
    for (std::size_t i = 0; i < offsets.size(); ++i) EXPECT_EQ(offsets[i], 3 + std::int64_t(i));
  }
}

TEST_F(EventStoreTest, PagesStopAtTheByteBudgetAndEveryEventComesOnce) {
  auto store = open();
  // Payloads of 10, 100 KiB, 300 KiB, 10, 10, 10 and 1 MiB bytes (JSON strings).
  std::vector<std::size_t> sizes = {10, 100 << 10, 300 << 10, 10, 10, 10, 1 << 20};
  std::vector<NewEvent> events;
  for (std::size_t size : sizes) events.push_back({"sem", "n", std::string(size, '7')});
  ASSERT_TRUE(publishEvents(*store, std::move(events)));
  QuerySpec spec{{Filter{}}, Order::kSourceOrdered, {}, {{"s1", 6}}};
  Cursor cursor;
  constexpr std::size_t kBudget = 256 << 10;
  std::vector<std::vector<std::int64_t>> pages;
  while (true) {
    auto page = store->readPage(spec, cursor, {.events = 2000, .bytes = kBudget});
    ASSERT_TRUE(page) << page.error().message();
    std::size_t bytes = 0;
    std::size_t largest = 0;
    std::vector<std::int64_t> offsets;
    for (const auto& e : page->events) {
      offsets.push_back(e.offset);
      bytes += eventBytes(e);
      largest = std::max(largest, eventBytes(e));
    }
    // Within the budget plus one event.
    EXPECT_LE(bytes, kBudget + largest);
    pages.push_back(offsets);
    if (!page->more) break;
  }
  // 10+100K stay under 256K, 300K takes the page over; the three small ones and the 1 MiB
  // one (alone larger than the budget) follow; every event once, in order.
  std::vector<std::vector<std::int64_t>> expected = {{0, 1, 2}, {3, 4, 5, 6}};
  EXPECT_EQ(pages, expected);
}

TEST_F(EventStoreTest, CommitListenerSeesEventsInOffsetOrder) {
  auto store = open();
  std::vector<std::int64_t> seen;
  store->setCommitListener([&](const auto& events) {
    for (const auto& e : events) seen.push_back(e->offset);
  });
  ASSERT_TRUE(publish(*store, 3));
  ASSERT_TRUE(publish(*store, 2));
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

// Durable acknowledgement: a publish is answered, visible in offsets() and delivered to the
// commit listener only once an fdatasync of the WAL that began after its COMMIT returned.
TEST_F(EventStoreTest, NothingIsAcknowledgedOrVisibleBeforeTheWalSyncReturns) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  int syncing = 0;
  auto store = openSyncing(
      [&](int fd) {
        std::unique_lock lock(mutex);
        ++syncing;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        return realSync(fd);
      },
      2);
  std::vector<std::int64_t> delivered;
  store->setCommitListener([&](const auto& events) {
    for (const auto& e : events) delivered.push_back(e->offset);
  });
  std::promise<Result<std::vector<PublishReceipt>>> done;
  store->publish("", {{"sem", "n", "1"}}, [&](auto r) { done.set_value(std::move(r)); });
  auto answer = done.get_future();
  bool sync_started = false;
  {
    std::unique_lock lock(mutex);
    sync_started = cv.wait_for(lock, std::chrono::seconds(10), [&] { return syncing > 0; });
  }
  EXPECT_TRUE(sync_started);
  // Committed to SQLite, not yet synced: not answered, not in offsets(), not delivered.
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_TRUE(store->offsets().empty());
  EXPECT_TRUE(delivered.empty());
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  auto r = answer.get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at(0).offset, 0);
  EXPECT_EQ(store->offsets(), (OffsetMap{{"s1", 0}}));
  EXPECT_EQ(delivered, (std::vector<std::int64_t>{0}));
  EXPECT_GE(store->stats().syncs, 1u);
}

// fdatasync failing (EIO) fails the group it covers, and the store refuses every later write:
// after a failed fdatasync the kernel may have dropped the pages, so no later sync vouches for
// them. Reads go on; a restart writes again.
TEST_F(EventStoreTest, FailedWalSyncFailsItsGroupAndRefusesEveryLaterWrite) {
  std::atomic<int> calls{0};
  // One writer: no second (hedging) sync, so the second sync is the second publish's.
  auto store = openSyncing([&](int fd) { return ++calls == 2 ? EIO : realSync(fd); }, 1);
  ASSERT_TRUE(publish(*store, 1));
  auto failed = publish(*store, 1);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(failed.error().message().find("fdatasync of the WAL failed"), std::string::npos)
      << failed.error().message();
  auto later = publish(*store, 1);
  ASSERT_FALSE(later);
  EXPECT_NE(later.error().message().find("refuses writes"), std::string::npos);
  std::promise<Status> ingested;
  store->ingest({Event{.semantics = "s", .name = "n", .source = "r", .payload = "1"}},
                [&](Status s) { ingested.set_value(std::move(s)); });
  EXPECT_FALSE(ingested.get_future().get());
  EXPECT_EQ(store->offsets(), (OffsetMap{{"s1", 0}}));
  QuerySpec spec{{Filter{}}, Order::kSourceOrdered, {}, store->offsets()};
  Cursor cursor;
  auto page = store->readPage(spec, cursor, {});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->events.size(), 1u);
  store.reset();
  store = open();
  EXPECT_TRUE(publish(*store, 1));
}

// fdatasyncs that overlap and return out of order (several writers, hedging syncs) still
// complete every group once, in commit order, and each sync may complete groups other writers
// committed.
TEST_F(EventStoreTest, OverlappingSyncsCompleteEveryGroupOnceInCommitOrder) {
  std::mutex rng_mutex;
  std::mt19937 rng(7);
  auto store = openSyncing(
      [&](int fd) {
        int us = 0;
        {
          std::lock_guard lock(rng_mutex);
          us = std::uniform_int_distribution<int>(0, 3000)(rng);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(us));
        return realSync(fd);
      },
      4);
  std::vector<std::int64_t> delivered;
  store->setCommitListener([&](const auto& events) {
    for (const auto& e : events) delivered.push_back(e->offset);
  });
  constexpr int kPublishers = 8;
  constexpr int kEach = 40;
  std::vector<std::future<bool>> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.push_back(std::async(std::launch::async, [&store] {
      for (int i = 0; i < kEach; ++i) {
        auto r = publish(*store, 1);
        if (!r) return false;
      }
      return true;
    }));
  }
  for (auto& p : publishers) EXPECT_TRUE(p.get());
  std::vector<std::int64_t> expected(kPublishers * kEach);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<std::int64_t>(i);
  EXPECT_EQ(delivered, expected);
  auto stats = store->stats();
  EXPECT_EQ(stats.events, expected.size());
  EXPECT_LE(stats.syncs, 2 * stats.commits);  // each commit's sync, at most one hedge each
  EXPECT_EQ(store->offsets(), (OffsetMap{{"s1", kPublishers * kEach - 1}}));
}

}  // namespace
}  // namespace fleetlet::streams

namespace fleetlet::streams {
namespace {

Event remoteEvent(std::string source, std::int64_t offset, std::int64_t lamport) {
  return Event{.semantics = "sem",
               .name = "n",
               .source = std::move(source),
               .timestamp = 77,
               .lamport = lamport,
               .offset = offset,
               .payload = "{\"r\":" + std::to_string(offset) + "}"};
}

Status ingest(EventStore& store, std::vector<Event> events) {
  std::promise<Status> done;
  store.ingest(std::move(events), [&](Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

class EventStoreIngestTest : public EventStoreTest {};

// A store written by the first schema (with events_by_lamport, sources without max_lamport):
// the migration keeps every event, the clock starts past the highest lamport of any source,
// and queries in every order and filter return what the rows say.
TEST_F(EventStoreTest, StoreOfTheFirstSchemaMigratesAndAnswersQueriesTheSame) {
  if (!dir_.has_value()) GTEST_FAIL() << "no temp dir";
  const std::filesystem::path db_path = dir_->path() / "events.db";
  std::vector<Event> rows;
  rows.reserve(40);
  for (std::int64_t i = 0; i < 30; ++i) {  // local: lamport 1..30
    rows.push_back({.semantics = i % 3 == 0 ? "a" : "b",
                    .name = i % 2 == 0 ? "x" : "y",
                    .source = "s1",
                    .timestamp = 5,
                    .lamport = i + 1,
                    .offset = i,
                    .payload = std::to_string(i)});
  }
  for (std::int64_t i = 0; i < 10; ++i) {  // remote: interleaved, up to lamport 900
    rows.push_back({.semantics = "a",
                    .name = "x",
                    .source = "r",
                    .timestamp = 6,
                    .lamport = i < 9 ? 3 * i + 2 : 900,
                    .offset = i,
                    .payload = "{\"r\":" + std::to_string(i) + "}",
                    .app = "app1"});
  }
  {
    auto db = sqlite::Database::open(db_path, EventStore::migrations().first(1));
    ASSERT_TRUE(db) << db.error().message();
    ASSERT_TRUE(
        db->exec("INSERT INTO meta VALUES('source', 's1'); "
                 "INSERT INTO sources VALUES('s1', 29), ('r', 9)"));
    auto insert = db->prepare("INSERT INTO events VALUES(?,?,?,?,?,?,?,?)");
    ASSERT_TRUE(insert);
    for (const auto& e : rows) {
      ASSERT_TRUE(insert->bindAll(e.source, e.offset, e.lamport, e.timestamp, e.semantics, e.name,
                                  e.payload, e.app));
      ASSERT_TRUE(insert->run());
      ASSERT_TRUE(insert->reset());
    }
  }
  auto store = open("");
  EXPECT_EQ(store->sourceId(), "s1");
  EXPECT_EQ(store->offsets(), (OffsetMap{{"r", 9}, {"s1", 29}}));

  const std::vector<std::vector<Filter>> filter_sets = {
      {Filter{}},
      {Filter{.semantics = "a"}},
      {Filter{.semantics = "a", .name = "x"}},
      {Filter{.name = "y"}},
      {Filter{.source = "r"}},
      {Filter{.semantics = "b"}, Filter{.semantics = "a", .name = "x"}}};
  for (const auto& filters : filter_sets) {
    for (Order order : {Order::kLamport, Order::kLamportReverse, Order::kSourceOrdered}) {
      QuerySpec spec{filters, order, {{"s1", 3}}, {{"s1", 27}, {"r", 9}}};
      std::vector<Event> expected;
      for (const auto& e : rows) {
        bool in_range = e.source == "s1" ? e.offset > 3 && e.offset <= 27 : e.offset <= 9;
        if (in_range && matchesAny(filters, e)) expected.push_back(e);
      }
      std::sort(expected.begin(), expected.end(), [&](const Event& l, const Event& r) {
        if (order == Order::kSourceOrdered) {
          return std::tie(l.source, l.offset) < std::tie(r.source, r.offset);
        }
        if (order == Order::kLamport) {
          return std::tie(l.lamport, l.source) < std::tie(r.lamport, r.source);
        }
        return std::tie(r.lamport, r.source) < std::tie(l.lamport, l.source);
      });
      Cursor cursor;
      std::vector<Event> got;
      while (true) {
        auto page = store->readPage(spec, cursor, {.events = 4});
        ASSERT_TRUE(page) << page.error().message();
        for (auto& e : page->events) got.push_back(std::move(e));
        if (!page->more) break;
      }
      ASSERT_EQ(got.size(), expected.size()) << "order " << static_cast<int>(order);
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].source, expected[i].source);
        EXPECT_EQ(got[i].offset, expected[i].offset);
        EXPECT_EQ(got[i].lamport, expected[i].lamport);
        EXPECT_EQ(got[i].payload, expected[i].payload);
        EXPECT_EQ(got[i].app, expected[i].app);
      }
    }
  }
  // The clock continues past every source's highest lamport (the remote's 900), offsets past
  // the local 29; and so after a reopen of the migrated store.
  auto next = publish(*store, 1);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->at(0).offset, 30);
  EXPECT_EQ(next->at(0).lamport, 901);
  store.reset();
  store = open("");
  auto after = publish(*store, 1);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->at(0).lamport, 902);
  store.reset();
  // The migrated schema (raw SQLite: Database::open refuses a version it has no migrations for).
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close_v2);
  auto count = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db.get(), sql, -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    std::int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(count("SELECT count(*) FROM sqlite_master WHERE name = 'events_by_lamport'"), 0);
  EXPECT_EQ(count("SELECT max_lamport FROM sources WHERE source = 'r'"), 900);
  EXPECT_EQ(count("SELECT max_lamport FROM sources WHERE source = 's1'"), 902);
}

TEST_F(EventStoreIngestTest, RemoteEventsKeepTheirIdentityAndRaiseTheLamportClock) {
  auto store = open();
  ASSERT_TRUE(publish(*store, 1));
  std::vector<std::shared_ptr<const Event>> seen;
  store->setCommitListener(
      [&](const auto& events) { seen.insert(seen.end(), events.begin(), events.end()); });
  ASSERT_TRUE(ingest(*store, {remoteEvent("r", 0, 40), remoteEvent("r", 1, 41)}));
  EXPECT_EQ(store->offsets(), (OffsetMap{{"r", 1}, {"s1", 0}}));
  ASSERT_EQ(seen.size(), 2u);  // delivered to subscribers like local events
  auto local = publish(*store, 1);
  ASSERT_TRUE(local);
  EXPECT_EQ((*local)[0].offset, 1);
  EXPECT_GT((*local)[0].lamport, 41);  // causal: after everything seen
  QuerySpec spec{{Filter{.source = "r"}}, Order::kSourceOrdered, {}, store->offsets()};
  Cursor cursor;
  auto page = store->readPage(spec, cursor, {});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->events[1].lamport, 41);
  EXPECT_EQ(page->events[1].timestamp, 77);
  EXPECT_EQ(page->events[1].payload, "{\"r\":1}");
  EXPECT_EQ(store->stats().ingested, 2u);
  EXPECT_EQ(store->stats().events, 2u);
  // The clock and the remote offsets survive a reopen.
  store.reset();
  store = open();
  EXPECT_EQ(store->offsets(), (OffsetMap{{"r", 1}, {"s1", 1}}));
  auto after = publish(*store, 1);
  ASSERT_TRUE(after);
  EXPECT_GT((*after)[0].lamport, (*local)[0].lamport);
}

TEST_F(EventStoreIngestTest, OffsetsThatDoNotFollowOnAreRefusedWholeAndOthersStillCommit) {
  auto store = open();
  ASSERT_TRUE(ingest(*store, {remoteEvent("r", 0, 1)}));
  // A gap, a duplicate, a mixed-source request: each refused, nothing of it stored.
  auto gap = ingest(*store, {remoteEvent("r", 2, 2)});
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(ingest(*store, {remoteEvent("r", 0, 1)}));
  EXPECT_FALSE(ingest(*store, {remoteEvent("r", 1, 2), remoteEvent("q", 2, 3)}));
  // A refused request in the same group as good ones does not fail them.
  std::promise<Status> bad;
  std::promise<Status> good;
  std::promise<Result<std::vector<PublishReceipt>>> published;
  store->ingest({remoteEvent("r", 5, 9)}, [&](Status s) { bad.set_value(std::move(s)); });
  store->ingest({remoteEvent("r", 1, 9)}, [&](Status s) { good.set_value(std::move(s)); });
  store->publish("", {{"sem", "n", "1"}}, [&](auto r) { published.set_value(std::move(r)); });
  EXPECT_FALSE(bad.get_future().get());
  EXPECT_TRUE(good.get_future().get());
  EXPECT_TRUE(published.get_future().get());
  EXPECT_EQ(store->offsets(), (OffsetMap{{"r", 1}, {"s1", 0}}));
}

TEST_F(EventStoreIngestTest, OwnSourceRestoredFromTheHubContinuesItsOffsets) {
  auto store = open("s1");
  ASSERT_TRUE(ingest(*store, {remoteEvent("s1", 0, 5), remoteEvent("s1", 1, 6)}));
  auto next = publish(*store, 1);
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)[0].offset, 2);
  EXPECT_EQ((*next)[0].lamport, 7);
  EXPECT_FALSE(ingest(*store, {remoteEvent("s1", 2, 8)}));  // already taken locally
}

}  // namespace
}  // namespace fleetlet::streams
