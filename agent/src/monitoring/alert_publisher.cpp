#include "monitoring/alert_publisher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace fleetlet::monitoring {

void AlertPublisher::enqueue(std::string body) {
  if (queue_.size() >= options_.max_queued && !queue_.empty()) {
    queue_.pop_front();
    ++dropped_;
    spdlog::warn("alerts: the event service queue is full ({} events); the oldest was dropped",
                 options_.max_queued);
  }
  queue_.push_back(std::move(body));
}

size_t AlertPublisher::flush(Clock::time_point now) {
  if (queue_.empty() || now < retry_at_) return 0;
  size_t sent = 0;
  while (!queue_.empty()) {
    auto status = poster_.post(queue_.front());
    if (status && *status / 100 == 2) {
      queue_.pop_front();
      ++delivered_;
      ++sent;
      backoff_ = std::chrono::milliseconds(0);
      if (!last_error_.empty()) spdlog::info("alerts: the event service takes events again");
      last_error_.clear();
      continue;
    }
    if (status && *status / 100 == 4 && *status != 408 && *status != 429) {
      spdlog::warn("alerts: the event service refused an alert event (HTTP {}); dropped", *status);
      queue_.pop_front();
      ++refused_;
      continue;
    }
    ++failures_;
    backoff_ = backoff_.count() == 0 ? options_.first_backoff
                                     : std::min(backoff_ * 2, options_.max_backoff);
    retry_at_ = now + backoff_;
    std::string why = status ? fmt::format("HTTP {}", *status) : status.error().message();
    if (why != last_error_) {
      spdlog::warn("alerts: publishing to the event service: {}; {} events wait, retrying", why,
                   queue_.size());
    }
    last_error_ = std::move(why);
    break;
  }
  return sent;
}

}  // namespace fleetlet::monitoring
