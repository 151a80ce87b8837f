#pragma once
// Publisher: the one owner of event delivery to containerd.
//
// Events go, in the order publish() was called, to containerd's ttrpc Events/Forward on
// $TTRPC_ADDRESS, wrapped in an Envelope{timestamp, namespace, topic, event Any}. While
// containerd is down or restarting, events queue (up to kMaxQueued; the oldest are dropped
// beyond that) and delivery is retried with a backoff, reconnecting each time. Order holds
// across retries: an event is sent only after every earlier one was accepted.
//
// Threads: one sender thread; publish() and drain() are safe from any thread.

#include <google/protobuf/message_lite.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "error/error.h"
#include "ttrpc/frame.h"

namespace fleetlet::shim {

// Sends one serialized ForwardRequest; the seam that tests replace.
using ForwardFn = std::function<ttrpc::RpcResult<void>(const std::string& request)>;

// A ForwardFn over a ttrpc connection to `address`, reconnecting after failures.
ForwardFn ttrpcForwarder(std::string address, std::string ns);

class Publisher {
 public:
  static constexpr std::size_t kMaxQueued = 1024;

  Publisher(std::string ns, ForwardFn forward,
            std::chrono::milliseconds max_backoff = std::chrono::seconds(2));
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  // Stops the sender; undelivered events are lost (call drain() first).
  ~Publisher();

  // Queues `event` (an Any of `type_name`, see event_types.h) under `topic` (e.g.
  // "/tasks/exit"), stamped now. Never blocks on I/O.
  void publish(std::string topic, std::string_view type_name,
               const google::protobuf::MessageLite& event);
  // Waits until the queue is empty or `limit` passes; true when empty.
  bool drain(std::chrono::milliseconds limit);

 private:
  void loop();

  std::string ns_;
  ForwardFn forward_;
  std::chrono::milliseconds max_backoff_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // serialized ForwardRequests; guarded by mu_
  bool sending_ = false;           // guarded by mu_: the front is being sent
  bool stop_ = false;              // guarded by mu_
  std::thread thread_;
};

}  // namespace fleetlet::shim
