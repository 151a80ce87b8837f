#pragma once
// Reconciler: drives the node towards the desired manifest. Each pass reads the actual state
// back from containerd, accounts for exits (restart counts, backoff), plans with planSteps()
// and executes the steps — per app in dependency order, independent apps in parallel — then
// records what it saw for status queries.
//
// Threading: run() owns the loop on the caller's thread; setDesired, requestRestart, trigger,
// stop and snapshot may be called from any thread. Steps run on up to `parallelism` worker
// threads during a pass. Time comes from an injected clock.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "manifest/types.h"
#include "reconcile/planner.h"
#include "reconcile/runtime.h"
#include "state/store.h"

namespace fleetlet::reconcile {

// What the reconciler last knew about one app.
struct AppSnapshot {
  std::string name;
  std::string image;
  std::string runtime;
  std::string state;    // see core::AppStatus::state
  std::string message;  // last error, or empty
  std::string container_id;
  std::string spec_hash;
  uint32_t pid = 0;
  AppRuntimeState runtime_state;
};

struct ReconcilerOptions {
  size_t parallelism = 4;
  std::chrono::milliseconds resync{30000};  // pass at least this often
  std::chrono::milliseconds retry{2000};    // after a pass with errors
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
  // Node events: (app or "", kind, message). Called from reconciler threads.
  std::function<void(const std::string&, const std::string&, const std::string&)> on_event;
  // After each pass, with the apps as the pass left them (health checks follow these).
  std::function<void(const std::vector<AppSnapshot>&)> on_pass;
};

class Reconciler {
 public:
  Reconciler(ContainerRuntime& runtime, state::StateStore& store, ReconcilerOptions options);

  void setDesired(std::shared_ptr<const manifest::NodeState> desired);
  std::shared_ptr<const manifest::NodeState> desired() const;
  void requestRestart(const std::string& app);
  // Something changed outside (a containerd event): run a pass soon.
  void trigger();

  // Runs passes until stop(). Returns after the pass in progress finishes; once stop() was
  // called, that pass starts no further step (steps already running complete).
  void run();
  void stop();

  struct PassResult {
    size_t steps = 0;
    size_t failed = 0;
    bool converged = false;  // nothing left to do for the desired revision
    std::optional<Clock::time_point> wake_at;
  };
  // One pass, synchronously (run() calls it; tests may too).
  Result<PassResult> reconcileOnce();

  std::vector<AppSnapshot> snapshot() const;
  // App-level errors of the last pass: app → message.
  std::map<std::string, std::string> errors() const;

 private:
  Status observeExits(const std::vector<ActualContainer>& actual,
                      std::map<std::string, AppRuntimeState>& states);
  // Runs one app's steps in order; returns the first failure.
  Status executeApp(const manifest::App* app, const std::vector<Step>& steps, int64_t revision);
  void emit(const std::string& app, const std::string& kind, const std::string& message);
  void setAppState(const std::string& app, std::string state, std::string message);

  ContainerRuntime& runtime_;
  state::StateStore& store_;
  ReconcilerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const manifest::NodeState> desired_;  // guarded by mu_
  std::set<std::string> restart_requested_;             // guarded by mu_
  bool dirty_ = true;                                   // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  std::map<std::string, AppSnapshot> snapshots_;        // guarded by mu_
  std::map<std::string, std::string> errors_;           // guarded by mu_
};

}  // namespace fleetlet::reconcile
