#pragma once
// HealthMonitor: probes every app's health check on its interval, counts consecutive
// failures and tells the reconciler when an app becomes unhealthy (so it restarts it) and
// when it recovers.
//
// Concurrency: the monitor owns one scheduler thread and a pool of `probe_threads` workers
// that run probes (at most one probe per app at a time, so a hanging app holds one worker
// for at most its check's timeout and never delays the other apps' schedules while workers
// are free). All per-app state is guarded by `mu_` and changed only by the scheduler thread
// (results) and setTargets(). Callbacks run on the scheduler thread, one at a time, never
// under `mu_`: they may call setTargets() and snapshot(), but must not call stop() or
// destroy the monitor. Public methods are safe from any thread.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "health/clock.h"
#include "health/prober.h"

namespace fleetlet::health {

struct HealthCallbacks {
  // `app` failed check.failures probes in a row; `last_error` says why the last one failed.
  // Called once per run of failures: counting then starts over, so an app that stays
  // unhealthy is reported again after another check.failures failures.
  std::function<void(const std::string& app, const Error& last_error)> on_unhealthy;
  // A probe of `app` succeeded after on_unhealthy was reported for it.
  std::function<void(const std::string& app)> on_healthy;
};

struct HealthMonitorOptions {
  // Probes that may run at once. 0 runs every probe on the scheduler thread, one after the
  // other (deterministic; for tests with a fake clock and an instant prober).
  size_t probe_threads = 4;
};

// What the monitor knows about one app, for status reports.
struct AppHealth {
  std::string app;
  int consecutive_failures = 0;
  bool unhealthy = false;           // reported unhealthy and not recovered since
  std::optional<Error> last_error;  // of the last failed probe
  uint64_t probes = 0;              // completed probes of the current target
  Clock::TimePoint next_probe;      // when the next probe starts (if none is running)
  bool probing = false;             // a probe is running now
};

class HealthMonitor {
 public:
  // Starts the scheduler thread and the probe workers. `prober` and `clock` must outlive the
  // monitor.
  HealthMonitor(Prober& prober, Clock& clock, HealthCallbacks callbacks,
                HealthMonitorOptions options = {});
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;
  // stop().
  ~HealthMonitor();

  // Replaces the set of monitored apps (one target per app; a later duplicate app wins).
  // An app whose target is unchanged (sameTarget) keeps its counts and schedule; a new or
  // changed one starts over: no failures, first probe one interval from now. Results of
  // probes of a removed or replaced target are discarded. Never blocks on a probe.
  void setTargets(std::vector<Target> targets);

  // The state of every monitored app, sorted by app name.
  std::vector<AppHealth> snapshot() const;

  // Stops probing and joins the threads; waits for running probes to end (each within about
  // its check's timeout). No callback runs after stop() returns. Idempotent.
  void stop();

 private:
  struct Entry {
    Target target;
    uint64_t generation = 0;  // identifies this target among the app's past ones
    Clock::TimePoint next_probe;
    bool probing = false;
    int failures = 0;
    bool unhealthy = false;
    std::optional<Error> last_error;
    uint64_t probes = 0;
  };
  struct Job {
    Target target;
    uint64_t generation = 0;
  };
  struct Outcome {
    std::string app;
    uint64_t generation = 0;
    Status status;
  };

  void schedulerLoop();
  void workerLoop();
  // Applies one probe result to its entry (if still current); appends the callback to run.
  void applyLocked(const Outcome& outcome, std::vector<std::function<void()>>& calls);
  // Starts every due probe: queues it for a worker, or returns it to run inline.
  std::vector<Job> dispatchDueLocked(Clock::TimePoint now);
  Clock::TimePoint nextDeadlineLocked() const;

  Prober& prober_;
  Clock& clock_;
  const HealthCallbacks callbacks_;
  const HealthMonitorOptions options_;

  mutable std::mutex mu_;
  std::condition_variable scheduler_cv_;  // wakes the scheduler: targets, results, stop
  std::condition_variable worker_cv_;     // wakes workers: jobs, stop
  bool stopping_ = false;                 // guarded by mu_
  uint64_t next_generation_ = 1;          // guarded by mu_
  std::map<std::string, Entry> entries_;  // by app; guarded by mu_
  std::deque<Job> jobs_;                  // guarded by mu_
  std::deque<Outcome> outcomes_;          // guarded by mu_

  std::mutex stop_mu_;  // serializes stop()
  std::vector<std::thread> workers_;
  std::thread scheduler_;
};

}  // namespace fleetlet::health
