#pragma once
// Agent: fleetletd's core. Accepts manifests (validated, stored durably, then handed to the
// reconciler), keeps the node's event log, and answers the local API through NodeService.
//
// Threading: the reconciler's workers run while run() blocks; every NodeService method may be
// called from any thread.

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/event_notifier.h"
#include "core/node_service.h"
#include "reconcile/reconciler.h"
#include "state/store.h"
#include "trust/policy.h"

namespace fleetlet::core {

struct AgentOptions {
  size_t parallelism = 4;        // reconcile workers
  size_t pull_parallelism = 2;   // images pulled at once
  size_t event_capacity = 2000;  // node events kept in memory
  // Where an app's logs live (for logDir()).
  std::function<std::filesystem::path(const std::string& app)> log_dir;
  // The app whose log (log_dir) holds the lines about runtime: webview apps: the kiosk,
  // which prefixes each with "[<app>] "; empty: none.
  std::string webview_log_app;
  // An app's status changed (see ReconcilerOptions::on_app).
  std::function<void(const reconcile::AppSnapshot&)> on_app;
  // An app's network for describe(); null or nullopt: none shown.
  std::function<std::optional<AppNetworkStatus>(const std::string& app)> app_network;
  // See ReconcilerOptions::on_first_pass.
  std::function<void()> on_first_pass;
  // Status of apps run outside containerd (see ReconcilerOptions::external_status).
  std::function<std::optional<reconcile::ExternalAppStatus>(const std::string& app)>
      external_status;
  // The screen of runtime: webview (NodeService::screenshot and show); unset: no display.
  std::function<Result<std::string>(const std::string& app)> screenshot;
  std::function<Status(const std::string& app)> show;
  // The kiosk's status of a webview app for describe() (AppDetail::screen); unset or an
  // error: none shown.
  std::function<Result<Json>(const std::string& app)> screen_status;
  // Which manifests are trusted (signatures, unsigned local ones); the default policy trusts
  // no keys and accepts unsigned local manifests only.
  trust::Policy trust;
  // This node's id (node.id), which a manifest's `node` must equal.
  std::string node_id;
  // The node's system apps (system_apps::loadSystemManifest), applied beside every desired
  // state; a manifest naming one of them is refused. Null: none.
  std::shared_ptr<const manifest::NodeState> system;
  // Every node event, in seq order, before record() returns: the status outbox queues it
  // durably there (docs/cloud.md, "Status reports"). Called under the event numbering lock.
  std::function<void(const NodeEvent&)> on_event;
  // The digest containerd resolved an app's image to (nullopt: unknown); cached per image
  // until it is pulled again.
  std::function<Result<std::optional<std::string>>(const std::string& image)> image_digest;
  // See ReconcilerOptions::on_worked (metrics).
  std::function<void(const std::string& app, std::chrono::nanoseconds took)> on_worked;
  // The time that manifest expiry is checked against.
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
};

class Agent : public NodeService {
 public:
  // Exits of a changed app within the rollback window that fail a revision.
  static constexpr int kRollbackExits = 3;

  Agent(reconcile::ContainerRuntime& runtime, state::StateStore& store, AgentOptions options);
  ~Agent() override;

  // Loads the newest stored manifest, so a restarted agent converges to what it had accepted.
  Status load();
  // Runs the reconciler until stop(); fails only when it could not start a single worker.
  Status run() { return reconciler_.run(); }
  void stop() { reconciler_.stop(); }
  // A containerd event about a container arrived: reconcile its app soon.
  void containerChanged(const std::string& container_id, std::optional<uint32_t> exited_pid) {
    reconciler_.containerChanged(container_id, exited_pid);
  }
  // containerd events may have been missed: list every container again.
  void resync() { reconciler_.resync(); }
  // An app failed its health check.
  void unhealthy(const std::string& app, const std::string& why);
  // containerd's TaskOOM event: the container's next exit is an OOM kill.
  void oomKilled(const std::string& container_id) { reconciler_.oomKilled(container_id); }
  // An app run outside containerd (webview) changed: an event for the log, its status re-read.
  void externalEvent(const std::string& app, const std::string& kind, const std::string& message) {
    record(app, kind, message);
  }
  void externalChanged(const std::string& app) { reconciler_.externalChanged(app); }
  reconcile::Reconciler& reconciler() { return reconciler_; }

  // A local manifest (fleetletctl apply, --desired): applyFrom(..., trust::Origin::kLocal).
  Result<ApplyResult> apply(std::string_view manifest_text, std::string_view source) override;
  // Admits `text` (a DSSE envelope, or a bare manifest where the trust policy allows it for
  // `origin`), checks the manifest's node, revision and expiry (trust::checkBinding), then
  // accepts it as apply() does. Every refusal is kFailedPrecondition or kInvalidArgument with
  // the reason, recorded as a "rejected" node event, and changes nothing.
  // From the cloud, the manifest already accepted (same revision, same text) is not refused
  // but returned with `unchanged` set.
  Result<ApplyResult> applyFrom(std::string_view text, std::string_view source,
                                trust::Origin origin);
  // Records that a manifest from `source` was refused before it could be admitted (too
  // large, not a manifest at all): a "rejected" node event "<source>: <why>".
  void refused(std::string_view source, const Error& why);
  Result<std::vector<AppStatus>> apps() override;
  Result<AppDetail> describe(std::string_view app) override;
  Status restart(std::string_view app) override;
  Result<NodeStatus> status() override;
  std::vector<NodeEvent> events(int64_t after_seq, size_t limit) override;
  std::unique_ptr<EventWatch> watchEvents(std::function<void()> wake) override;
  Result<std::filesystem::path> logDir(std::string_view app) override;
  // A webview app's lines in the kiosk's log (AgentOptions::webview_log_app).
  Result<LogSource> logSource(std::string_view app) override;
  Result<std::string> screenshot(std::string_view app) override;
  Status show(std::string_view app) override;

 private:
  // Appends an event to the node event log and wakes the watchers. May block on the store
  // once every kEventSeqBlock events (and at the first), to reserve the next seqs.
  void record(const std::string& app, const std::string& kind, const std::string& message);
  // Reserves seqs up to next_seq_ - 1 + kEventSeqBlock in the store; at the first call it
  // first continues above what earlier runs reserved. seq_mu_ held.
  void reserveEventSeqs();

  // Rollback (docs/cloud.md): after applying a revision with rollback.window, the apps it
  // changed are watched until the window ends (the watch is kept in the store, so a restart
  // inside the window continues it). A failure hands the rollback to rollback_thread_
  // (record() runs on reconciler threads, which must not call back into the reconciler); the
  // window passing without one is noticed by that thread too (or by the first event after it)
  // and makes the revision the last good one.
  struct PendingRollback {
    int64_t revision = 0;
    int64_t back_to = 0;
    std::string reason;
  };
  // The watch for `next` (nullopt: nothing to watch), to be stored with it.
  std::optional<state::RollbackWatch> rollbackWatchFor(const manifest::NodeState& next,
                                                       const manifest::NodeState* previous);
  void observe(const std::string& app, const std::string& kind, const std::string& message);
  // The window of `watch` passed without a failure (it was taken out of watch_).
  void windowPassed(const state::RollbackWatch& watch);
  void rollBack(const PendingRollback& r);
  // Hands `desired` (null: none accepted yet) plus the system apps to the reconciler.
  void setDesired(std::shared_ptr<const manifest::NodeState> desired);
  void rollbackLoop(const std::stop_token& stop);

  state::StateStore& store_;
  AgentOptions options_;
  std::mutex rollback_mu_;
  std::condition_variable_any rollback_cv_;
  std::optional<state::RollbackWatch> watch_;  // guarded by rollback_mu_
  std::optional<PendingRollback> pending_;     // guarded by rollback_mu_
  std::jthread rollback_thread_;
  reconcile::Reconciler reconciler_;
  std::mutex apply_mu_;  // serialises apply(): check revision, store, hand over
  // The desired state last handed over, without the system apps (the rollback watch compares
  // revisions of it).
  std::shared_ptr<const manifest::NodeState> desired_;  // guarded by apply_mu_

  // The node event log. Seqs survive restarts: the store keeps a ceiling above every seq
  // handed out, raised a block at a time, and a new run starts above it (skipping the rest
  // of the last block).
  static constexpr int64_t kEventSeqBlock = 1024;
  std::mutex seq_mu_;        // serialises record(): numbering and reservations
  bool seq_loaded_ = false;  // guarded by seq_mu_
  int64_t next_seq_ = 1;     // guarded by seq_mu_
  int64_t seq_ceiling_ = 0;  // guarded by seq_mu_: the last seq reserved in the store
  std::mutex events_mu_;
  std::deque<NodeEvent> events_;  // guarded by events_mu_; seqs ascending

  // What node events tell about each app beyond the reconciler's status.
  struct AppNotes {
    std::string cause;              // why its task ended, until it is restarted
    bool cause_is_request = false;  // manual or health check: an exit it causes does not count
    std::string last_restart_reason;
    std::map<std::string, int64_t> restarts_by_reason;  // restartReasonKind() → count
    bool healthy = true;
  };
  void note(const std::string& app, const std::string& kind, const std::string& message);
  // Fills in what the reconciler's snapshot does not have.
  void annotate(AppStatus& status);
  std::mutex notes_mu_;
  std::map<std::string, AppNotes> notes_;       // guarded by notes_mu_
  std::map<std::string, std::string> digests_;  // guarded by notes_mu_: image → digest
  EventNotifier notifier_;                      // wakes watchEvents() callers after each record()
};

}  // namespace fleetlet::core
