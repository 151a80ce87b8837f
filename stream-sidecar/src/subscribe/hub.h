#pragma once
// Hub: fans committed events out to live subscribers, each with a bounded queue.
//
// Concurrency
// - deliver() is called by the event store's writer thread after each commit; subscribe(),
//   Subscription::take() and unsubscribing (destroying the Subscription) from any thread.
//   The hub's subscriber list is guarded by Hub::mutex_, each queue by its own mutex.
// - deliver() never blocks on a subscriber: it appends to the queue and calls the
//   subscriber's wake function, which must only schedule work (e.g. post to a strand). A
//   queue that would grow past its limit (events or bytes, see QueueLimit) is marked
//   overflowed, emptied, and receives nothing more.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "events/event.h"

namespace fleetlet::streams {

class Hub;

// How far a live subscriber may fall behind. An event that would take a non-empty queue past
// either bound overflows it; an empty queue always takes one event, however large, so every
// event can be delivered.
struct QueueLimit {
  std::size_t events = 65536;
  // Counted with eventBytes(); events shared with other subscribers count in full.
  std::size_t bytes = std::size_t{4} * 1024 * 1024;
};

class Subscription {
 public:
  ~Subscription();  // unregisters from the hub
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Everything queued so far, oldest first (empties the queue).
  std::vector<std::shared_ptr<const Event>> take();
  // True once the queue overflowed; the subscriber should then be cut off.
  bool overflowed() const;

 private:
  friend class Hub;
  Subscription(Hub& hub, std::vector<Filter> filters, QueueLimit limit, std::function<void()> wake)
      : hub_(hub), filters_(std::move(filters)), limit_(limit), wake_(std::move(wake)) {}
  // Appends the matching events; returns whether anything changed.
  bool push(const std::vector<std::shared_ptr<const Event>>& events);

  Hub& hub_;
  const std::vector<Filter> filters_;
  const QueueLimit limit_;
  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::deque<std::shared_ptr<const Event>> queue_;  // guarded by mutex_
  std::size_t queued_bytes_ = 0;                    // guarded by mutex_
  bool overflowed_ = false;                         // guarded by mutex_
};

class Hub {
 public:
  Hub() = default;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Registers a subscriber for events matching any of `filters`, queueing at most `limit`.
  // `wake` runs (on the delivering thread) whenever events were queued or the queue
  // overflowed. The hub must outlive the subscription.
  std::unique_ptr<Subscription> subscribe(std::vector<Filter> filters, QueueLimit limit,
                                          std::function<void()> wake);
  // Queues committed events for every matching subscriber.
  void deliver(const std::vector<std::shared_ptr<const Event>>& events);
  std::size_t subscriberCount() const;

 private:
  friend class Subscription;
  void remove(Subscription* subscription);

  mutable std::mutex mutex_;
  std::vector<Subscription*> subscribers_;  // guarded by mutex_
};

}  // namespace fleetlet::streams
