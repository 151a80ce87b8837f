#include "memory/trimmer.h"

#include <malloc.h>

namespace fleetlet::streams {

MemoryTrimmer::MemoryTrimmer(Options options) : options_(std::move(options)) {
  if (!options_.trim) options_.trim = [] { (void)malloc_trim(0); };
  if (!options_.pause) {
    options_.pause = [this](std::chrono::milliseconds interval) {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, interval, [this] { return stopping_; });
    };
  }
  thread_ = std::thread([this] { run(); });
}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void MemoryTrimmer::released(std::uint64_t bytes) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    pending_ += bytes;
    wake = pending_ >= options_.threshold;
  }
  if (wake) cv_.notify_all();
}

std::uint64_t MemoryTrimmer::trims() const {
  std::lock_guard lock(mutex_);
  return trims_;
}

void MemoryTrimmer::run() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || pending_ >= options_.threshold; });
      if (stopping_) return;
      pending_ = 0;
    }
    options_.trim();
    {
      std::lock_guard lock(mutex_);
      ++trims_;
    }
    options_.pause(options_.interval);
  }
}

}  // namespace fleetlet::streams
