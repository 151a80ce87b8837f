#include "service/service.h"

#include <spdlog/spdlog.h>

#include "handoff/http_adapter.h"
#include "metrics/exposition.h"

namespace fleetlet::streams {

Result<std::unique_ptr<Service>> Service::start(ServiceOptions options) {
  std::unique_ptr<Service> s(new Service(std::move(options)));
  const ServiceOptions& o = s->options_;
  FLEETLET_ASSIGN_OR_RETURN(s->store_, EventStore::open({.dir = o.data_dir,
                                                         .source_id = o.source_id,
                                                         .synchronous = o.synchronous,
                                                         .group_wait = o.group_wait,
                                                         .sync_threads = o.sync_threads}));
  FLEETLET_ASSIGN_OR_RETURN(s->logs_, LogStore::open({.dir = o.data_dir,
                                                      .app_cap_bytes = o.log_app_cap_bytes,
                                                      .total_cap_bytes = o.log_total_cap_bytes}));
  s->trimmer_ = std::make_unique<MemoryTrimmer>(o.trimmer);
  s->hub_ = std::make_unique<Hub>();
  auto wake = std::make_shared<PumpWake>();
  s->store_->setCommitListener(
      [hub = s->hub_.get(), wake, source = s->store_->sourceId()](const auto& events) {
        hub->deliver(events);
        wake->committed(events, source);
      });
  if (!o.replication.urls.empty()) {
    // Before the listeners: a node whose log the hub holds more of restores it first.
    FLEETLET_ASSIGN_OR_RETURN(s->replicator_, Replicator::start(o.replication, *s->store_, wake));
  }

  http::ServerOptions server_options{.header_timeout = o.header_timeout,
                                     .body_read_timeout = o.io_timeout,
                                     .write_timeout = o.io_timeout};
  s->events_server_ = std::make_unique<http::Server>(server_options);
  s->console_server_ = std::make_unique<http::Server>(server_options);
  FLEETLET_RETURN_IF_ERROR(
      registerEventsApi(*s->events_server_, *s->store_, *s->hub_, *s->trimmer_, o.events));
  FLEETLET_RETURN_IF_ERROR(registerConsoleApi(*s->console_server_, *s->logs_, o.console));
  FLEETLET_RETURN_IF_ERROR(s->registerStatusRoutes());

  auto events = s->events_server_->listenTcp(o.events_address, o.events_port, "host");
  if (!events) return std::unexpected(events.error().wrap("events listener"));
  s->events_listener_ = *events;
  auto console = s->console_server_->listenTcp(o.console_address, o.console_port, "host");
  if (!console) return std::unexpected(console.error().wrap("console listener"));
  s->console_listener_ = *console;
  FLEETLET_RETURN_IF_ERROR(s->events_server_->start());
  FLEETLET_RETURN_IF_ERROR(s->console_server_->start());
  if (!o.handoff_socket.empty()) {
    auto receiver = handoff::startHttpHandoff(
        {.socket_path = o.handoff_socket},
        {{"events", s->events_server_.get()}, {"console", s->console_server_.get()}});
    if (!receiver) return std::unexpected(receiver.error().wrap("handoff socket"));
    s->handoff_ = std::move(*receiver);
    spdlog::info("[streams] handoff socket {}", o.handoff_socket.string());
  }
  spdlog::info("[streams] events listening on {}", s->events_listener_.address);
  spdlog::info("[streams] console listening on {}", s->console_listener_.address);
  return s;
}

Status Service::registerStatusRoutes() {
  using http::Request;
  using http::Response;
  using http::Task;
  Replicator* r = replicator_.get();
  FLEETLET_RETURN_IF_ERROR(
      events_server_->route("GET", "/replication", [r](Request&) -> Task<Response> {
        co_return Response::json(200, r != nullptr ? r->statusJson() : R"({"enabled":false})");
      }));
  FLEETLET_RETURN_IF_ERROR(
      events_server_->route("GET", "/metrics", [this](Request& request) -> Task<Response> {
        // Node-wide numbers: on the host listener only, not on the apps' handed-over ones.
        if (request.listenerTag() != "host") {
          co_return http::errorResponse(Error(ErrorCode::kNotFound, "no route for GET /metrics"));
        }
        auto job = [this] { return metricsText(); };
        auto text = co_await request.offload(std::move(job));
        co_return Response::text(200, std::move(text), metrics::kContentType);
      }));
  return {};
}

std::string Service::metricsText() const {
  using metrics::Type;
  metrics::TextWriter out;
  auto stats = store_->stats();
  auto one = [&out](const char* name, Type type, const char* help, double value) {
    if (out.family(name, type, help)) out.sample({}, value);
  };
  one("fleetlet_streams_published_events_total", Type::kCounter,
      "Events published on this node (by its apps and fleetletd).",
      static_cast<double>(stats.events));
  one("fleetlet_streams_ingested_events_total", Type::kCounter,
      "Events of other sources stored here through the site hub.",
      static_cast<double>(stats.ingested));
  if (out.family("fleetlet_streams_source_events_total", Type::kCounter,
                 "Events stored here per source (this node's and each replicated one).")) {
    for (const auto& [source, offset] : store_->offsets()) {
      out.sample({{"source", source}}, static_cast<double>(offset + 1));
    }
  }
  one("fleetlet_streams_subscribers", Type::kGauge, "Live subscriptions (WebSocket or HTTP).",
      static_cast<double>(hub_->subscriberCount()));
  one("fleetlet_streams_commits_total", Type::kCounter, "Group commits of the event store.",
      static_cast<double>(stats.commits));
  one("fleetlet_streams_commit_seconds_total", Type::kCounter,
      "Time spent in group commits (BEGIN..COMMIT, without the WAL's fdatasync).",
      static_cast<double>(stats.commit_us) / 1e6);
  one("fleetlet_streams_syncs_total", Type::kCounter,
      "fdatasyncs of the event log's WAL (each acknowledges every group committed before it).",
      static_cast<double>(stats.syncs));
  one("fleetlet_streams_sync_seconds_total", Type::kCounter,
      "Time spent in those fdatasyncs (concurrent ones each count).",
      static_cast<double>(stats.sync_us) / 1e6);
  one("fleetlet_streams_group_waits_total", Type::kCounter,
      "Group commits that waited for more publishers (--group-wait-us).",
      static_cast<double>(stats.group_waits));
  one("fleetlet_streams_group_wait_seconds_total", Type::kCounter, "Time of those waits.",
      static_cast<double>(stats.group_wait_us) / 1e6);
  one("fleetlet_streams_replication_enabled", Type::kGauge,
      "1 when site replication is configured (--nats).", replicator_ ? 1 : 0);
  if (replicator_) replicator_->writeMetrics(out);
  return out.take();
}

void Service::stop() {
  if (stopped_) return;
  stopped_ = true;
  handoff_.reset();
  events_server_->stop(std::chrono::seconds(2));
  console_server_->stop(std::chrono::seconds(2));
}

Service::~Service() {
  if (events_server_ && console_server_) stop();
}

}  // namespace fleetlet::streams
