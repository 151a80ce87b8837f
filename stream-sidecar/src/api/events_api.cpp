#include "api/events_api.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include "events/requests.h"
#include "handoff/http_adapter.h"
#include "http/websocket.h"
#include "json/json.h"

namespace fleetlet::streams {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using http::StreamWriter;
using http::Task;

using PublishResult = Result<std::vector<PublishReceipt>>;

// Hands the events to the group-commit writer and resumes on this coroutine's executor once
// they are durable. No thread blocks while waiting.
Task<PublishResult> awaitPublish(EventStore& store, std::string app, std::vector<NewEvent> events) {
  asio::any_io_executor current = co_await asio::this_coro::executor;
  asio::any_io_executor ex = asio::prefer(current, asio::execution::outstanding_work.tracked);
  auto initiation = [&store, &app, &events, ex](auto handler) mutable {
    using Handler = decltype(handler);
    auto shared = std::make_shared<Handler>(std::move(handler));
    store.publish(std::move(app), std::move(events), [shared, ex](PublishResult result) {
      auto boxed = std::make_shared<PublishResult>(std::move(result));
      asio::post(ex, [shared, boxed]() mutable { std::move (*shared)(boxed); });
    });
  };
  auto boxed = co_await asio::async_initiate<const asio::use_awaitable_t<>,
                                             void(std::shared_ptr<PublishResult>)>(
      std::move(initiation), asio::use_awaitable);
  co_return std::move(*boxed);
}

std::string errorLine(std::string_view code, std::string_view message) {
  return Json{{"type", "error"}, {"code", code}, {"message", message}}.dump(
             -1, ' ', false, Json::error_handler_t::replace) +
         "\n";
}

Task<void> streamQuery(StreamWriter& w, EventStore& store, QuerySpec spec, std::size_t page_size) {
  Cursor cursor;
  while (w.isOpen()) {
    auto job = [&store, &spec, &cursor, page_size] {
      return store.readPage(spec, cursor, page_size);
    };
    auto page = co_await w.offload(std::move(job));
    if (!page) {
      spdlog::warn("[events] query failed: {}", page.error().describe());
      co_await w.write(errorLine("ERR_INTERNAL", page.error().message()));
      co_return;
    }
    std::string out;
    for (const auto& e : *page) appendEventJson(e, out);
    if (!(co_await w.write(out))) co_return;
    if (page->size() < page_size) co_return;
  }
}

// Catch-up from storage, then live events; see the seam argument in docs/streams.md.
Task<void> streamSubscription(StreamWriter& w, EventStore& store, Hub& hub,
                              SubscribeRequest request, const EventsApiOptions& options) {
  auto timer =
      std::make_shared<asio::steady_timer>(w.executor(), asio::steady_timer::time_point::max());
  std::weak_ptr<asio::steady_timer> weak = timer;
  asio::any_io_executor ex = w.executor();
  auto wake = [weak, ex] {
    asio::post(ex, [weak] {
      if (auto t = weak.lock()) t->cancel();
    });
  };
  // Register for live events before reading the catch-up bound: every event is then in the
  // catch-up range or in the live queue (or both; duplicates are dropped by offset).
  auto subscription = hub.subscribe(request.filters, options.subscriber_queue_limit, wake);
  w.onClose([weak] {
    if (auto t = weak.lock()) t->cancel();
  });
  OffsetMap delivered = request.lower_bound;
  // Lamport order keeps each source's events in offset order and walks the
  // (semantics|name, lamport) indexes instead of sorting every match per page.
  QuerySpec spec{request.filters, Order::kLamport, request.lower_bound, store.offsets()};
  auto record = [&delivered](const Event& e) {
    auto [it, inserted] = delivered.try_emplace(e.source, e.offset);
    if (inserted) return true;
    if (e.offset <= it->second) return false;
    it->second = e.offset;
    return true;
  };

  // Catch up from storage. Should the live queue overflow meanwhile (a long catch-up under
  // heavy publishing), storage still has everything: register again, then catch up from
  // what was delivered to the new present.
  while (w.isOpen()) {
    Cursor cursor;
    while (w.isOpen()) {
      auto job = [&store, &spec, &cursor, &options] {
        return store.readPage(spec, cursor, options.page_size);
      };
      auto page = co_await w.offload(std::move(job));
      if (!page) {
        co_await w.write(errorLine("ERR_INTERNAL", page.error().message()));
        co_return;
      }
      std::string out;
      for (const auto& e : *page) {
        if (record(e)) appendEventJson(e, out);
      }
      if (!(co_await w.write(out))) co_return;
      if (page->size() < options.page_size) break;
    }
    if (!subscription->overflowed()) break;
    spdlog::info("[events] live queue overflowed during a catch-up; catching up again");
    subscription = hub.subscribe(request.filters, options.subscriber_queue_limit, wake);
    spec.lower = delivered;
    spec.upper = store.offsets();
  }

  while (w.isOpen()) {
    auto batch = subscription->take();
    if (batch.empty()) {
      if (subscription->overflowed()) {
        co_await w.write(errorLine(
            kTooSlowCode, fmt::format("subscriber fell more than {} events behind; subscribe "
                                      "again with lowerBound set to the offsets received",
                                      options.subscriber_queue_limit)));
        co_return;
      }
      boost::system::error_code ec;
      timer->expires_at(asio::steady_timer::time_point::max());
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    std::string out;
    for (const auto& e : batch) {
      if (record(*e)) appendEventJson(*e, out);
    }
    if (!(co_await w.write(out))) co_return;
  }
}

// State shared by a WebSocket's writer (the handler) and its reader coroutine; both run on the
// connection's strand.
struct WsState {
  explicit WsState(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool reader_done = false;
  std::uint64_t acked = 0;  // highest heartbeat seq acknowledged
};

// Reads heartbeat acks until the socket closes; wakes the writer when done.
Task<void> readWebSocketAcks(http::WebSocket& ws, std::shared_ptr<WsState> state) {
  while (true) {
    auto message = co_await ws.read();
    if (!message) break;
    auto json = Json::parse(*message, nullptr, false);
    if (json.is_object() && json.value("type", "") == "heartbeat-ack") {
      auto seq = json.find("seq");
      if (seq != json.end() && seq->is_number_unsigned()) {
        state->acked = std::max(state->acked, seq->get<std::uint64_t>());
      }
    }
  }
  state->reader_done = true;
  state->timer.cancel();
}

// Writes a WebSocket's messages: events (deduplicated by offset per source) and heartbeats,
// numbered by one seq counter. On the connection's strand.
class WsSender {
 public:
  WsSender(http::WebSocket& ws, const WsState& state, OffsetMap delivered,
           std::chrono::milliseconds interval)
      : ws_(ws),
        state_(state),
        delivered_(std::move(delivered)),
        interval_(interval),
        next_heartbeat_(std::chrono::steady_clock::now() + interval) {}

  // Sends the events not delivered yet; false once the socket failed.
  Task<bool> send(const std::vector<const Event*>& events) {
    for (const Event* e : events) {
      auto [it, inserted] = delivered_.try_emplace(e->source, e->offset);
      if (!inserted) {
        if (e->offset <= it->second) continue;
        it->second = e->offset;
      }
      std::string line = eventJson(*e);
      line.pop_back();  // the NDJSON newline
      std::string message = fmt::format(R"({{"seq":{},"event":{}}})", ++seq_, line);
      auto written = co_await ws_.write(message);
      if (!written) co_return false;
    }
    co_return true;
  }

  // Sends a heartbeat when one is due; false when the previous one was not acknowledged
  // within the interval (or the socket failed).
  Task<bool> heartbeat() {
    if (std::chrono::steady_clock::now() < next_heartbeat_) co_return true;
    if (last_heartbeat_ != 0 && state_.acked < last_heartbeat_) co_return false;
    last_heartbeat_ = ++seq_;
    next_heartbeat_ = std::chrono::steady_clock::now() + interval_;
    std::string message = fmt::format(R"({{"type":"heartbeat","seq":{}}})", last_heartbeat_);
    auto written = co_await ws_.write(message);
    co_return written.has_value();
  }

  std::chrono::steady_clock::time_point nextHeartbeat() const { return next_heartbeat_; }

 private:
  http::WebSocket& ws_;
  const WsState& state_;
  OffsetMap delivered_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point next_heartbeat_;
  std::uint64_t seq_ = 0;
  std::uint64_t last_heartbeat_ = 0;  // seq of the last heartbeat sent
};

// The WebSocket push extension: one subscribe request, then {"seq":n,"event":{...}} messages
// and heartbeats (seq counts every message of the socket from 1).
Task<void> runWebSocket(http::WebSocket& ws, EventStore& store, Hub& hub,
                        const EventsApiOptions& options) {
  auto first = co_await ws.read();
  if (!first) co_return;
  auto request = parseSubscribeRequest(*first);
  if (!request) {
    // Built outside co_await: GCC 12 miscompiles initializer lists inside co_await expressions.
    std::string refusal = errorLine("ERR_BAD_REQUEST", request.error().message());
    co_await ws.write(refusal);
    co_await ws.close();
    co_return;
  }
  auto state = std::make_shared<WsState>(ws.executor());
  asio::co_spawn(ws.executor(), readWebSocketAcks(ws, state), asio::detached);
  std::weak_ptr<WsState> weak = state;
  asio::any_io_executor ex = ws.executor();
  auto wake = [weak, ex] {
    asio::post(ex, [weak] {
      if (auto s = weak.lock()) s->timer.cancel();
    });
  };
  auto subscription = hub.subscribe(request->filters, options.subscriber_queue_limit, wake);
  QuerySpec spec{request->filters, Order::kLamport, request->lower_bound, store.offsets()};
  WsSender sender(ws, *state, request->lower_bound, options.heartbeat_interval);
  bool ok = true;
  Cursor cursor;
  while (ok && !state->reader_done) {
    auto job = [&store, &spec, &cursor, &options] {
      return store.readPage(spec, cursor, options.page_size);
    };
    auto page = co_await ws.offload(std::move(job));
    if (!page) break;
    std::vector<const Event*> events;
    for (const auto& e : *page) events.push_back(&e);
    ok = co_await sender.send(events);
    if (ok) ok = co_await sender.heartbeat();
    if (page->size() < options.page_size) break;
  }
  while (ok && !state->reader_done) {
    auto batch = subscription->take();
    if (batch.empty()) {
      if (subscription->overflowed()) {
        std::string cut = errorLine(kTooSlowCode, "subscriber fell too far behind");
        co_await ws.write(cut);
        break;
      }
      ok = co_await sender.heartbeat();
      if (!ok) break;
      boost::system::error_code ec;
      state->timer.expires_at(sender.nextHeartbeat());
      co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    std::vector<const Event*> events;
    events.reserve(batch.size());
    for (const auto& e : batch) events.push_back(e.get());
    ok = co_await sender.send(events);
    if (ok) ok = co_await sender.heartbeat();
  }
  if (!state->reader_done) {
    if (ok) co_await ws.close();
    ws.abort();
  }
  while (!state->reader_done) {
    boost::system::error_code ec;
    state->timer.expires_at(asio::steady_timer::time_point::max());
    co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

std::string appOfListener(std::string_view tag) {
  return std::string(handoff::appFromTag(tag).value_or(""));
}

Status registerEventsApi(http::Server& server, EventStore& store, Hub& hub,
                         const EventsApiOptions& options) {
  http::RouteOptions limit{.body_limit = options.max_body};
  const EventsApiOptions* opts = &options;

  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/api/v1/events/offsets", [&store](Request&) -> Task<Response> {
        co_return Response::json(200, offsetMapJson(store.offsets()));
      }));

  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/events/publish",
      [&store](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto request = parsePublishRequest(*body);
        if (!request) co_return http::errorResponse(request.error());
        std::string app = appOfListener(r.listenerTag());
        auto receipts = co_await awaitPublish(store, std::move(app), std::move(request->events));
        if (!receipts) co_return http::errorResponse(receipts.error());
        co_return Response::json(201, receiptsJson(*receipts));
      },
      limit));

  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/events/query",
      [&store, opts](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto request = parseQueryRequest(*body);
        if (!request) co_return http::errorResponse(request.error());
        auto spec = std::make_shared<QuerySpec>(
            QuerySpec{std::move(request->filters), request->order, std::move(request->lower_bound),
                      std::move(request->upper_bound)});
        std::size_t page_size = opts->page_size;
        co_return Response::stream(200, "application/x-ndjson",
                                   [&store, spec, page_size](StreamWriter& w) -> Task<void> {
                                     return streamQuery(w, store, std::move(*spec), page_size);
                                   });
      },
      limit));

  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/events/subscribe",
      [&store, &hub, opts](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto request = parseSubscribeRequest(*body);
        if (!request) co_return http::errorResponse(request.error());
        auto shared = std::make_shared<SubscribeRequest>(std::move(*request));
        co_return Response::stream(200, "application/x-ndjson",
                                   [&store, &hub, shared, opts](StreamWriter& w) -> Task<void> {
                                     return streamSubscription(w, store, hub, std::move(*shared),
                                                               *opts);
                                   });
      },
      limit));
  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/api/v1/events/ws", [&store, &hub, opts](Request&) -> Task<Response> {
        co_return http::webSocketResponse([&store, &hub, opts](http::WebSocket& ws) -> Task<void> {
          return runWebSocket(ws, store, hub, *opts);
        });
      }));
  return {};
}

}  // namespace fleetlet::streams
