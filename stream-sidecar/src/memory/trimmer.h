#pragma once
// MemoryTrimmer: hands heap memory freed after large transients (big query pages, catch-up
// pages, large publish bodies) back to the kernel. glibc keeps freed memory in its arenas for
// reuse, so without this a burst of 1 MiB events left the process at ~740 MB RSS long after
// it ended; malloc_trim(0) returns it.
//
// Concurrency: released() may be called from any thread and never blocks. The trim runs on
// the trimmer's own thread: once at least `threshold` bytes were released, and then no sooner
// than `interval` after the previous trim (malloc_trim takes the arena locks, so it is kept
// off the request path and rate-limited). The destructor stops and joins that thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace fleetlet::streams {

class MemoryTrimmer {
 public:
  struct Options {
    // Bytes released before a trim is worth it.
    std::uint64_t threshold = std::uint64_t{16} * 1024 * 1024;
    // Shortest time between two trims.
    std::chrono::milliseconds interval{1000};
    // Returns free memory to the kernel; malloc_trim(0) when unset.
    std::function<void()> trim;
    // Waits `interval` (or less when the trimmer is stopping) after a trim;
    // a timed wait when unset. Tests inject one.
    std::function<void(std::chrono::milliseconds)> pause;
  };

  explicit MemoryTrimmer(Options options);
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // Buffers whose size is at least this are large transients worth reporting.
  static constexpr std::uint64_t kLargeTransient = std::uint64_t{64} * 1024;

  // Records that `bytes` of large buffers were freed. Never blocks.
  void released(std::uint64_t bytes);
  // Trims done so far.
  std::uint64_t trims() const;

 private:
  void run();

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t pending_ = 0;  // guarded by mutex_
  std::uint64_t trims_ = 0;    // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  std::thread thread_;
};

}  // namespace fleetlet::streams
