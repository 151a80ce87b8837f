#pragma once
// Reconciler: drives the node towards the desired manifest, one app at a time.
//
// Level-triggered per app, like controller-runtime's controllers and kubelet's pod workers:
// - a WorkQueue of app names (each queued once, never worked on by two workers at once) feeds
//   `parallelism` worker threads;
// - a worker reads the app's containers back from containerd, accounts for an exit, plans the
//   app's steps with planApp() and executes them, updating the app's status after each step;
// - a failing app is retried after its failure backoff (1 s doubling to 5 min, reset on success
//   or a spec change); a crashing app after its restart backoff;
// - pulls run on their own `pull_parallelism` threads, one per image however many apps use
//   it: a slow registry holds up only the apps whose image it serves, and no worker;
// - a resync lists every container (at start, after containerd events were missed, and every
//   `resync`) and queues every app desired or found.
// Everything a step does is idempotent and keyed by app name and spec hash, so a crash at any
// point converges on the next start.
//
// Threading: run() starts the workers and pull threads and blocks until stop(). Every other
// public method may be called from any thread. No thread is started per app or per step.
// Time comes from the injected clock. Tests may instead call runDue() on their own thread
// without run(): it works the queue, pulls included, until nothing is due.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "manifest/types.h"
#include "reconcile/planner.h"
#include "reconcile/runtime.h"
#include "reconcile/work_queue.h"
#include "state/store.h"

namespace fleetlet::reconcile {

// What the reconciler last knew about one app.
struct AppSnapshot {
  std::string name;
  std::string image;
  std::string runtime;
  std::string state;    // see core::AppStatus::state
  std::string message;  // last error or what the app waits for, or empty
  std::string container_id;
  std::string spec_hash;
  uint32_t pid = 0;
  AppRuntimeState runtime_state;
  // When a failing app is tried again (state "backoff" after an error).
  std::optional<Clock::time_point> retry_at;

  bool operator==(const AppSnapshot&) const = default;
};

// The status of an app whose runtime fleetletd runs outside containerd (runtime: webview,
// run by webview::WebviewRuntime): a state of core::AppStatus::state, why, and its restarts.
struct ExternalAppStatus {
  std::string state;
  std::string message;
  int restarts = 0;
};

// The end of an "exited" event's message when the OOM killer ended the task: "exit code 137
// (OOM killed)".
inline constexpr char kOomKilled[] = " (OOM killed)";

struct ReconcilerOptions {
  size_t parallelism = 4;                   // worker threads
  size_t pull_parallelism = 2;              // images pulled at once
  std::chrono::milliseconds resync{30000};  // list every container at least this often
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
  // Node events: (app or "", kind, message). Called from reconciler threads.
  std::function<void(const std::string&, const std::string&, const std::string&)> on_event;
  // An app's status changed (state "removed": it is gone). Called from workers and from the
  // threads calling setDesired/containerChanged, never under the reconciler's lock.
  std::function<void(const AppSnapshot&)> on_app;
  // Called once, from a worker, when every app of the first successful resync (desired or
  // found in containerd) has been worked on once: the running ones are refreshed by then (a
  // restarted fleetletd has made their service listeners again).
  std::function<void()> on_first_pass;
  // The status of an app of a runtime the reconciler does not run itself (webview); nullopt
  // (or no function) means that runtime is not supported on this node. Called from workers.
  std::function<std::optional<ExternalAppStatus>(const std::string& app)> external_status;
  // One work item finished: an app's pass (`app` its name) or a resync (`app` empty), and how
  // long it took (steady clock; a measurement, not logic). Called from workers.
  std::function<void(const std::string& app, std::chrono::nanoseconds took)> on_worked;
};

class Reconciler {
 public:
  Reconciler(ContainerRuntime& runtime, state::StateStore& store, ReconcilerOptions options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Lists every desired app at once (as "pending" until worked on) and queues every app whose
  // spec changed, every new app and every app no longer desired. `complete` is false while
  // `desired` holds only the system apps because no desired state has been received yet (a
  // node that lost its state, or a stored one this fleetletd cannot read): until one is, the
  // containers of other apps are left as they run, not removed as undesired.
  void setDesired(std::shared_ptr<const manifest::NodeState> desired, bool complete = true);
  std::shared_ptr<const manifest::NodeState> desired() const;
  // Restarts the app's running task on the next pass; `reason` is what its "restarted" event
  // gives (a manual restart's "requested", a health check's "failed health check: …").
  void requestRestart(const std::string& app, std::string reason = "requested");
  // The status of an app run outside containerd changed: its status is read again soon.
  void externalChanged(const std::string& app);
  // A containerd event about a container: its app is worked on soon. `exited_pid` (a task exit)
  // marks the app's task dead in the status at once, before any worker looks at it, when it is
  // the pid the status shows (not an exec'd health probe).
  void containerChanged(const std::string& container_id, std::optional<uint32_t> exited_pid);
  // Lists every container again soon (events may have been missed).
  void resync();
  // containerd reported an OOM kill in the container (its TaskOOM event): its next exit is
  // reported as one (see kOomKilled).
  void oomKilled(const std::string& container_id);

  // Starts the workers and pull threads and blocks until stop(). Fails (kResourceExhausted)
  // only when not a single worker thread could be started. Steps in flight when stop() is
  // called complete; no new step starts.
  Status run();
  void stop();

  // For tests, instead of run(): works every due app (and pull) on the calling thread until
  // none is due. Returns how many items it worked.
  size_t runDue();
  // The earliest time an app held back (backoff, retry, resync) becomes due.
  std::optional<Clock::time_point> nextDue() const { return queue_.nextDue(); }

  std::vector<AppSnapshot> snapshot() const;
  // Apps whose last attempt failed: app → message.
  std::map<std::string, std::string> errors() const;

 private:
  struct PullJob {
    manifest::App app;              // the first app that asked, for the image reference
    std::set<std::string> waiters;  // apps to queue when it ends
  };
  struct PullResult {
    std::string image;
    Status status;
  };

  void work(const std::string& key);
  void workApp(const std::string& name);
  void doResync();
  // Counts `key` as worked on for on_first_pass and fires it when the first pass is complete.
  void firstPassWorked(const std::string& key);
  // kPull: nullopt while the pull is in flight (the app is queued again when it ends).
  std::optional<Status> requestPull(const manifest::App& app);
  bool runOnePull(const std::stop_token& stop);
  void pullLoop(const std::stop_token& stop);
  Status accountExit(const std::string& name, const std::vector<ActualContainer>& actual,
                     AppRuntimeState& state);
  // Runs the plan's steps in order, keeping `state` (the app's restart bookkeeping, as stored)
  // up to date; false when it left early (pull in flight, or stopping). Should a replacement
  // fail to start, the old containers it stopped and those in plan.revert are started again.
  Result<bool> execute(const manifest::App* app, const AppPlan& plan, int64_t revision,
                       AppRuntimeState& state);
  // Apps desired, listed or known to containerd: their data is kept.
  std::set<std::string> liveApps() const;
  // The app's dependencies that are still being worked on (it must wait for them).
  std::vector<std::string> pendingDependencies(const manifest::NodeState& desired,
                                               const manifest::App& app) const;
  // Sets fields of the app's snapshot and reports the change.
  void update(const std::string& name, const std::function<void(AppSnapshot&)>& change);
  // A failed attempt: the app backs off (state "backoff", message ending "retry in Ns") and is
  // queued again after its failure backoff.
  void retryLater(const manifest::NodeState* based_on, const std::string& name, const Error& error);
  // Records the outcome of work on `name` done against `based_on`; marks the revision applied
  // once every app is in sync.
  void settle(const manifest::NodeState* based_on, const std::string& name, bool in_sync,
              bool clean);
  void emit(const std::string& app, const std::string& kind, const std::string& message);
  bool stopping() const;

  ContainerRuntime& runtime_;
  state::StateStore& store_;
  ReconcilerOptions options_;
  WorkQueue queue_;
  std::stop_source stop_;

  mutable std::mutex mu_;
  std::shared_ptr<const manifest::NodeState> desired_;    // guarded by mu_
  std::map<std::string, std::string> restart_requested_;  // app -> why; guarded by mu_
  // A desired state was received (setDesired with complete and not null): only then are
  // containers of apps it does not name removed.
  bool desired_received_ = false;                 // guarded by mu_
  std::set<std::string> oom_killed_;              // guarded by mu_: container ids
  std::map<std::string, AppSnapshot> snapshots_;  // guarded by mu_
  std::map<std::string, std::string> errors_;     // guarded by mu_
  // Failing apps and when they are tried again (cleared by a spec change or a restart request).
  std::map<std::string, Clock::time_point> retry_at_;  // guarded by mu_
  // Container ids fleetlet knows per app (from listings and its own creates), and the owner of
  // every id seen since the last resync (removed ones too, so their late events find the app).
  std::map<std::string, std::set<std::string>> known_;  // guarded by mu_
  std::map<std::string, std::string> owner_;            // guarded by mu_
  bool listed_ = false;                                 // guarded by mu_: a resync succeeded
  // Apps of the first resync not worked on yet (on_first_pass), and whether that has fired.
  std::set<std::string> first_pass_;  // guarded by mu_
  bool first_pass_done_ = false;      // guarded by mu_
  // Apps (desired, or with containers to remove) not yet matching the desired revision, and
  // the in-sync ones that are not clean (waiting for a restart backoff, unsupported).
  std::set<std::string> unsynced_;  // guarded by mu_
  std::set<std::string> unclean_;   // guarded by mu_
  // app → apps that depend on it, for the desired revision.
  std::map<std::string, std::vector<std::string>> dependents_;  // guarded by mu_
  int64_t marked_revision_ = 0;  // guarded by mu_: the last revision settle() marked applied

  mutable std::mutex pull_mu_;
  std::condition_variable_any pull_cv_;
  std::map<std::string, PullJob> pulls_;            // guarded by pull_mu_: image → job
  std::deque<std::string> pull_queue_;              // guarded by pull_mu_: images not started
  std::map<std::string, PullResult> pull_results_;  // guarded by pull_mu_: app → its result
};

}  // namespace fleetlet::reconcile
