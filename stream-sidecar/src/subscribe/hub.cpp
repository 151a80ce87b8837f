#include "subscribe/hub.h"

#include <algorithm>

namespace fleetlet::streams {

Subscription::~Subscription() { hub_.remove(this); }

std::vector<std::shared_ptr<const Event>> Subscription::take() {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const Event>> out(std::make_move_iterator(queue_.begin()),
                                                std::make_move_iterator(queue_.end()));
  queue_.clear();
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
    if (queue_.size() >= limit_) {
      overflowed_ = true;
      queue_.clear();
      return true;
    }
    queue_.push_back(e);
    changed = true;
  }
  return changed;
}

std::unique_ptr<Subscription> Hub::subscribe(std::vector<Filter> filters, std::size_t limit,
                                             std::function<void()> wake) {
  std::unique_ptr<Subscription> s(new Subscription(
      *this, std::move(filters), std::max<std::size_t>(limit, 1), std::move(wake)));
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
