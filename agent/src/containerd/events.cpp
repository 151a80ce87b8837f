#include "containerd/events.h"

#include <spdlog/spdlog.h>

#include "containerd/proto_convert.h"
#include "github.com/containerd/containerd/api/events/container.pb.h"
#include "github.com/containerd/containerd/api/events/image.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"

namespace fleetlet::containerd {
namespace {

namespace api = ::containerd::services::events::v1;
namespace ev = ::containerd::events;

// Fills the fields of `out` that the payload carries. Unknown payload types keep only the
// envelope's fields.
void decodePayload(const google::protobuf::Any& any, Event& out) {
  auto slash = any.type_url().rfind('/');
  out.type = slash == std::string::npos ? any.type_url() : any.type_url().substr(slash + 1);
  const std::string& t = out.type;
  if (t == "containerd.events.TaskExit") {
    ev::TaskExit m;
    if (m.ParseFromString(any.value())) {
      out.subject = m.container_id();
      out.pid = m.pid();
      out.exit_status = m.exit_status();
    }
  } else if (t == "containerd.events.TaskDelete") {
    ev::TaskDelete m;
    if (m.ParseFromString(any.value())) {
      out.subject = m.container_id();
      out.pid = m.pid();
      out.exit_status = m.exit_status();
    }
  } else if (t == "containerd.events.TaskStart") {
    ev::TaskStart m;
    if (m.ParseFromString(any.value())) {
      out.subject = m.container_id();
      out.pid = m.pid();
    }
  } else if (t == "containerd.events.TaskCreate") {
    ev::TaskCreate m;
    if (m.ParseFromString(any.value())) {
      out.subject = m.container_id();
      out.pid = m.pid();
    }
  } else if (t == "containerd.events.TaskOOM") {
    ev::TaskOOM m;
    if (m.ParseFromString(any.value())) out.subject = m.container_id();
  } else if (t == "containerd.events.ContainerCreate") {
    ev::ContainerCreate m;
    if (m.ParseFromString(any.value())) out.subject = m.id();
  } else if (t == "containerd.events.ContainerDelete") {
    ev::ContainerDelete m;
    if (m.ParseFromString(any.value())) out.subject = m.id();
  } else if (t == "containerd.services.images.v1.ImageCreate") {
    ::containerd::services::images::v1::ImageCreate m;
    if (m.ParseFromString(any.value())) out.subject = m.name();
  } else if (t == "containerd.services.images.v1.ImageUpdate") {
    ::containerd::services::images::v1::ImageUpdate m;
    if (m.ParseFromString(any.value())) out.subject = m.name();
  } else if (t == "containerd.services.images.v1.ImageDelete") {
    ::containerd::services::images::v1::ImageDelete m;
    if (m.ParseFromString(any.value())) out.subject = m.name();
  }
}

}  // namespace

std::unique_ptr<EventSubscription> EventSubscription::start(std::shared_ptr<Connection> connection,
                                                            std::vector<std::string> filters,
                                                            EventCallbacks callbacks) {
  std::unique_ptr<EventSubscription> sub(
      new EventSubscription(std::move(connection), std::move(filters), std::move(callbacks)));
  sub->thread_ = std::thread([s = sub.get()] { s->run(); });
  return sub;
}

EventSubscription::EventSubscription(std::shared_ptr<Connection> connection,
                                     std::vector<std::string> filters, EventCallbacks callbacks)
    : connection_(std::move(connection)),
      filters_(std::move(filters)),
      callbacks_(std::move(callbacks)) {}

EventSubscription::~EventSubscription() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  cv_.notify_all();
  thread_.join();
}

bool EventSubscription::waitSubscribed(int count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return subscriptions_.load() >= count; });
}

void EventSubscription::run() {
  auto stub = api::Events::NewStub(connection_->channel());
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    grpc::ClientContext ctx;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      active_ = &ctx;
    }
    api::SubscribeRequest req;
    for (const auto& f : filters_) req.add_filters(f);
    // Wait for containerd to be reachable, then hold the stream open.
    ctx.set_wait_for_ready(true);
    auto reader = stub->Subscribe(&ctx, req);
    bool connected = connection_->channel()->WaitForConnected(std::chrono::system_clock::now() +
                                                              std::chrono::seconds(2));
    if (connected) {
      backoff = std::chrono::milliseconds(100);
      if (callbacks_.on_subscribed) callbacks_.on_subscribed();
      {
        std::lock_guard lock(mu_);
        ++subscriptions_;
      }
      cv_.notify_all();
      ::containerd::services::events::v1::Envelope envelope;
      while (reader->Read(&envelope)) {
        Event e{.ns = envelope.namespace_(),
                .topic = envelope.topic(),
                .timestamp = fromProto(envelope.timestamp())};
        decodePayload(envelope.event(), e);
        if (callbacks_.on_event) callbacks_.on_event(e);
      }
    } else {
      ctx.TryCancel();
    }
    auto status = reader->Finish();
    std::unique_lock lock(mu_);
    active_ = nullptr;
    if (stopping_) return;
    spdlog::debug("containerd event stream ended ({}); resubscribing in {} ms",
                  status.error_message(), backoff.count());
    cv_.wait_for(lock, backoff, [&] { return stopping_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace fleetlet::containerd
