#pragma once
// StateStore: what fleetletd keeps on disk besides containerd — accepted manifests (desired,
// applied and last known good revision) and each app's restart bookkeeping. SQLite in WAL
// mode with synchronous=FULL: a manifest is durable when accept() returns.
//
// Thread-safety: all methods lock one mutex; they block on disk I/O.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "error/error.h"
#include "reconcile/model.h"
#include "sqlite/database.h"

namespace fleetlet::state {

struct FailedRevision {
  int64_t revision = 0;
  std::string reason;
};

// A revision applied with rollback.window, watched until `until` (docs/cloud.md, "Rollback").
struct RollbackWatch {
  int64_t revision = 0;
  int64_t back_to = 0;  // the last good revision when it was applied
  reconcile::Clock::time_point until;
  std::set<std::string> apps;        // the apps the revision changed
  std::map<std::string, int> exits;  // exits of those apps since it was applied
  bool converged_clean = false;      // it converged without errors inside the window

  bool operator==(const RollbackWatch&) const = default;
};

struct StoredManifest {
  int64_t revision = 0;
  std::string text;
  std::string source;
};

class StateStore {
 public:
  // Opens (creating and migrating) <data_dir>/state.db.
  static Result<std::unique_ptr<StateStore>> open(const std::filesystem::path& data_dir);

  // Stores a validated manifest as the desired one. kFailedPrecondition when `revision` is
  // not newer than the desired revision ("revision 3 is not newer than the applied revision
  // 5"); nothing is written then. In the same transaction the rollback watch of the previous
  // revision ends (it was superseded) and `watch`, if any, starts.
  Status accept(int64_t revision, std::string_view text, std::string_view source,
                const std::optional<RollbackWatch>& watch = std::nullopt);
  // The newest accepted manifest, if any.
  Result<std::optional<StoredManifest>> desired();
  // A kept manifest (the 10 newest and the last good one are kept).
  Result<std::optional<StoredManifest>> manifestAt(int64_t revision);
  // Rolls back: `failed` is recorded as failed with `reason` (never accepted again), its
  // rollback watch ends and `back_to` (a kept manifest) becomes the desired revision. One
  // transaction.
  Status rollBack(int64_t failed, std::string_view reason, int64_t back_to);
  // Revisions that failed, newest first (at most 10).
  Result<std::vector<FailedRevision>> failedRevisions();
  int64_t desiredRevision();
  int64_t appliedRevision();
  int64_t lastGoodRevision();
  // Records that the node converged to `revision`; `clean` also makes it the last good one —
  // unless `revision` is inside its rollback window: then it becomes the last good one when
  // the window ends without a failure (endRollbackWatch).
  Status markApplied(int64_t revision, bool clean);

  // The rollback watch in force, if any (it survives restarts).
  Result<std::optional<RollbackWatch>> rollbackWatch();
  // Records the exits counted so far by the watch of `revision` (none: nothing is written).
  Status saveRollbackExits(int64_t revision, const std::map<std::string, int>& exits);
  // The window of `revision` passed without a failure: its watch ends, and the revision
  // becomes the last good one when it has converged cleanly. Returns whether it did; false
  // too when no watch of `revision` was in force.
  Result<bool> endRollbackWatch(int64_t revision);

  Result<std::map<std::string, reconcile::AppRuntimeState>> appStates();
  // One app's bookkeeping; a fresh state for an app never seen.
  Result<reconcile::AppRuntimeState> appState(const std::string& app);
  Status saveAppState(const std::string& app, const reconcile::AppRuntimeState& state);
  Status forgetApp(const std::string& app);

  // runtime: native: the uid `app` runs as at the sandboxed levels — the one recorded for it,
  // else the lowest of [first, last] that no other app holds and `taken` does not claim (a
  // host account), recorded before it is returned. No two apps ever hold the same uid (a
  // UNIQUE column). kResourceExhausted when every uid of the range is taken.
  Result<uint32_t> nativeUid(const std::string& app, uint32_t first, uint32_t last,
                             const std::function<bool(uint32_t)>& taken = {});
  // Frees the uids of the apps not in `live` (call only once their tasks are gone).
  Status releaseNativeUids(const std::set<std::string>& live);

  // Node event numbering (core::NodeEvent::seq) across restarts: every seq fleetletd handed out
  // is at most the stored ceiling, so the next run starts above it. 0 before the first event.
  Result<int64_t> eventSeqCeiling();
  // Durably raises the ceiling to `ceiling` (a lower value leaves it as it is).
  Status raiseEventSeqCeiling(int64_t ceiling);

 private:
  explicit StateStore(sqlite::Database db) : db_(std::move(db)) {}
  Result<int64_t> readInt(std::string_view key);
  Status writeInt(std::string_view key, int64_t value);
  Status insertWatch(const RollbackWatch& watch);  // mu_ held, in a transaction

  std::mutex mu_;
  sqlite::Database db_;  // guarded by mu_
};

}  // namespace fleetlet::state
