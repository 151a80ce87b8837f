#pragma once
// HeartbeatSchedule: the heartbeat contract of one WebSocket subscriber (docs/streams.md). A
// heartbeat is due every `interval`; the client must acknowledge each one before the next is
// due. The deadline holds whether or not the heartbeat could be sent: a client that stops
// reading blocks the server's writes, never receives its heartbeat, and is cut off all the
// same.
//
// Concurrency: a plain value, used on one connection's strand. Time is passed in.

#include <chrono>
#include <cstdint>

namespace fleetlet::streams {

class HeartbeatSchedule {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // The first heartbeat is due at `start + interval`.
  HeartbeatSchedule(TimePoint start, std::chrono::milliseconds interval)
      : interval_(interval), due_at_(start + interval) {}

  // Whether a heartbeat should be sent at `now` (one is due and none is outstanding).
  bool sendDue(TimePoint now) const { return !outstanding_ && now >= due_at_; }
  // Heartbeat `seq` was handed to the socket at `now`; the next is due an interval later.
  void sent(std::uint64_t seq, TimePoint now);
  // The client acknowledged heartbeat `seq`. Only an ack of the outstanding heartbeat (or a
  // later seq) counts: acks cannot be given in advance.
  void acked(std::uint64_t seq);

  // When the owed heartbeat must have been acknowledged: the outstanding one by the time the
  // next is due; an unsent one (due at T) by T + interval.
  TimePoint deadline() const { return outstanding_ ? due_at_ : due_at_ + interval_; }
  // Whether the client missed its deadline at `now`; it should then be disconnected.
  bool expired(TimePoint now) const { return now >= deadline(); }
  // When the next heartbeat is (or was) due.
  TimePoint nextDue() const { return due_at_; }

 private:
  std::chrono::milliseconds interval_;
  TimePoint due_at_;
  std::uint64_t last_sent_ = 0;  // seq of the last heartbeat sent
  bool outstanding_ = false;     // the last heartbeat sent is not acknowledged yet
};

}  // namespace fleetlet::streams
