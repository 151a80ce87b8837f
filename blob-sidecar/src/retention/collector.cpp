#include "retention/collector.h"

#include <spdlog/spdlog.h>

namespace fleetlet::retention {

RetentionCollector::RetentionCollector(Expirer& expirer, std::chrono::milliseconds interval)
    : expirer_(expirer), interval_(interval) {}

RetentionCollector::~RetentionCollector() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RetentionCollector::start() {
  thread_ = std::thread([this] { run(); });
}

void RetentionCollector::collectNow() {
  {
    std::lock_guard lock(mutex_);
    kick_ = true;
  }
  wake_.notify_all();
}

int64_t RetentionCollector::passes() const {
  std::lock_guard lock(mutex_);
  return passes_;
}

void RetentionCollector::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    auto removed = expirer_.collectExpired();
    if (!removed) {
      spdlog::warn("retention: collecting expired blobs failed: {}", removed.error().describe());
    } else if (*removed > 0) {
      spdlog::info("retention: deleted {} expired blob(s)", *removed);
    }
    lock.lock();
    ++passes_;
    wake_.wait_for(lock, interval_, [this] { return stop_ || kick_; });
    kick_ = false;
  }
}

}  // namespace fleetlet::retention
