#pragma once
// LoopThread: one thread running a loop that sleeps between rounds, stopped promptly on
// destruction — its sleep returns false and its stop token (given to HTTP clients) cancels
// a request in flight.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

#include "cloud/poll_schedule.h"

namespace fleetlet::cloud {

using SleepFn = std::function<bool(Duration)>;

class LoopThread {
 public:
  LoopThread() = default;
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;
  ~LoopThread() { stop(); }

  // Stops the loop and waits for the thread to end. Idempotent.
  void stop() {
    stop_.request_stop();
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  std::stop_token token() const { return stop_.get_token(); }

  // Ends the loop's current (or next) sleep early, as if its delay had passed.
  void wake() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

  // Runs body(sleep) on the thread; sleep(d) waits d and returns false once stopping.
  void start(std::function<void(const SleepFn&)> body) {
    thread_ = std::thread([this, body = std::move(body)] {
      auto token = stop_.get_token();
      body([this, token](Duration delay) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, token, delay, [this] { return woken_; });
        woken_ = false;
        return !token.stop_requested();
      });
    });
  }

 private:
  std::stop_source stop_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool woken_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace fleetlet::cloud
