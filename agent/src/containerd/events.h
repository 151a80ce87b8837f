#pragma once
// Subscription to containerd's event stream that survives containerd restarts.
//
// Threading: an EventSubscription owns one thread; callbacks run on it and must not block for
// long. Destroying the subscription stops the thread (it cancels the stream and joins).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "containerd/connection.h"

namespace fleetlet::containerd {

struct Event {
  std::string ns;
  std::string topic;  // e.g. "/tasks/exit"
  std::string type;   // the payload's proto name, e.g. "containerd.events.TaskExit"
  std::chrono::system_clock::time_point timestamp;
  // The container id for task and container events, the image name for image events.
  std::string subject;
  uint32_t pid = 0;
  std::optional<uint32_t> exit_status;  // TaskExit and TaskDelete
};

struct EventCallbacks {
  std::function<void(const Event&)> on_event;
  // Called each time the stream is (re)established, before its first event: events may have
  // been missed while disconnected, so owners resynchronise here.
  std::function<void()> on_subscribed;
};

class EventSubscription {
 public:
  // Subscribes with containerd filters (ORed; commas inside one filter AND), e.g.
  // `namespace==fleetlet,topic~="^/tasks/"`. Never fails: while containerd is unreachable the
  // thread retries with backoff from 100 ms up to 2 s.
  static std::unique_ptr<EventSubscription> start(std::shared_ptr<Connection> connection,
                                                  std::vector<std::string> filters,
                                                  EventCallbacks callbacks);
  EventSubscription(const EventSubscription&) = delete;
  EventSubscription& operator=(const EventSubscription&) = delete;
  ~EventSubscription();

  // How many times the stream has been established so far.
  int subscriptions() const { return subscriptions_.load(); }
  // Blocks until the stream has been established at least `count` times, or the timeout.
  bool waitSubscribed(int count, std::chrono::milliseconds timeout);

 private:
  EventSubscription(std::shared_ptr<Connection> connection, std::vector<std::string> filters,
                    EventCallbacks callbacks);
  void run();

  std::shared_ptr<Connection> connection_;
  std::vector<std::string> filters_;
  EventCallbacks callbacks_;
  std::atomic<int> subscriptions_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                  // guarded by mu_
  grpc::ClientContext* active_ = nullptr;  // guarded by mu_; the stream to cancel on stop
  std::thread thread_;
};

}  // namespace fleetlet::containerd
