#pragma once
// RetentionCollector: a thread that periodically asks an Expirer (the blob store) to delete
// what has expired.
//
// Concurrency: start() spawns one thread that owns the periodic loop; the destructor stops
// and joins it. collectNow() may be called from any thread and wakes the loop. The Expirer
// must be safe to call from the collector thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "error/error.h"

namespace fleetlet::retention {

class Expirer {
 public:
  virtual ~Expirer() = default;
  // Deletes expired blobs (and content no longer referenced); returns how many blobs went.
  // May block on disk I/O.
  virtual Result<int64_t> collectExpired() = 0;
};

class RetentionCollector {
 public:
  RetentionCollector(Expirer& expirer, std::chrono::milliseconds interval);
  ~RetentionCollector();
  RetentionCollector(const RetentionCollector&) = delete;
  RetentionCollector& operator=(const RetentionCollector&) = delete;

  void start();
  // Runs a collection soon on the collector thread (e.g. after a clock jump in tests).
  void collectNow();
  // Completed collection passes so far.
  int64_t passes() const;

 private:
  void run();

  Expirer& expirer_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;   // guarded by mutex_
  bool kick_ = false;   // guarded by mutex_
  int64_t passes_ = 0;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace fleetlet::retention
