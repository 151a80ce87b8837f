#pragma once
// UploadGate: at most `limit` uploads at a time hold body buffers (two 1 MiB batches and two
// 1 MiB staging chunks each, resident as far as the body fills them); the others wait for a
// slot before they read their body, which stays in their sockets meanwhile (TCP backpressure).
// Twenty apps posting a 64 KiB photo at the same instant would otherwise touch 20 × 128 KiB at
// once — a quarter of the service's 10 MiB budget (DESIGN.md) — for no speed: two cores hash
// and write at most two uploads at a time.
//
// Trade-off: a client that trickles its body holds its slot for as long as the server lets it
// (the server's stall timeout); `limit` such clients delay everyone else's uploads meanwhile.
//
// Thread-safe. Waiters are served in arrival order. A waiting coroutine that is destroyed (its
// client left, the server stopped) gives up its place, or passes on a slot handed to it.

#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "http/server.h"

namespace fleetlet::api {

class UploadGate {
 public:
  // Frees its slot on destruction.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (gate_ != nullptr) gate_->leave();
    }

   private:
    friend class UploadGate;
    explicit Slot(UploadGate* gate) : gate_(gate) {}
    UploadGate* gate_;
  };

  explicit UploadGate(std::size_t limit) : limit_(limit == 0 ? 1 : limit) {}

  // Waits (without a thread) until a slot is free; runs on the calling coroutine's executor.
  http::Task<Slot> enter();

  // Uploads holding a slot and uploads waiting for one (for tests and logs).
  std::size_t active() const;
  std::size_t waiting() const;

 private:
  struct Waiter;
  void leave();

  const std::size_t limit_;
  mutable std::mutex mutex_;
  std::size_t active_ = 0;                       // guarded by mutex_
  std::deque<std::shared_ptr<Waiter>> waiting_;  // guarded by mutex_
};

}  // namespace fleetlet::api
