#pragma once
// EventNotifier: the NodeService::watchEvents() registrations of one service. A service
// returns watch() from watchEvents() and calls notify() after each event it records.
//
// Thread-safety: every method may be called from any thread. Wake functions run under mu_, so
// a watch's destructor waits for a wake that is running, and none runs once it has returned.
// A wake must therefore not create or destroy watches of the same notifier.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "core/node_service.h"

namespace fleetlet::core {

class EventNotifier {
 public:
  EventNotifier() = default;
  EventNotifier(const EventNotifier&) = delete;
  EventNotifier& operator=(const EventNotifier&) = delete;

  // Registers `wake` until the returned watch is destroyed. The notifier must outlive it.
  std::unique_ptr<EventWatch> watch(std::function<void()> wake) {
    std::lock_guard lock(mu_);
    uint64_t id = next_id_++;
    wakes_.emplace(id, std::move(wake));
    return std::make_unique<Watch>(*this, id);
  }

  // Calls every registered wake, on this thread.
  void notify() {
    std::lock_guard lock(mu_);
    for (auto& [id, wake] : wakes_) wake();
  }

 private:
  class Watch : public EventWatch {
   public:
    Watch(EventNotifier& notifier, uint64_t id) : notifier_(notifier), id_(id) {}
    ~Watch() override {
      std::lock_guard lock(notifier_.mu_);
      notifier_.wakes_.erase(id_);
    }
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    EventNotifier& notifier_;
    uint64_t id_;
  };

  std::mutex mu_;
  uint64_t next_id_ = 0;                             // guarded by mu_
  std::map<uint64_t, std::function<void()>> wakes_;  // guarded by mu_
};

}  // namespace fleetlet::core
