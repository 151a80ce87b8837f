#include "subscribe/hub.h"

#include <algorithm>

namespace fleetlet::streams {

Subscription::~Subscription() { hub_.remove(this); }

std::vector<std::shared_ptr<const Event>> Subscription::take() {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const Event>> out(std::make_move_iterator(queue_.begin()),
                                                std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_bytes_ = 0;
  return out;
}

bool Subscription::overflowed() const {
  std::lock_guard lock(mutex_);
  return overflowed_;
}

bool Subscription::push(const std::vector<std::shared_ptr<const Event>>& events) {
  std::lock_guard lock(mutex_);
  if (overflowed_) return false;
  bool changed = false;
  for (const auto& e : events) {
    if (!matchesAny(filters_, *e)) continue;
    std::size_t bytes = eventBytes(*e);
    if (!queue_.empty() &&
        (queue_.size() >= limit_.events || queued_bytes_ + bytes > limit_.bytes)) {
      overflowed_ = true;
      queue_.clear();
      queued_bytes_ = 0;
      return true;
    }
    queue_.push_back(e);
    queued_bytes_ += bytes;
    changed = true;
  }
  return changed;
}

std::unique_ptr<Subscription> Hub::subscribe(std::vector<Filter> filters, QueueLimit limit,
                                             std::function<void()> wake) {
  std::unique_ptr<Subscription> s(
      new Subscription(*this, std::move(filters), limit, std::move(wake)));
  std::lock_guard lock(mutex_);
  subscribers_.push_back(s.get());
  return s;
}

void Hub::deliver(const std::vector<std::shared_ptr<const Event>>& events) {
  std::lock_guard lock(mutex_);
  for (Subscription* s : subscribers_) {
    if (s->push(events) && s->wake_) s->wake_();
  }
}

std::size_t Hub::subscriberCount() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

void Hub::remove(Subscription* subscription) {
  std::lock_guard lock(mutex_);
  std::erase(subscribers_, subscription);
}

}  // namespace fleetlet::streams
