#include "reconcile/work_queue.h"

#include <algorithm>

namespace fleetlet::reconcile {

std::chrono::milliseconds FailureBackoff::next(const std::string& key) {
  int n = ++failures_[key];
  auto delay = first_;
  for (int i = 1; i < n && delay < max_; ++i) delay *= 2;
  return std::min(delay, max_);
}

int FailureBackoff::failures(const std::string& key) const {
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

WorkQueue::WorkQueue(std::function<Clock::time_point()> now, std::chrono::milliseconds max_sleep)
    : now_(std::move(now)), max_sleep_(max_sleep) {}

void WorkQueue::addLocked(const std::string& key) {
  if (shutting_down_) return;
  // A key held back stays held back too: the worker decides whether the early visit has
  // anything to do, and the later one still comes.
  if (!dirty_.insert(key).second) return;
  if (processing_.contains(key)) return;  // done() queues it again
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  addLocked(key);
}

void WorkQueue::addAfter(const std::string& key, Clock::time_point when) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  if (when <= now_()) {
    addLocked(key);
    return;
  }
  auto it = waiting_.find(key);
  if (it != waiting_.end()) {
    if (it->second <= when) return;
    auto [first, last] = by_time_.equal_range(it->second);
    for (auto i = first; i != last; ++i) {
      if (i->second == key) {
        by_time_.erase(i);
        break;
      }
    }
    it->second = when;
  } else {
    waiting_.emplace(key, when);
  }
  by_time_.emplace(when, key);
  cv_.notify_all();  // a sleeping get() may need to wake earlier
}

std::chrono::milliseconds WorkQueue::addRateLimited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    delay = backoff_.next(key);
  }
  addAfter(key, now_() + delay);
  return delay;
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  backoff_.forget(key);
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard lock(mu_);
  return backoff_.failures(key);
}

void WorkQueue::promoteDueLocked(Clock::time_point now) {
  while (!by_time_.empty() && by_time_.begin()->first <= now) {
    std::string key = by_time_.begin()->second;
    by_time_.erase(by_time_.begin());
    waiting_.erase(key);
    if (!dirty_.insert(key).second) continue;
    if (!processing_.contains(key)) queue_.push_back(std::move(key));
  }
}

std::optional<std::string> WorkQueue::popLocked() {
  if (queue_.empty()) return std::nullopt;
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  return key;
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (shutting_down_) return std::nullopt;
    promoteDueLocked(now_());
    if (auto key = popLocked()) return key;
    auto sleep = max_sleep_;
    if (!by_time_.empty()) {
      auto until =
          std::chrono::duration_cast<std::chrono::milliseconds>(by_time_.begin()->first - now_());
      sleep = std::clamp(until, std::chrono::milliseconds(1), max_sleep_);
    }
    cv_.wait_for(lock, sleep);
  }
}

std::optional<std::string> WorkQueue::tryGet() {
  std::lock_guard lock(mu_);
  if (shutting_down_) return std::nullopt;
  promoteDueLocked(now_());
  return popLocked();
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.contains(key) && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

std::optional<Clock::time_point> WorkQueue::nextDue() const {
  std::lock_guard lock(mu_);
  if (by_time_.empty()) return std::nullopt;
  return by_time_.begin()->first;
}

void WorkQueue::shutDown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

size_t WorkQueue::size() const {
  std::lock_guard lock(mu_);
  return queue_.size() + waiting_.size();
}

}  // namespace fleetlet::reconcile
