#include "shim/publisher.h"

#include <google/protobuf/any.pb.h>

#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "shim/proto_time.h"
#include "ttrpc/client.h"

namespace fleetlet::shim {

namespace events = containerd::services::events::ttrpc::v1;

ForwardFn ttrpcForwarder(std::string address, std::string ns) {
  struct State {
    std::mutex mu;
    std::unique_ptr<ttrpc::Client> client;
  };
  auto state = std::make_shared<State>();
  return [state, address = std::move(address),
          ns = std::move(ns)](const std::string& request) -> ttrpc::RpcResult<void> {
    std::lock_guard lock(state->mu);
    if (!state->client) {
      auto client = ttrpc::Client::connect(address);
      if (!client) return std::unexpected(ttrpc::RpcStatus::fromError(client.error()));
      state->client = std::move(*client);
    }
    auto reply = state->client->call(
        "containerd.services.events.ttrpc.v1.Events", "Forward", request,
        {.metadata = {{"containerd-namespace-ttrpc", ns}}, .timeout = std::chrono::seconds(10)});
    if (!reply) {
      if (reply.error().code == ttrpc::StatusCode::kUnavailable ||
          reply.error().code == ttrpc::StatusCode::kDeadlineExceeded) {
        state->client.reset();
      }
      return std::unexpected(reply.error());
    }
    return {};
  };
}

Publisher::Publisher(std::string ns, ForwardFn forward, std::chrono::milliseconds max_backoff)
    : ns_(std::move(ns)), forward_(std::move(forward)), max_backoff_(max_backoff) {
  thread_ = std::thread([this] { loop(); });
}

Publisher::~Publisher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Publisher::publish(std::string topic, std::string_view type_name,
                        const google::protobuf::MessageLite& event) {
  events::ForwardRequest request;
  auto* envelope = request.mutable_envelope();
  setTimestamp(envelope->mutable_timestamp(), std::chrono::system_clock::now());
  envelope->set_namespace_(ns_);
  envelope->set_topic(std::move(topic));
  envelope->mutable_event()->set_type_url(std::string(type_name));
  event.SerializeToString(envelope->mutable_event()->mutable_value());
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) queue_.pop_front();
    queue_.push_back(request.SerializeAsString());
  }
  cv_.notify_all();
}

bool Publisher::drain(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return queue_.empty() && !sending_; });
}

void Publisher::loop() {
  auto backoff = std::chrono::milliseconds(50);
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::string request = queue_.front();
    sending_ = true;
    lock.unlock();
    auto sent = forward_(request);
    lock.lock();
    sending_ = false;
    if (sent) {
      // publish() may have dropped the front meanwhile (queue full); pop only our event.
      if (!queue_.empty() && queue_.front() == request) queue_.pop_front();
      backoff = std::chrono::milliseconds(50);
      cv_.notify_all();
      continue;
    }
    // containerd is away: retry the same event later, in order.
    cv_.wait_for(lock, backoff, [&] { return stop_; });
    backoff = std::min(backoff * 2, max_backoff_);
  }
}

}  // namespace fleetlet::shim
