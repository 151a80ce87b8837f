#include "logrequest/store.h"

namespace fleetlet::logrequest {
namespace {

Result<std::optional<StoredRequest>> readOne(sqlite::Statement& st) {
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return std::optional<StoredRequest>();
  auto request = parseLogRequest(st.columnText(0));
  if (!request) return std::unexpected(request.error().wrap("status.db log_requests"));
  return std::optional<StoredRequest>(StoredRequest{
      .request = std::move(*request), .state = st.columnText(1), .reason = st.columnText(2)});
}

}  // namespace

Result<bool> LogRequestStore::add(const LogRequest& request) {
  bool added = false;
  const std::string now = logs::formatRfc3339Nano(now_());
  const Status done = outbox_.transact([&](sqlite::Database& db) -> Status {
    FLEETLET_ASSIGN_OR_RETURN(
        auto ins, db.prepare("INSERT OR IGNORE INTO log_requests(id, body, state, received, "
                             "updated) VALUES(?, ?, 'pending', ?, ?)"));
    FLEETLET_RETURN_IF_ERROR(ins.bindAll(request.id, toJson(request).dump(), now, now));
    FLEETLET_RETURN_IF_ERROR(ins.run());
    added = db.changes() == 1;
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return added;
}

Result<std::optional<StoredRequest>> LogRequestStore::next() {
  std::optional<StoredRequest> out;
  const Status done = outbox_.transact([&](sqlite::Database& db) -> Status {
    FLEETLET_ASSIGN_OR_RETURN(
        auto st, db.prepare("SELECT body, state, reason FROM log_requests WHERE state IN "
                            "('pending', 'uploading') ORDER BY rowid LIMIT 1"));
    FLEETLET_ASSIGN_OR_RETURN(out, readOne(st));
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return out;
}

Result<std::optional<StoredRequest>> LogRequestStore::find(const std::string& id) {
  std::optional<StoredRequest> out;
  const Status done = outbox_.transact([&](sqlite::Database& db) -> Status {
    FLEETLET_ASSIGN_OR_RETURN(
        auto st, db.prepare("SELECT body, state, reason FROM log_requests WHERE id = ?"));
    FLEETLET_RETURN_IF_ERROR(st.bind(1, id));
    FLEETLET_ASSIGN_OR_RETURN(out, readOne(st));
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return out;
}

Status LogRequestStore::markUploading(const std::string& id) {
  const std::string now = logs::formatRfc3339Nano(now_());
  return outbox_.transact([&](sqlite::Database& db) -> Status {
    FLEETLET_ASSIGN_OR_RETURN(
        auto st, db.prepare("UPDATE log_requests SET state = 'uploading', updated = ? WHERE id = "
                            "? AND state IN ('pending', 'uploading')"));
    FLEETLET_RETURN_IF_ERROR(st.bindAll(now, id));
    return st.run();
  });
}

Status LogRequestStore::finish(const std::string& id, bool done, const std::string& reason,
                               const Json& result) {
  const std::string now = logs::formatRfc3339Nano(now_());
  return outbox_.transact([&](sqlite::Database& db) -> Status {
    FLEETLET_ASSIGN_OR_RETURN(
        auto st, db.prepare("UPDATE log_requests SET state = ?, reason = ?, updated = ? WHERE "
                            "id = ? AND state IN ('pending', 'uploading')"));
    FLEETLET_RETURN_IF_ERROR(st.bindAll(done ? "done" : "failed", reason, now, id));
    FLEETLET_RETURN_IF_ERROR(st.run());
    if (db.changes() != 1) {
      return fail(ErrorCode::kFailedPrecondition, "log request {} is not running", id);
    }
    return cloud::StatusOutbox::queueResult(db, "logRequests", result);
  });
}

}  // namespace fleetlet::logrequest
