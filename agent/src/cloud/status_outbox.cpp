#include "cloud/status_outbox.h"

#include <algorithm>
#include <array>

namespace fleetlet::cloud {
namespace {

constexpr std::array<std::string_view, 3> kMigrations = {R"sql(
CREATE TABLE reports (
  seq INTEGER PRIMARY KEY,
  body TEXT NOT NULL,
  frozen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql",
                                                         R"sql(
CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
)sql",
                                                         R"sql(
CREATE TABLE results (n INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL,
                      body TEXT NOT NULL);
-- Owned by logrequest::LogRequestStore (logrequest/store.h): in this database so that a
-- request's end and its result for the next report are one transaction.
CREATE TABLE log_requests (
  id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  received TEXT NOT NULL,
  updated TEXT NOT NULL
);
)sql"};

bool isResultMember(std::string_view member) {
  return std::ranges::find(StatusOutbox::kResultMembers, member) !=
         StatusOutbox::kResultMembers.end();
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

Result<std::unique_ptr<StatusOutbox>> StatusOutbox::open(const std::filesystem::path& file,
                                                         size_t max_bytes) {
  FLEETLET_ASSIGN_OR_RETURN(auto db, sqlite::Database::open(file, kMigrations));
  return std::unique_ptr<StatusOutbox>(new StatusOutbox(std::move(db), max_bytes));
}

void StatusOutbox::fit(Json& report, int64_t others) const {
  auto& events = report["events"];
  if (!events.is_array()) events = Json::array();
  int64_t size = static_cast<int64_t>(dump(report).size());
  const auto limit = static_cast<int64_t>(max_bytes_);
  size_t drop = 0;
  while (others + size > limit && drop < events.size()) {
    size -= static_cast<int64_t>(dump(events[drop]).size()) + 1;
    ++drop;
  }
  if (drop > 0) {
    events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(drop));
    report["eventsDropped"] =
        report.value("eventsDropped", int64_t{0}) + static_cast<int64_t>(drop);
  }
}

Result<int64_t> StatusOutbox::readMeta(std::string_view key) {
  return sqlite::readKeyInt(db_, "meta", key);
}

Status StatusOutbox::writeMeta(std::string_view key, int64_t value) {
  return sqlite::writeKeyInt(db_, "meta", key, value);
}

Status StatusOutbox::addEvent(const Json& event) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_ASSIGN_OR_RETURN(auto ins,
                            db_.prepare("INSERT OR IGNORE INTO events(seq, body) VALUES(?, ?)"));
  FLEETLET_RETURN_IF_ERROR(ins.bind(1, event.value("seq", int64_t{0})));
  FLEETLET_RETURN_IF_ERROR(ins.bind(2, dump(event)));
  FLEETLET_RETURN_IF_ERROR(ins.run());
  // Over the bound: the oldest queued events go (the newest one stays), counted.
  FLEETLET_ASSIGN_OR_RETURN(
      auto total, db_.prepare("SELECT (SELECT coalesce(sum(length(body)), 0) FROM reports) + "
                              "(SELECT coalesce(sum(length(body)), 0) FROM events)"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, total.step());
  int64_t bytes = row ? total.columnInt64(0) : 0;
  if (bytes > static_cast<int64_t>(max_bytes_)) {
    FLEETLET_ASSIGN_OR_RETURN(auto count, db_.prepare("SELECT count(*) FROM events"));
    FLEETLET_ASSIGN_OR_RETURN(bool counted, count.step());
    FLEETLET_ASSIGN_OR_RETURN(auto oldest,
                              db_.prepare("SELECT seq, length(body) FROM events ORDER BY seq "
                                          "LIMIT ?"));
    FLEETLET_RETURN_IF_ERROR(oldest.bind(1, counted ? count.columnInt64(0) - 1 : 0));
    int64_t dropped = 0;
    int64_t up_to = 0;
    for (;;) {
      FLEETLET_ASSIGN_OR_RETURN(bool more, oldest.step());
      if (!more || bytes <= static_cast<int64_t>(max_bytes_)) break;
      up_to = oldest.columnInt64(0);
      bytes -= oldest.columnInt64(1);
      ++dropped;
    }
    if (dropped > 0) {
      FLEETLET_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM events WHERE seq <= ?"));
      FLEETLET_RETURN_IF_ERROR(del.bind(1, up_to));
      FLEETLET_RETURN_IF_ERROR(del.run());
      FLEETLET_ASSIGN_OR_RETURN(int64_t before, readMeta("dropped"));
      FLEETLET_RETURN_IF_ERROR(writeMeta("dropped", before + dropped));
    }
  }
  return tx.commit();
}

Status StatusOutbox::transact(const std::function<Status(sqlite::Database&)>& work) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_RETURN_IF_ERROR(work(db_));
  return tx.commit();
}

Status StatusOutbox::queueResult(sqlite::Database& db, std::string_view member, const Json& item) {
  if (!isResultMember(member)) {
    return fail(ErrorCode::kInvalidArgument, "status outbox: \"{}\" is no result member", member);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto ins, db.prepare("INSERT INTO results(member, body) VALUES(?, ?)"));
  FLEETLET_RETURN_IF_ERROR(ins.bindAll(member, dump(item)));
  return ins.run();
}

Result<int64_t> StatusOutbox::queuedResults() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto st, db_.prepare("SELECT count(*) FROM results"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  return row ? st.columnInt64(0) : 0;
}

Result<Json> StatusOutbox::queuedEvents() {
  std::lock_guard lock(mu_);
  return takeQueued(false);
}

Result<Json> StatusOutbox::takeQueued(bool remove) {
  FLEETLET_ASSIGN_OR_RETURN(auto st, db_.prepare("SELECT body FROM events ORDER BY seq"));
  Json out = Json::array();
  for (;;) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    auto e = Json::parse(st.columnText(0), nullptr, false);
    if (e.is_object()) out.push_back(std::move(e));
  }
  if (remove) FLEETLET_RETURN_IF_ERROR(db_.exec("DELETE FROM events"));
  return out;
}

Result<int64_t> StatusOutbox::add(Json report) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  if (!report.contains("events")) report["events"] = Json::array();
  if (!report.contains("eventsDropped")) report["eventsDropped"] = 0;
  // The queued events (and those dropped while queued) go into this report.
  FLEETLET_ASSIGN_OR_RETURN(Json queued, takeQueued(true));
  for (auto& e : queued) report["events"].push_back(std::move(e));
  FLEETLET_ASSIGN_OR_RETURN(int64_t dropped_queued, readMeta("dropped"));
  if (dropped_queued > 0) {
    report["eventsDropped"] = report.value("eventsDropped", int64_t{0}) + dropped_queued;
    FLEETLET_RETURN_IF_ERROR(writeMeta("dropped", 0));
  }
  // Queued results go into their members (arrays), oldest first.
  FLEETLET_ASSIGN_OR_RETURN(auto results,
                            db_.prepare("SELECT member, body FROM results ORDER BY n"));
  for (;;) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, results.step());
    if (!row) break;
    std::string member = results.columnText(0);
    auto item = Json::parse(results.columnText(1), nullptr, false);
    if (item.is_discarded()) continue;
    if (!report[member].is_array()) report[member] = Json::array();
    report[member].push_back(std::move(item));
  }
  FLEETLET_RETURN_IF_ERROR(results.reset());
  FLEETLET_RETURN_IF_ERROR(db_.exec("DELETE FROM results"));
  // The newest report, when it is still open, absorbs this one.
  FLEETLET_ASSIGN_OR_RETURN(auto newest,
                            db_.prepare("SELECT seq, body, frozen FROM reports ORDER BY seq DESC "
                                        "LIMIT 1"));
  FLEETLET_ASSIGN_OR_RETURN(bool has_newest, newest.step());
  int64_t seq = 0;
  if (has_newest && newest.columnInt64(2) == 0) {
    seq = newest.columnInt64(0);
    auto old = Json::parse(newest.columnText(1), nullptr, false);
    if (old.is_object()) {
      Json events = old.value("events", Json::array());
      for (auto& e : report["events"]) events.push_back(std::move(e));
      report["events"] = std::move(events);
      report["eventsDropped"] =
          old.value("eventsDropped", int64_t{0}) + report.value("eventsDropped", int64_t{0});
      // Results the open report held stay, before this one's.
      for (const auto& [member, items] : old.items()) {
        if (member == "events" || !items.is_array() || !isResultMember(member)) continue;
        Json merged = items;
        for (auto& item : report.value(member, Json::array())) merged.push_back(std::move(item));
        report[member] = std::move(merged);
      }
    }
  } else {
    FLEETLET_ASSIGN_OR_RETURN(int64_t last, readMeta("seq"));
    seq = last + 1;
    FLEETLET_RETURN_IF_ERROR(writeMeta("seq", seq));
  }
  report["seq"] = seq;
  FLEETLET_ASSIGN_OR_RETURN(
      auto others,
      db_.prepare("SELECT coalesce(sum(length(body)), 0) FROM reports WHERE seq != ?"));
  FLEETLET_RETURN_IF_ERROR(others.bind(1, seq));
  FLEETLET_ASSIGN_OR_RETURN(bool row, others.step());
  fit(report, row ? others.columnInt64(0) : 0);
  FLEETLET_ASSIGN_OR_RETURN(auto put,
                            db_.prepare("INSERT INTO reports(seq, body, frozen) VALUES(?, ?, 0) "
                                        "ON CONFLICT(seq) DO UPDATE SET body = excluded.body"));
  FLEETLET_RETURN_IF_ERROR(put.bind(1, seq));
  FLEETLET_RETURN_IF_ERROR(put.bind(2, dump(report)));
  FLEETLET_RETURN_IF_ERROR(put.run());
  FLEETLET_RETURN_IF_ERROR(tx.commit());
  return seq;
}

Result<std::optional<OutboxReport>> StatusOutbox::next() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_ASSIGN_OR_RETURN(auto oldest,
                            db_.prepare("SELECT seq, body FROM reports ORDER BY seq LIMIT 1"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, oldest.step());
  if (!row) return std::optional<OutboxReport>();
  OutboxReport report{.seq = oldest.columnInt64(0), .body = oldest.columnText(1)};
  FLEETLET_ASSIGN_OR_RETURN(auto freeze,
                            db_.prepare("UPDATE reports SET frozen = 1 WHERE seq = ?"));
  FLEETLET_RETURN_IF_ERROR(freeze.bind(1, report.seq));
  FLEETLET_RETURN_IF_ERROR(freeze.run());
  FLEETLET_RETURN_IF_ERROR(tx.commit());
  return std::optional<OutboxReport>(std::move(report));
}

Status StatusOutbox::ack(int64_t seq) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM reports WHERE seq = ?"));
  FLEETLET_RETURN_IF_ERROR(del.bind(1, seq));
  return del.run();
}

Result<std::pair<int64_t, int64_t>> StatusOutbox::pending() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare("SELECT count(*), coalesce(sum(length(body)), 0) FROM reports"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return std::make_pair(int64_t{0}, int64_t{0});
  return std::make_pair(st.columnInt64(0), st.columnInt64(1));
}

}  // namespace fleetlet::cloud
