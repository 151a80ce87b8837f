#pragma once
// StatusOutbox: status reports waiting for the cloud, in SQLite (<data dir>/status.db, WAL,
// synchronous=FULL), so that nothing unacknowledged is lost across kill -9 and nothing
// acknowledged is sent again (docs/cloud.md, "Status reports").
//
// A report is a JSON object with "seq" (1, 2, 3… across restarts, never reused) and whatever
// the reporter put in it; "events" (a list) and "eventsDropped" are the outbox's business:
//
//   - addEvent() queues one node event durably the moment it happens (before the next report
//     is made), so that kill -9 loses none;
//   - add() moves every queued event into the report (after the events it carries), and
//     merges into the newest report while that one was never handed out by next() — its
//     state members are replaced, its events appended — so a node that cannot reach the cloud
//     holds at most two reports (the one being retried and the one growing);
//   - when the reports' and queued events' bytes pass `max_bytes`, the oldest queued events
//     (or the growing report's oldest events) are dropped and counted in "eventsDropped";
//   - results (queueResult(), e.g. a log request's end: logrequest/store.h) wait durably like
//     events and go into the next report's member of their kind (an array, appended to on a
//     merge), each into exactly one report; they are small and not counted in the bound;
//   - a report handed out is never changed again (the cloud may have it already), and a report
//     is deleted only by ack().
//
// Thread-safety: all methods lock one mutex.

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "error/error.h"
#include "json/json.h"
#include "sqlite/database.h"

namespace fleetlet::cloud {

struct OutboxReport {
  int64_t seq = 0;
  std::string body;  // the JSON document, "seq" included
};

class StatusOutbox {
 public:
  static constexpr size_t kDefaultMaxBytes = size_t{1024} * 1024;
  // The report members that queueResult() fills.
  static constexpr std::array<std::string_view, 1> kResultMembers = {"logRequests"};

  static Result<std::unique_ptr<StatusOutbox>> open(const std::filesystem::path& file,
                                                    size_t max_bytes = kDefaultMaxBytes);

  // Queues a node event (an object with "seq") for the next report. Durable when it returns.
  // An event whose seq is queued already is ignored.
  Status addEvent(const Json& event);
  // The events queued and not yet in a report, oldest first.
  Result<Json> queuedEvents();
  // Adds `report` (an object; "events" optional) as described above. Returns its seq.
  Result<int64_t> add(Json report);
  // The oldest unacknowledged report, now frozen; nullopt when none waits.
  Result<std::optional<OutboxReport>> next();
  // The cloud has `seq`: it is deleted. Acknowledging an unknown seq is not an error.
  Status ack(int64_t seq);
  // Runs `work` on the outbox's database in one write transaction (committed when it
  // succeeds, rolled back otherwise), under the outbox's lock: how another module keeps its
  // own state in status.db and queues a result with it atomically.
  Status transact(const std::function<Status(sqlite::Database&)>& work);
  // Inside transact(): queues `item` for the next report's `member` (one of kResultMembers;
  // kInvalidArgument otherwise).
  static Status queueResult(sqlite::Database& db, std::string_view member, const Json& item);
  // How many results wait for a report.
  Result<int64_t> queuedResults();
  // Reports waiting and their bytes.
  Result<std::pair<int64_t, int64_t>> pending();

 private:
  StatusOutbox(sqlite::Database db, size_t max_bytes) : db_(std::move(db)), max_bytes_(max_bytes) {}
  // Drops the oldest events of `report` until the outbox fits; `others` is the bytes of the
  // other reports.
  void fit(Json& report, int64_t others) const;
  // mu_ held, in a transaction.
  Result<int64_t> readMeta(std::string_view key);
  Status writeMeta(std::string_view key, int64_t value);
  // The queued events, oldest first; `remove`: they are deleted from the queue.
  Result<Json> takeQueued(bool remove);

  std::mutex mu_;
  sqlite::Database db_;  // guarded by mu_
  size_t max_bytes_;
};

}  // namespace fleetlet::cloud
