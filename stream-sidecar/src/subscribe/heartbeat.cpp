#include "subscribe/heartbeat.h"

namespace fleetlet::streams {

void HeartbeatSchedule::sent(std::uint64_t seq, TimePoint now) {
  last_sent_ = seq;
  outstanding_ = true;
  due_at_ = now + interval_;
}

void HeartbeatSchedule::acked(std::uint64_t seq) {
  if (outstanding_ && seq >= last_sent_) outstanding_ = false;
}

}  // namespace fleetlet::streams
