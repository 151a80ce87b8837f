#include "api/upload_gate.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace fleetlet::api {

struct UploadGate::Waiter {
  explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
  boost::asio::steady_timer timer;
  bool granted = false;  // guarded by the gate's mutex_
};

http::Task<UploadGate::Slot> UploadGate::enter() {
  auto executor = co_await boost::asio::this_coro::executor;
  auto waiter = std::make_shared<Waiter>(executor);
  {
    std::lock_guard lock(mutex_);
    if (active_ < limit_ && waiting_.empty()) {
      ++active_;
      co_return Slot(this);
    }
    waiting_.push_back(waiter);
  }
  // Undoes the wait when this coroutine is destroyed before it got its slot.
  struct Leaving {
    UploadGate& gate;
    const std::shared_ptr<Waiter>& waiter;
    bool claimed = false;
    ~Leaving() {
      if (claimed) return;
      std::unique_lock lock(gate.mutex_);
      if (!waiter->granted) {
        std::erase(gate.waiting_, waiter);
        return;
      }
      lock.unlock();
      gate.leave();  // handed over but never used: pass it on
    }
  } leaving{*this, waiter};
  // leave() cancels the timer to wake us at once; the bounded wait only guards against a
  // cancel that ran before the wait began.
  constexpr auto kRecheck = std::chrono::milliseconds(50);
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (waiter->granted) break;
    }
    waiter->timer.expires_after(kRecheck);
    boost::system::error_code ignored;
    co_await waiter->timer.async_wait(
        boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }
  leaving.claimed = true;
  co_return Slot(this);
}

void UploadGate::leave() {
  std::shared_ptr<Waiter> next;
  {
    std::lock_guard lock(mutex_);
    if (waiting_.empty()) {
      --active_;
      return;
    }
    next = std::move(waiting_.front());
    waiting_.pop_front();
    next->granted = true;  // the slot goes straight to it: active_ stays
  }
  boost::asio::post(next->timer.get_executor(), [next] { next->timer.cancel(); });
}

std::size_t UploadGate::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

std::size_t UploadGate::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

}  // namespace fleetlet::api
