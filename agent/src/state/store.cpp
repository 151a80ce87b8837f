#include "state/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "json/json.h"

namespace fleetlet::state {
namespace {

constexpr std::array<std::string_view, 4> kMigrations = {R"sql(
CREATE TABLE manifests (
  revision INTEGER PRIMARY KEY,
  text TEXT NOT NULL,
  source TEXT NOT NULL,
  accepted_at INTEGER NOT NULL
);
CREATE TABLE node (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE apps (
  name TEXT PRIMARY KEY,
  restarts INTEGER NOT NULL,
  backoff_ms INTEGER NOT NULL,
  backoff_until_ms INTEGER,
  started_at_ms INTEGER,
  last_exit_code INTEGER,
  last_exit_at_ms INTEGER,
  last_exit_id TEXT NOT NULL
);
)sql",
                                                         R"sql(
CREATE TABLE failed_revisions (
  revision INTEGER PRIMARY KEY,
  reason TEXT NOT NULL,
  failed_at INTEGER NOT NULL
);
)sql",
                                                         R"sql(
CREATE TABLE rollback_watch (
  revision INTEGER PRIMARY KEY,
  back_to INTEGER NOT NULL,
  until_ms INTEGER NOT NULL,
  apps TEXT NOT NULL,
  exits TEXT NOT NULL,
  converged_clean INTEGER NOT NULL DEFAULT 0
);
)sql",
                                                         R"sql(
CREATE TABLE native_uids (app TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE);
)sql"};

// Manifests kept besides the desired one, for `describe` and rollbacks by hand.
constexpr int kKeptManifests = 10;

int64_t toMs(reconcile::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
reconcile::Clock::time_point fromMs(int64_t ms) {
  return reconcile::Clock::time_point(std::chrono::milliseconds(ms));
}

Status bindOptionalTime(sqlite::Statement& st, int index,
                        const std::optional<reconcile::Clock::time_point>& t) {
  return t ? st.bind(index, toMs(*t)) : st.bind(index, nullptr);
}

std::optional<reconcile::Clock::time_point> optionalTime(const sqlite::Statement& st, int col) {
  if (st.columnIsNull(col)) return std::nullopt;
  return fromMs(st.columnInt64(col));
}

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::open(const std::filesystem::path& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return fail(ErrorCode::kInternal, "create {}: {}", data_dir.string(), ec.message());
  FLEETLET_ASSIGN_OR_RETURN(auto db, sqlite::Database::open(data_dir / "state.db", kMigrations));
  return std::unique_ptr<StateStore>(new StateStore(std::move(db)));
}

Result<int64_t> StateStore::readInt(std::string_view key) {
  return sqlite::readKeyInt(db_, "node", key);
}

Status StateStore::writeInt(std::string_view key, int64_t value) {
  return sqlite::writeKeyInt(db_, "node", key, value);
}

Status StateStore::accept(int64_t revision, std::string_view text, std::string_view source,
                          const std::optional<RollbackWatch>& watch) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_ASSIGN_OR_RETURN(int64_t desired, readInt("desired_revision"));
  if (revision <= desired) {
    FLEETLET_ASSIGN_OR_RETURN(int64_t applied, readInt("applied_revision"));
    return fail(ErrorCode::kFailedPrecondition,
                "revision {} is not newer than the accepted revision {} (applied: {})", revision,
                desired, applied);
  }
  FLEETLET_ASSIGN_OR_RETURN(int64_t failed, readInt("failed_revision"));
  if (revision <= failed) {
    return fail(ErrorCode::kFailedPrecondition,
                "revision {} is not newer than revision {}, which failed and was rolled back",
                revision, failed);
  }
  FLEETLET_ASSIGN_OR_RETURN(
      auto ins, db_.prepare("INSERT INTO manifests(revision, text, source, accepted_at) "
                            "VALUES(?, ?, ?, ?)"));
  FLEETLET_RETURN_IF_ERROR(ins.bind(1, revision));
  FLEETLET_RETURN_IF_ERROR(ins.bind(2, text));
  FLEETLET_RETURN_IF_ERROR(ins.bind(3, source));
  FLEETLET_RETURN_IF_ERROR(ins.bind(4, toMs(reconcile::Clock::now())));
  FLEETLET_RETURN_IF_ERROR(ins.run());
  FLEETLET_RETURN_IF_ERROR(writeInt("desired_revision", revision));
  FLEETLET_RETURN_IF_ERROR(db_.exec("DELETE FROM rollback_watch"));
  if (watch) FLEETLET_RETURN_IF_ERROR(insertWatch(*watch));
  FLEETLET_ASSIGN_OR_RETURN(
      auto prune, db_.prepare("DELETE FROM manifests WHERE revision NOT IN (SELECT revision FROM "
                              "manifests ORDER BY revision DESC LIMIT ?) AND revision IS NOT "
                              "(SELECT value FROM node WHERE key = 'last_good_revision')"));
  FLEETLET_RETURN_IF_ERROR(prune.bind(1, kKeptManifests));
  FLEETLET_RETURN_IF_ERROR(prune.run());
  return tx.commit();
}

Result<std::optional<StoredManifest>> StateStore::desired() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare("SELECT revision, text, source FROM manifests WHERE revision = "
                           "(SELECT value FROM node WHERE key = 'desired_revision')"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return std::optional<StoredManifest>();
  return StoredManifest{st.columnInt64(0), st.columnText(1), st.columnText(2)};
}

Result<std::optional<StoredManifest>> StateStore::manifestAt(int64_t revision) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare("SELECT revision, text, source FROM manifests WHERE revision = ?"));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, revision));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return std::optional<StoredManifest>();
  return StoredManifest{st.columnInt64(0), st.columnText(1), st.columnText(2)};
}

Status StateStore::rollBack(int64_t failed, std::string_view reason, int64_t back_to) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_ASSIGN_OR_RETURN(
      auto ins, db_.prepare("INSERT OR REPLACE INTO failed_revisions(revision, reason, failed_at) "
                            "VALUES(?, ?, ?)"));
  FLEETLET_RETURN_IF_ERROR(ins.bind(1, failed));
  FLEETLET_RETURN_IF_ERROR(ins.bind(2, reason));
  FLEETLET_RETURN_IF_ERROR(ins.bind(3, toMs(reconcile::Clock::now())));
  FLEETLET_RETURN_IF_ERROR(ins.run());
  FLEETLET_ASSIGN_OR_RETURN(int64_t highest, readInt("failed_revision"));
  FLEETLET_RETURN_IF_ERROR(writeInt("failed_revision", std::max(highest, failed)));
  FLEETLET_RETURN_IF_ERROR(writeInt("desired_revision", back_to));
  FLEETLET_RETURN_IF_ERROR(db_.exec("DELETE FROM rollback_watch"));
  FLEETLET_ASSIGN_OR_RETURN(
      auto prune, db_.prepare("DELETE FROM failed_revisions WHERE revision NOT IN (SELECT "
                              "revision FROM failed_revisions ORDER BY revision DESC LIMIT 10)"));
  FLEETLET_RETURN_IF_ERROR(prune.run());
  return tx.commit();
}

Result<std::vector<FailedRevision>> StateStore::failedRevisions() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare("SELECT revision, reason FROM failed_revisions ORDER BY revision DESC"));
  std::vector<FailedRevision> out;
  for (;;) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    out.push_back({st.columnInt64(0), st.columnText(1)});
  }
  return out;
}

int64_t StateStore::desiredRevision() {
  std::lock_guard lock(mu_);
  return readInt("desired_revision").value_or(0);
}
int64_t StateStore::appliedRevision() {
  std::lock_guard lock(mu_);
  return readInt("applied_revision").value_or(0);
}
int64_t StateStore::lastGoodRevision() {
  std::lock_guard lock(mu_);
  return readInt("last_good_revision").value_or(0);
}

Status StateStore::markApplied(int64_t revision, bool clean) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_RETURN_IF_ERROR(writeInt("applied_revision", revision));
  if (clean) {
    FLEETLET_ASSIGN_OR_RETURN(
        auto watched,
        db_.prepare("UPDATE rollback_watch SET converged_clean = 1 WHERE revision = ?"));
    FLEETLET_RETURN_IF_ERROR(watched.bind(1, revision));
    FLEETLET_RETURN_IF_ERROR(watched.run());
    if (db_.changes() == 0) FLEETLET_RETURN_IF_ERROR(writeInt("last_good_revision", revision));
  }
  return tx.commit();
}

Status StateStore::insertWatch(const RollbackWatch& w) {
  Json apps = w.apps;
  Json exits = w.exits;
  FLEETLET_ASSIGN_OR_RETURN(
      auto ins, db_.prepare("INSERT INTO rollback_watch(revision, back_to, until_ms, apps, exits, "
                            "converged_clean) VALUES(?, ?, ?, ?, ?, ?)"));
  FLEETLET_RETURN_IF_ERROR(ins.bind(1, w.revision));
  FLEETLET_RETURN_IF_ERROR(ins.bind(2, w.back_to));
  FLEETLET_RETURN_IF_ERROR(ins.bind(3, toMs(w.until)));
  FLEETLET_RETURN_IF_ERROR(ins.bind(4, apps.dump()));
  FLEETLET_RETURN_IF_ERROR(ins.bind(5, exits.dump()));
  FLEETLET_RETURN_IF_ERROR(ins.bind(6, int64_t{w.converged_clean ? 1 : 0}));
  return ins.run();
}

Result<std::optional<RollbackWatch>> StateStore::rollbackWatch() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto st,
                            db_.prepare("SELECT revision, back_to, until_ms, apps, exits, "
                                        "converged_clean FROM rollback_watch ORDER BY revision "
                                        "DESC LIMIT 1"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return std::optional<RollbackWatch>();
  RollbackWatch w{.revision = st.columnInt64(0),
                  .back_to = st.columnInt64(1),
                  .until = fromMs(st.columnInt64(2)),
                  .apps = {},
                  .exits = {},
                  .converged_clean = st.columnInt64(5) != 0};
  FLEETLET_ASSIGN_OR_RETURN(Json apps, parseJson(st.columnText(3), "rollback_watch.apps"));
  FLEETLET_ASSIGN_OR_RETURN(Json exits, parseJson(st.columnText(4), "rollback_watch.exits"));
  if (!apps.is_array() || !exits.is_object()) {
    return fail(ErrorCode::kInternal, "rollback_watch of revision {}: malformed", w.revision);
  }
  for (const auto& a : apps) {
    if (a.is_string()) w.apps.insert(a.get<std::string>());
  }
  for (const auto& [app, n] : exits.items()) {
    if (n.is_number_integer()) w.exits[app] = n.get<int>();
  }
  return std::optional<RollbackWatch>(std::move(w));
}

Status StateStore::saveRollbackExits(int64_t revision, const std::map<std::string, int>& exits) {
  std::lock_guard lock(mu_);
  Json j = exits;
  FLEETLET_ASSIGN_OR_RETURN(auto st,
                            db_.prepare("UPDATE rollback_watch SET exits = ? WHERE revision = ?"));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, j.dump()));
  FLEETLET_RETURN_IF_ERROR(st.bind(2, revision));
  return st.run();
}

Result<bool> StateStore::endRollbackWatch(int64_t revision) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare("SELECT converged_clean FROM rollback_watch WHERE revision = ?"));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, revision));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return false;
  const bool clean = st.columnInt64(0) != 0;
  FLEETLET_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM rollback_watch WHERE revision = ?"));
  FLEETLET_RETURN_IF_ERROR(del.bind(1, revision));
  FLEETLET_RETURN_IF_ERROR(del.run());
  FLEETLET_ASSIGN_OR_RETURN(int64_t applied, readInt("applied_revision"));
  const bool good = clean && applied == revision;
  if (good) FLEETLET_RETURN_IF_ERROR(writeInt("last_good_revision", revision));
  FLEETLET_RETURN_IF_ERROR(tx.commit());
  return good;
}

namespace {

constexpr std::string_view kAppColumns =
    "name, restarts, backoff_ms, backoff_until_ms, started_at_ms, last_exit_code, "
    "last_exit_at_ms, last_exit_id";

reconcile::AppRuntimeState readAppState(const sqlite::Statement& st) {
  reconcile::AppRuntimeState s;
  s.restarts = static_cast<int>(st.columnInt64(1));
  s.backoff = std::chrono::milliseconds(st.columnInt64(2));
  s.backoff_until = optionalTime(st, 3);
  s.started_at = optionalTime(st, 4);
  if (!st.columnIsNull(5)) s.last_exit_code = static_cast<int>(st.columnInt64(5));
  s.last_exit_at = optionalTime(st, 6);
  s.last_exit_id = st.columnText(7);
  return s;
}

}  // namespace

Result<std::map<std::string, reconcile::AppRuntimeState>> StateStore::appStates() {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto st, db_.prepare(fmt::format("SELECT {} FROM apps", kAppColumns)));
  std::map<std::string, reconcile::AppRuntimeState> out;
  for (;;) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    out.emplace(st.columnText(0), readAppState(st));
  }
  return out;
}

Result<reconcile::AppRuntimeState> StateStore::appState(const std::string& app) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare(fmt::format("SELECT {} FROM apps WHERE name = ?", kAppColumns)));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, app));
  FLEETLET_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return reconcile::AppRuntimeState{};
  return readAppState(st);
}

Status StateStore::saveAppState(const std::string& app, const reconcile::AppRuntimeState& s) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto st, db_.prepare("INSERT OR REPLACE INTO apps(name, restarts, backoff_ms, "
                           "backoff_until_ms, started_at_ms, last_exit_code, last_exit_at_ms, "
                           "last_exit_id) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, app));
  FLEETLET_RETURN_IF_ERROR(st.bind(2, s.restarts));
  FLEETLET_RETURN_IF_ERROR(st.bind(3, static_cast<int64_t>(s.backoff.count())));
  FLEETLET_RETURN_IF_ERROR(bindOptionalTime(st, 4, s.backoff_until));
  FLEETLET_RETURN_IF_ERROR(bindOptionalTime(st, 5, s.started_at));
  FLEETLET_RETURN_IF_ERROR(s.last_exit_code ? st.bind(6, *s.last_exit_code) : st.bind(6, nullptr));
  FLEETLET_RETURN_IF_ERROR(bindOptionalTime(st, 7, s.last_exit_at));
  FLEETLET_RETURN_IF_ERROR(st.bind(8, s.last_exit_id));
  return st.run();
}

Status StateStore::forgetApp(const std::string& app) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto st, db_.prepare("DELETE FROM apps WHERE name = ?"));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, app));
  return st.run();
}

Result<uint32_t> StateStore::nativeUid(const std::string& app, uint32_t first, uint32_t last,
                                       const std::function<bool(uint32_t)>& taken) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  {
    FLEETLET_ASSIGN_OR_RETURN(auto get, db_.prepare("SELECT uid FROM native_uids WHERE app = ?"));
    FLEETLET_RETURN_IF_ERROR(get.bind(1, app));
    FLEETLET_ASSIGN_OR_RETURN(bool found, get.step());
    if (found) return static_cast<uint32_t>(get.columnInt64(0));
  }
  std::set<int64_t> held;
  {
    FLEETLET_ASSIGN_OR_RETURN(auto all, db_.prepare("SELECT uid FROM native_uids"));
    for (;;) {
      FLEETLET_ASSIGN_OR_RETURN(bool row, all.step());
      if (!row) break;
      held.insert(all.columnInt64(0));
    }
  }
  for (uint64_t uid = first; uid <= last; ++uid) {
    if (held.contains(static_cast<int64_t>(uid)) || (taken && taken(static_cast<uint32_t>(uid)))) {
      continue;
    }
    FLEETLET_ASSIGN_OR_RETURN(auto ins,
                              db_.prepare("INSERT INTO native_uids(app, uid) VALUES(?, ?)"));
    FLEETLET_RETURN_IF_ERROR(ins.bind(1, app));
    FLEETLET_RETURN_IF_ERROR(ins.bind(2, static_cast<int64_t>(uid)));
    FLEETLET_RETURN_IF_ERROR(ins.run());
    FLEETLET_RETURN_IF_ERROR(tx.commit());
    return static_cast<uint32_t>(uid);
  }
  return fail(ErrorCode::kResourceExhausted, "app {}: every uid of {}-{} is taken", app, first,
              last);
}

Status StateStore::releaseNativeUids(const std::set<std::string>& live) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  std::vector<std::string> gone;
  {
    FLEETLET_ASSIGN_OR_RETURN(auto all, db_.prepare("SELECT app FROM native_uids"));
    for (;;) {
      FLEETLET_ASSIGN_OR_RETURN(bool row, all.step());
      if (!row) break;
      std::string app = all.columnText(0);
      if (!live.contains(app)) gone.push_back(std::move(app));
    }
  }
  for (const auto& app : gone) {
    FLEETLET_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM native_uids WHERE app = ?"));
    FLEETLET_RETURN_IF_ERROR(del.bind(1, app));
    FLEETLET_RETURN_IF_ERROR(del.run());
  }
  return tx.commit();
}

Result<int64_t> StateStore::eventSeqCeiling() {
  std::lock_guard lock(mu_);
  return readInt("event_seq_ceiling");
}

Status StateStore::raiseEventSeqCeiling(int64_t ceiling) {
  std::lock_guard lock(mu_);
  FLEETLET_ASSIGN_OR_RETURN(auto st, db_.prepare("INSERT INTO node(key, value) VALUES(?, ?) "
                                                 "ON CONFLICT(key) DO UPDATE SET value = "
                                                 "max(value, excluded.value)"));
  FLEETLET_RETURN_IF_ERROR(st.bind(1, "event_seq_ceiling"));
  FLEETLET_RETURN_IF_ERROR(st.bind(2, ceiling));
  return st.run();
}

}  // namespace fleetlet::state
