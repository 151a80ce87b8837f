#include "service/blob_service.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <charconv>

#include "api/blob_api.h"
#include "events/event_outbox.h"
#include "handoff/http_adapter.h"
#include "metrics/exposition.h"
#include "remote/holder.h"
#include "retention/collector.h"

namespace fleetlet::service {

struct BlobService::Parts {
  std::unique_ptr<store::Clock> clock;
  // Set once the publisher exists; the store's event hook reads it.
  std::atomic<blobevents::EventPublisher*> publisher{nullptr};
  std::unique_ptr<store::BlobStore> store;
  std::unique_ptr<blobevents::EventPublisher> publisher_owner;
  std::unique_ptr<retention::RetentionCollector> collector;
  // The site: connection, the holder answering for our blobs, the fetcher of others'.
  std::unique_ptr<remote::HubConnection> hub;
  std::unique_ptr<remote::BlobHolder> holder;
  std::unique_ptr<remote::EventLogMetadata> metadata_log;  // outlives the fetcher
  std::unique_ptr<remote::BlobFetcher> fetcher;
  std::unique_ptr<api::BlobApi> api;
  std::unique_ptr<http::Server> server;
  // Destroyed before the server it routes to.
  std::unique_ptr<handoff::HandoffReceiver> handoff;
  bool stopped = false;
};

namespace {

// The exposition of GET /metrics (docs/observability.md).
std::string metricsText(const BlobService::Parts& parts) {
  using metrics::Type;
  metrics::TextWriter out;
  if (auto count = parts.store->blobCount();
      count && out.family("fleetlet_blobs_stored", Type::kGauge,
                          "Blobs stored (expired ones until the collector deletes them).")) {
    out.sample({}, static_cast<double>(*count));
  }
  if (out.family("fleetlet_blobs_stored_bytes", Type::kGauge,
                 "Bytes of stored content (a content shared by blobs counts once).")) {
    out.sample({}, static_cast<double>(parts.store->usedBytes()));
  }
  if (parts.store->quota() > 0 &&
      out.family("fleetlet_blobs_quota_bytes", Type::kGauge, "The store's quota (--quota).")) {
    out.sample({}, static_cast<double>(parts.store->quota()));
  }
  parts.api->writeMetrics(out);
  if (out.family("fleetlet_blobs_collector_runs_total", Type::kCounter,
                 "Retention collector passes completed.")) {
    out.sample({}, static_cast<double>(parts.collector->passes()));
  }
  return out.take();
}

}  // namespace

Result<std::unique_ptr<BlobService>> BlobService::start(ServiceOptions options,
                                                        std::unique_ptr<store::Clock> clock) {
  FLEETLET_ASSIGN_OR_RETURN(auto address, parseListenAddress(options.listen));
  if (!options.events_url.starts_with("http://")) {
    // The publisher speaks plain HTTP only (http/plain_client.h): say so now, not per event.
    return fail(ErrorCode::kInvalidArgument,
                "--events-url {}: must be an http:// URL (the event service on this node)",
                options.events_url);
  }
  auto parts = std::make_unique<Parts>();
  parts->clock = std::move(clock);
  Parts* raw = parts.get();

  store::StoreOptions store_options;
  store_options.data_dir = options.data_dir;
  store_options.quota = options.quota;
  store_options.source = options.source;
  store_options.direct_io = options.direct_io;
  store_options.on_event = [raw] {
    if (auto* publisher = raw->publisher.load()) publisher->notify();
  };
  auto opened = store::BlobStore::open(std::move(store_options), *parts->clock);
  if (!opened)
    return std::unexpected(opened.error().wrap("data dir {}", options.data_dir.string()));
  parts->store = std::move(*opened);

  blobevents::PublisherOptions publisher_options;
  publisher_options.events_url = options.events_url;
  while (publisher_options.events_url.ends_with('/')) publisher_options.events_url.pop_back();
  const std::string events_url = publisher_options.events_url;  // the publisher takes its copy
  auto connection = parts->store->openConnection();
  if (!connection) return std::unexpected(connection.error().wrap("event outbox"));
  parts->publisher_owner =
      blobevents::EventPublisher::create(std::move(*connection), std::move(publisher_options));
  parts->publisher = parts->publisher_owner.get();
  parts->publisher_owner->start();

  parts->collector =
      std::make_unique<retention::RetentionCollector>(*parts->store, options.collect_interval);
  parts->collector->start();

  if (options.hub) {
    remote::HubOptions hub_options = *options.hub;
    hub_options.node = options.source;
    auto hub = remote::HubConnection::connect(hub_options);
    if (!hub) return std::unexpected(hub.error().wrap("site hub"));
    parts->hub = std::move(*hub);
    auto holder = remote::BlobHolder::start(*parts->hub, *parts->store);
    if (!holder) return std::unexpected(holder.error().wrap("site hub"));
    parts->holder = std::move(*holder);
    remote::FetchOptions fetch = options.fetch;
    fetch.max_blob_size = options.max_blob_size;
    parts->metadata_log = std::make_unique<remote::EventLogMetadata>(events_url);
    parts->fetcher = std::make_unique<remote::BlobFetcher>(*parts->hub, *parts->store,
                                                           *parts->metadata_log, fetch);
  }

  http::ServerOptions server_options;
  server_options.cors_origin = options.cors_origin;
  // Browsers must take every response (blobs, JSON, errors) as the type it says it is.
  server_options.response_headers = {{"X-Content-Type-Options", "nosniff"}};
  parts->server = std::make_unique<http::Server>(server_options);
  parts->api = std::make_unique<api::BlobApi>(
      *parts->store, api::ApiOptions{.max_blob_size = options.max_blob_size,
                                     .remote = parts->fetcher.get(),
                                     .concurrent_uploads = options.concurrent_uploads});
  FLEETLET_RETURN_IF_ERROR(parts->api->registerRoutes(*parts->server));
  // Node-wide numbers: on the host listener only, not on the apps' handed-over ones.
  FLEETLET_RETURN_IF_ERROR(parts->server->route(
      "GET", "/metrics", [raw](http::Request& request) -> http::Task<http::Response> {
        if (request.listenerTag() != "host") {
          co_return http::errorResponse(Error(ErrorCode::kNotFound, "no route for GET /metrics"));
        }
        auto job = [raw] { return metricsText(*raw); };
        auto text = co_await request.offload(std::move(job));
        co_return http::Response::text(200, std::move(text), metrics::kContentType);
      }));
  auto listener = parts->server->listenTcp(address.first, address.second, "host");
  if (!listener) return std::unexpected(listener.error().wrap("listen on {}", options.listen));
  FLEETLET_RETURN_IF_ERROR(parts->server->start());
  if (options.handoff_socket) {
    auto receiver = handoff::startHttpHandoff({.socket_path = *options.handoff_socket},
                                              {{"blobs", parts->server.get()}});
    if (!receiver) {
      return std::unexpected(
          receiver.error().wrap("handoff socket {}", options.handoff_socket->string()));
    }
    parts->handoff = std::move(*receiver);
  }
  return std::unique_ptr<BlobService>(new BlobService(std::move(parts)));
}

BlobService::BlobService(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

BlobService::~BlobService() { stop(); }

std::vector<http::ListenerInfo> BlobService::listeners() const {
  return parts_->server->listeners();
}

http::Server& BlobService::server() { return *parts_->server; }
store::BlobStore& BlobService::store() { return *parts_->store; }
remote::BlobFetcher* BlobService::fetcher() { return parts_->fetcher.get(); }

void BlobService::stop() {
  if (parts_->stopped) return;
  parts_->stopped = true;
  // Requests waiting for a fetch are answered (502) while the server still runs.
  if (parts_->fetcher) parts_->fetcher->stop();
  parts_->handoff.reset();
  parts_->server->stop(std::chrono::seconds(5));
  parts_->holder.reset();
  parts_->fetcher.reset();
  parts_->hub.reset();
  parts_->collector.reset();
  parts_->publisher = nullptr;
  parts_->publisher_owner.reset();
}

Result<uint64_t> parseByteSize(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return fail(ErrorCode::kInvalidArgument, "\"{}\" is not a size such as 512Mi or 2G", text);
  }
  std::string suffix(end, text.data() + text.size());
  if (suffix.ends_with('B') || suffix.ends_with('b')) suffix.pop_back();
  uint64_t scale = 1;
  if (suffix.empty()) {
    scale = 1;
  } else if (suffix == "K" || suffix == "k") {
    scale = 1000ULL;
  } else if (suffix == "M") {
    scale = 1000ULL * 1000;
  } else if (suffix == "G") {
    scale = 1000ULL * 1000 * 1000;
  } else if (suffix == "T") {
    scale = 1000ULL * 1000 * 1000 * 1000;
  } else if (suffix == "Ki") {
    scale = 1ULL << 10;
  } else if (suffix == "Mi") {
    scale = 1ULL << 20;
  } else if (suffix == "Gi") {
    scale = 1ULL << 30;
  } else if (suffix == "Ti") {
    scale = 1ULL << 40;
  } else {
    return fail(ErrorCode::kInvalidArgument, "\"{}\" has an unknown size unit", text);
  }
  if (value > UINT64_MAX / scale) {
    return fail(ErrorCode::kInvalidArgument, "\"{}\" is too large", text);
  }
  return value * scale;
}

Result<std::pair<std::string, uint16_t>> parseListenAddress(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "listen address \"{}\" has no :PORT", text);
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  uint16_t port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || ec != std::errc() || end != port_text.data() + port_text.size()) {
    return fail(ErrorCode::kInvalidArgument, "listen address \"{}\" is not ADDRESS:PORT", text);
  }
  return std::make_pair(std::string(host), port);
}

}  // namespace fleetlet::service
