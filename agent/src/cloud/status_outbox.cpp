#include "cloud/status_outbox.h"

#include <array>

namespace fleetlet::cloud {
namespace {

constexpr std::array<std::string_view, 1> kMigrations = {R"sql(
CREATE TABLE reports (
  seq INTEGER PRIMARY KEY,
  body TEXT NOT NULL,
  frozen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql"};

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

Result<int64_t> StatusOutbox::add(Json report) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  if (!report.contains("events")) report["events"] = Json::array();
  if (!report.contains("eventsDropped")) report["eventsDropped"] = 0;
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
    }
  } else {
    FLEETLET_ASSIGN_OR_RETURN(auto last, db_.prepare("SELECT value FROM meta WHERE key = 'seq'"));
    FLEETLET_ASSIGN_OR_RETURN(bool row, last.step());
    seq = (row ? last.columnInt64(0) : 0) + 1;
    FLEETLET_ASSIGN_OR_RETURN(auto bump,
                              db_.prepare("INSERT INTO meta(key, value) VALUES('seq', ?) "
                                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    FLEETLET_RETURN_IF_ERROR(bump.bind(1, seq));
    FLEETLET_RETURN_IF_ERROR(bump.run());
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
