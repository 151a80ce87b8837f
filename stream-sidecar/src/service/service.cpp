#include "service/service.h"

#include <spdlog/spdlog.h>

#include "handoff/http_adapter.h"

namespace fleetlet::streams {

Result<std::unique_ptr<Service>> Service::start(ServiceOptions options) {
  std::unique_ptr<Service> s(new Service(std::move(options)));
  const ServiceOptions& o = s->options_;
  FLEETLET_ASSIGN_OR_RETURN(s->store_, EventStore::open({.dir = o.data_dir,
                                                         .source_id = o.source_id,
                                                         .synchronous = o.synchronous,
                                                         .group_wait = o.group_wait}));
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
  FLEETLET_RETURN_IF_ERROR(events_server_->route(
      "GET", "/metrics", [r, store = store_.get()](Request&) -> Task<Response> {
        auto stats = store->stats();
        std::string out = fmt::format(
            "# TYPE fleetlet_streams_commits_total counter\nfleetlet_streams_commits_total {}\n"
            "# TYPE fleetlet_streams_published_events_total counter\n"
            "fleetlet_streams_published_events_total {}\n"
            "# TYPE fleetlet_streams_ingested_events_total counter\n"
            "fleetlet_streams_ingested_events_total {}\n"
            "# TYPE fleetlet_streams_commit_seconds_total counter\n"
            "fleetlet_streams_commit_seconds_total {:.6f}\n"
            "# TYPE fleetlet_streams_group_waits_total counter\n"
            "fleetlet_streams_group_waits_total {}\n"
            "# TYPE fleetlet_streams_group_wait_seconds_total counter\n"
            "fleetlet_streams_group_wait_seconds_total {:.6f}\n",
            stats.commits, stats.events, stats.ingested, static_cast<double>(stats.commit_us) / 1e6,
            stats.group_waits, static_cast<double>(stats.group_wait_us) / 1e6);
        if (r != nullptr) out += r->metricsText();
        co_return Response::text(200, std::move(out), "text/plain; version=0.0.4");
      }));
  return {};
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
