#pragma once
// WorkQueue: the reconciler's queue of app names, shaped like controller-runtime's
// rate-limited work queue.
//
// - An app is queued at most once: adding an app that waits in the queue does nothing.
// - An app is handed to one worker at a time: adding an app while a worker holds it marks it
//   dirty, and done() puts it back in the queue, so the newest state is always seen once more.
// - addAfter() holds an app back until a time point (the earliest one asked for wins);
//   addRateLimited() holds it back by its failure backoff (1 s doubling to 5 min, see
//   FailureBackoff), forget() resets that backoff. A plain add() of a held-back key queues it
//   now and keeps the later time as well.
//
// Threading: every method may be called from any thread. get() blocks until an app is due or
// shutDown() was called. Time comes from the injected clock; a blocked get() re-reads it at
// least every `max_sleep` so a test clock that jumps is noticed.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "reconcile/model.h"

namespace fleetlet::reconcile {

// Per-key exponential backoff for failing work: the n-th consecutive failure waits
// min(first·2ⁿ⁻¹, max). forget() starts the sequence again.
class FailureBackoff {
 public:
  explicit FailureBackoff(std::chrono::milliseconds first = std::chrono::seconds(1),
                          std::chrono::milliseconds max = std::chrono::minutes(5))
      : first_(first), max_(max) {}
  // Records one more failure of `key` and returns the delay before it is retried.
  std::chrono::milliseconds next(const std::string& key);
  void forget(const std::string& key) { failures_.erase(key); }
  int failures(const std::string& key) const;

 private:
  std::chrono::milliseconds first_;
  std::chrono::milliseconds max_;
  std::map<std::string, int> failures_;
};

class WorkQueue {
 public:
  explicit WorkQueue(std::function<Clock::time_point()> now,
                     std::chrono::milliseconds max_sleep = std::chrono::seconds(1));

  void add(const std::string& key);
  // Adds `key` once `when` has come (at once when it has). A later addAfter() for a key that is
  // already held back keeps the earlier time.
  void addAfter(const std::string& key, Clock::time_point when);
  // Adds `key` after its next failure backoff; returns that delay.
  std::chrono::milliseconds addRateLimited(const std::string& key);
  // Resets `key`'s failure backoff (after a success or a spec change).
  void forget(const std::string& key);
  int failures(const std::string& key) const;

  // The next due key, marked as being worked on; nullopt once shut down.
  std::optional<std::string> get();
  // Like get() but never blocks: nullopt when nothing is due now.
  std::optional<std::string> tryGet();
  // The worker is finished with `key`: if it was added meanwhile, it is queued again.
  void done(const std::string& key);
  // The earliest time an app held back becomes due.
  std::optional<Clock::time_point> nextDue() const;

  void shutDown();
  bool shuttingDown() const;
  size_t size() const;  // queued and held-back keys

 private:
  void addLocked(const std::string& key);
  void promoteDueLocked(Clock::time_point now);
  std::optional<std::string> popLocked();

  std::function<Clock::time_point()> now_;
  std::chrono::milliseconds max_sleep_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;                          // guarded by mu_
  std::set<std::string> dirty_;                            // guarded by mu_: queued or re-added
  std::set<std::string> processing_;                       // guarded by mu_
  std::map<std::string, Clock::time_point> waiting_;       // guarded by mu_
  std::multimap<Clock::time_point, std::string> by_time_;  // guarded by mu_: index of waiting_
  FailureBackoff backoff_;                                 // guarded by mu_
  bool shutting_down_ = false;                             // guarded by mu_
};

}  // namespace fleetlet::reconcile
