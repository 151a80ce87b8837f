#pragma once
// AlertPublisher: alert events to the event service (alerts.eventsUrl) without losing them
// while the service is away. Bodies (alertPublishBody) wait in a bounded queue, oldest first;
// flush() posts them in order until one fails, and then not again until a backoff has passed
// (1 s doubling to 60 s, reset by a success), so a restarting service gets every alert once it
// is back, in order. When the queue is full the oldest body is dropped and counted (dropped()):
// with the default 1000 bodies and one alert event per rule and subject per continueEvery, the
// service may be away for hours before anything is lost.
//
// A post is a success on 2xx. A 4xx other than 408/429 means the service will never take that
// body: it is dropped (counted in refused()) and the next is posted. Anything else (no answer,
// 5xx) is retried.
//
// Not thread-safe: the alerts loop owns it. Time is passed in (tests inject it).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "error/error.h"

namespace fleetlet::monitoring {

// Posts one body to the event service: the HTTP status, or kUnavailable without an answer.
class EventPoster {
 public:
  virtual ~EventPoster() = default;
  virtual Result<long> post(const std::string& body) = 0;
};

struct AlertPublisherOptions {
  size_t max_queued = 1000;
  std::chrono::milliseconds first_backoff{std::chrono::seconds(1)};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(60)};
};

class AlertPublisher {
 public:
  using Clock = std::chrono::steady_clock;
  explicit AlertPublisher(EventPoster& poster, AlertPublisherOptions options = {})
      : poster_(poster), options_(options) {}

  // Queues one body (dropping the oldest when full).
  void enqueue(std::string body);
  // Posts what waits, in order, unless a backoff is running at `now`. Returns how many were
  // delivered.
  size_t flush(Clock::time_point now);

  size_t queued() const { return queue_.size(); }
  uint64_t delivered() const { return delivered_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t refused() const { return refused_; }
  uint64_t failures() const { return failures_; }

 private:
  EventPoster& poster_;
  AlertPublisherOptions options_;
  std::deque<std::string> queue_;
  Clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  uint64_t delivered_ = 0;
  uint64_t dropped_ = 0;
  uint64_t refused_ = 0;
  uint64_t failures_ = 0;
  std::string last_error_;  // logged once until it changes
};

}  // namespace fleetlet::monitoring
