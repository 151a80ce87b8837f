#include "api/events_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>

#include "events/requests.h"
#include "handoff/http_adapter.h"
#include "http/websocket.h"
#include "json/json.h"
#include "subscribe/heartbeat.h"

namespace fleetlet::streams {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using http::StreamWriter;
using http::Task;

using PublishResult = Result<std::vector<PublishReceipt>>;

// Resumes publishers on the event loop with one post per burst of completions instead of one
// per request: the store completes a group's requests one after another on a writer thread;
// the first of them posts a drain to the loop and the others join its batch. The drain runs
// each on its own executor (a connection's strand: inline, as the loop's thread is in none
// then). Thread-safe.
class Resumer : public std::enable_shared_from_this<Resumer> {
 public:
  using Job = std::function<void()>;

  // Runs `job` on `ex` soon. Never blocks for long (a mutex held only to append or swap).
  void resume(const asio::any_io_executor& ex, Job job) {
    std::shared_ptr<Batch> post;
    {
      std::lock_guard lock(mutex_);
      if (!open_) post = open_ = std::make_shared<Batch>();
      open_->jobs.emplace_back(ex, std::move(job));
    }
    if (post) {
      asio::post(ex, [self = shared_from_this(), post] { self->drain(*post); });
    }
  }

 private:
  struct Batch {
    std::vector<std::pair<asio::any_io_executor, Job>> jobs;
  };

  void drain(Batch& batch) {
    std::vector<std::pair<asio::any_io_executor, Job>> jobs;
    {
      std::lock_guard lock(mutex_);
      if (open_.get() == &batch) open_.reset();  // later jobs start a new batch
      jobs.swap(batch.jobs);
    }
    for (auto& [ex, job] : jobs) asio::dispatch(ex, std::move(job));
  }

  std::mutex mutex_;
  std::shared_ptr<Batch> open_;  // guarded by mutex_: the batch a posted drain will run
};

// Hands the events to the group-commit writer and resumes on this coroutine's executor once
// they are durable. No thread blocks while waiting.
Task<PublishResult> awaitPublish(EventStore& store, const std::shared_ptr<Resumer>& resumer,
                                 std::string app, std::vector<NewEvent> events) {
  asio::any_io_executor current = co_await asio::this_coro::executor;
  asio::any_io_executor ex = asio::prefer(current, asio::execution::outstanding_work.tracked);
  auto initiation = [&store, &resumer, &app, &events, ex](auto handler) mutable {
    using Handler = decltype(handler);
    auto shared = std::make_shared<Handler>(std::move(handler));
    store.publish(std::move(app), std::move(events), [shared, ex, resumer](PublishResult result) {
      auto boxed = std::make_shared<PublishResult>(std::move(result));
      resumer->resume(ex, [shared, boxed] { std::move (*shared)(boxed); });
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

void noteReleased(MemoryTrimmer& trimmer, std::size_t bytes) {
  if (bytes >= MemoryTrimmer::kLargeTransient) trimmer.released(bytes);
}

std::size_t bytesOf(const Event& e) { return eventBytes(e); }
std::size_t bytesOf(const std::shared_ptr<const Event>& e) { return eventBytes(*e); }
void appendLine(const Event& e, std::string& out) { appendEventJson(e, out); }
void appendLine(const std::shared_ptr<const Event>& e, std::string& out) {
  appendEventJson(*e, out);
}

// The NDJSON lines of `events` (Event or shared_ptr<const Event>), emptying `events` as it
// goes, so a page is held about once while it is serialized, not twice.
template <typename T>
std::string takeNdjson(std::vector<T>& events) {
  std::size_t bytes = 0;
  for (const auto& e : events) bytes += bytesOf(e);
  std::string out;
  out.reserve(bytes);
  for (auto& e : events) {
    appendLine(e, out);
    e = T();
  }
  events.clear();
  return out;
}

Task<void> streamQuery(StreamWriter& w, EventStore& store, MemoryTrimmer& trimmer, QuerySpec spec,
                       PageLimit limit) {
  Cursor cursor;
  bool more = true;
  while (more && w.isOpen()) {
    auto job = [&store, &spec, &cursor, limit] { return store.readPage(spec, cursor, limit); };
    auto page = co_await w.offload(std::move(job));
    if (!page) {
      spdlog::warn("[events] query failed: {}", page.error().describe());
      co_await w.write(errorLine("ERR_INTERNAL", page.error().message()));
      co_return;
    }
    more = page->more;
    std::string out = takeNdjson(page->events);
    if (!(co_await w.write(out))) co_return;
    noteReleased(trimmer, out.size());
  }
}

using Batch = std::vector<std::shared_ptr<const Event>>;

// The events one subscriber is owed, in order and each once (docs/streams.md, "Subscribe
// without gap or duplicate"): the stored ones after its lower bound, a page at a time, then
// the live ones the hub queued. On the connection's strand.
class SubscriptionFeed {
 public:
  // Registers with the hub before reading the catch-up bound: every event is then in the
  // catch-up range or in the live queue (or both; duplicates are dropped by offset). `wake`
  // is the hub's (see Hub::subscribe).
  SubscriptionFeed(EventStore& store, Hub& hub, SubscribeRequest request,
                   const EventsApiOptions& options, std::function<void()> wake)
      : store_(store),
        hub_(hub),
        options_(options),
        filters_(std::move(request.filters)),
        wake_(std::move(wake)),
        subscription_(hub.subscribe(filters_, options.subscriber_queue, wake_)),
        delivered_(request.lower_bound),
        // Lamport order keeps each source's events in offset order and walks the
        // (semantics|name, lamport) indexes instead of sorting every match per page.
        spec_{filters_, Order::kLamport, std::move(request.lower_bound), store.offsets()} {}

  // The next events owed, oldest first: a storage page while catching up, then whatever the
  // live queue holds. Empty when nothing is queued: wait for a wake. Fails with
  // kResourceExhausted once the live queue overflowed (the subscriber is too slow and must be
  // cut off), or with the store's error. `io` offloads the storage reads.
  template <typename Io>
  Task<Result<Batch>> next(Io& io) {
    while (!live_) {
      if (!more_) {
        if (!subscription_->overflowed()) {
          live_ = true;
          break;
        }
        // The live queue overflowed during a long catch-up; storage still has everything:
        // register again, then catch up from what was delivered to the new present.
        spdlog::info("[events] live queue overflowed during a catch-up; catching up again");
        subscription_ = hub_.subscribe(filters_, options_.subscriber_queue, wake_);
        spec_.lower = delivered_;
        spec_.upper = store_.offsets();
        cursor_ = Cursor{};
        more_ = true;
      }
      auto job = [this] { return store_.readPage(spec_, cursor_, options_.page); };
      auto page = co_await io.offload(std::move(job));
      if (!page) co_return std::unexpected(page.error().wrap("catch-up"));
      more_ = page->more;
      Batch out;
      out.reserve(page->events.size());
      for (auto& e : page->events) {
        if (record(e)) out.push_back(std::make_shared<const Event>(std::move(e)));
      }
      if (!out.empty()) co_return out;
    }
    Batch batch = subscription_->take();
    if (batch.empty() && subscription_->overflowed()) {
      co_return fail(ErrorCode::kResourceExhausted,
                     "subscriber fell more than {} events or {} bytes behind; subscribe again "
                     "with lowerBound set to the offsets received",
                     options_.subscriber_queue.events, options_.subscriber_queue.bytes);
    }
    std::erase_if(batch, [this](const auto& e) { return !record(*e); });
    co_return batch;
  }

 private:
  // Whether `e` is new to the subscriber (and notes it as delivered).
  bool record(const Event& e) {
    auto [it, inserted] = delivered_.try_emplace(e.source, e.offset);
    if (inserted) return true;
    if (e.offset <= it->second) return false;
    it->second = e.offset;
    return true;
  }

  EventStore& store_;
  Hub& hub_;
  const EventsApiOptions& options_;
  const std::vector<Filter> filters_;
  const std::function<void()> wake_;
  std::unique_ptr<Subscription> subscription_;
  OffsetMap delivered_;
  QuerySpec spec_;
  Cursor cursor_;
  bool more_ = true;
  bool live_ = false;
};

// Wakes a producer waiting for live events; used on the connection's strand only.
struct LiveWaker {
  explicit LiveWaker(const asio::any_io_executor& ex)
      : timer(ex, asio::steady_timer::time_point::max()) {}

  // Returns at once when a wake came since the last wait, else at the next wake, when
  // cancel() is called, or at `until`.
  Task<void> wait(asio::steady_timer::time_point until) {
    if (!pending) {
      boost::system::error_code ec;
      timer.expires_at(until);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    pending = false;
  }
  void cancel() { timer.cancel(); }

  asio::steady_timer timer;
  bool pending = false;
};

// The hub's wake function for `waker`: it runs on the store's writer thread, so it only posts
// to the strand.
std::function<void()> wakeFunction(const std::shared_ptr<LiveWaker>& waker,
                                   const asio::any_io_executor& ex) {
  std::weak_ptr<LiveWaker> weak = waker;
  return [weak, ex] {
    asio::post(ex, [weak] {
      if (auto w = weak.lock()) {
        w->pending = true;
        w->cancel();
      }
    });
  };
}

// NDJSON subscribe: catch-up from storage, then live events, until the client goes away or
// falls too far behind.
Task<void> streamSubscription(StreamWriter& w, EventStore& store, Hub& hub, MemoryTrimmer& trimmer,
                              SubscribeRequest request, const EventsApiOptions& options) {
  auto waker = std::make_shared<LiveWaker>(w.executor());
  SubscriptionFeed feed(store, hub, std::move(request), options, wakeFunction(waker, w.executor()));
  std::weak_ptr<LiveWaker> weak = waker;
  w.onClose([weak] {
    if (auto k = weak.lock()) k->cancel();
  });
  while (w.isOpen()) {
    auto batch = co_await feed.next(w);
    if (!batch) {
      bool slow = batch.error().code() == ErrorCode::kResourceExhausted;
      if (!slow) spdlog::warn("[events] subscription failed: {}", batch.error().describe());
      std::string last = errorLine(slow ? kTooSlowCode : "ERR_INTERNAL", batch.error().message());
      co_await w.write(last);
      break;
    }
    if (batch->empty()) {
      co_await waker->wait(asio::steady_timer::time_point::max());
      continue;
    }
    std::string out = takeNdjson(*batch);
    if (!(co_await w.write(out))) break;
    noteReleased(trimmer, out.size());
  }
}

// State shared by a WebSocket's writer (the handler), its reader and its heartbeat watchdog;
// all run on the connection's strand.
struct WsState {
  WsState(const asio::any_io_executor& ex, std::chrono::milliseconds interval)
      : waker(ex), watchdog(ex), heartbeats(std::chrono::steady_clock::now(), interval) {}
  LiveWaker waker;
  asio::steady_timer watchdog;
  HeartbeatSchedule heartbeats;
  bool done = false;  // the writer has finished
  bool reader_done = false;
  bool watchdog_done = false;
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
        state->heartbeats.acked(seq->get<std::uint64_t>());
      }
    }
  }
  state->reader_done = true;
  state->waker.cancel();
}

// Closes the socket once the client misses a heartbeat deadline, also while the writer is
// stuck in a write (a client that stops reading never sees its heartbeat).
Task<void> watchHeartbeats(http::WebSocket& ws, std::shared_ptr<WsState> state) {
  while (!state->done) {
    if (state->heartbeats.expired(std::chrono::steady_clock::now())) {
      spdlog::info("[events] websocket subscriber missed its heartbeat deadline; closing");
      ws.abort();
      break;
    }
    boost::system::error_code ec;
    state->watchdog.expires_at(state->heartbeats.deadline());
    co_await state->watchdog.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  state->watchdog_done = true;
  state->waker.cancel();
}

// Writes a WebSocket's messages: events and heartbeats, numbered by one seq counter. On the
// connection's strand.
class WsSender {
 public:
  WsSender(http::WebSocket& ws, WsState& state) : ws_(ws), state_(state) {}

  // Sends `events` (a heartbeat goes between them when one falls due); false once the socket
  // failed.
  Task<bool> send(const Batch& events) {
    for (const auto& e : events) {
      if (!(co_await heartbeat())) co_return false;
      std::string line = eventJson(*e);
      line.pop_back();  // the NDJSON newline
      std::string message = fmt::format(R"({{"seq":{},"event":{}}})", ++seq_, line);
      if (!(co_await write(message))) co_return false;
    }
    co_return true;
  }

  // Sends a heartbeat when one is due; false when the socket failed.
  Task<bool> heartbeat() {
    auto now = std::chrono::steady_clock::now();
    if (!state_.heartbeats.sendDue(now)) co_return true;
    state_.heartbeats.sent(++seq_, now);
    std::string message = fmt::format(R"({{"type":"heartbeat","seq":{}}})", seq_);
    co_return co_await write(message);
  }

 private:
  Task<bool> write(std::string_view message) {
    auto written = co_await ws_.write(message);
    co_return written.has_value();
  }

  http::WebSocket& ws_;
  WsState& state_;
  std::uint64_t seq_ = 0;
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
  auto state = std::make_shared<WsState>(ws.executor(), options.heartbeat_interval);
  std::shared_ptr<LiveWaker> waker(state, &state->waker);
  asio::co_spawn(ws.executor(), readWebSocketAcks(ws, state), asio::detached);
  asio::co_spawn(ws.executor(), watchHeartbeats(ws, state), asio::detached);
  {
    SubscriptionFeed feed(store, hub, std::move(*request), options,
                          wakeFunction(waker, ws.executor()));
    WsSender sender(ws, *state);
    while (ws.isOpen()) {
      if (!(co_await sender.heartbeat())) break;
      auto batch = co_await feed.next(ws);
      if (!batch) {
        if (batch.error().code() == ErrorCode::kResourceExhausted) {
          std::string cut = errorLine(kTooSlowCode, batch.error().message());
          co_await ws.write(cut);
          co_await ws.close();
        }
        break;
      }
      if (batch->empty()) {
        co_await waker->wait(state->heartbeats.nextDue());
        continue;
      }
      if (!(co_await sender.send(*batch))) break;
    }
  }
  if (ws.isOpen()) co_await ws.close();
  ws.abort();
  state->done = true;
  state->watchdog.cancel();
  while (!state->reader_done || !state->watchdog_done)
    co_await waker->wait(asio::steady_timer::time_point::max());
}

}  // namespace

std::string appOfListener(std::string_view tag) {
  return std::string(handoff::appFromTag(tag).value_or(""));
}

Status registerEventsApi(http::Server& server, EventStore& store, Hub& hub, MemoryTrimmer& trimmer,
                         const EventsApiOptions& options) {
  http::RouteOptions limit{.body_limit = options.max_body};
  const EventsApiOptions* opts = &options;

  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/api/v1/events/offsets", [&store](Request&) -> Task<Response> {
        co_return Response::json(200, offsetMapJson(store.offsets()));
      }));

  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/events/publish",
      [&store, &trimmer, resumer = std::make_shared<Resumer>()](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        std::size_t body_bytes = body->size();
        auto request = parsePublishRequest(*body);
        *body = std::string();
        if (!request) co_return http::errorResponse(request.error());
        std::string app = appOfListener(r.listenerTag());
        auto receipts =
            co_await awaitPublish(store, resumer, std::move(app), std::move(request->events));
        noteReleased(trimmer, body_bytes);
        if (!receipts) co_return http::errorResponse(receipts.error());
        co_return Response::json(201, receiptsJson(*receipts));
      },
      limit));

  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/events/query",
      [&store, &trimmer, opts](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto request = parseQueryRequest(*body);
        if (!request) co_return http::errorResponse(request.error());
        // Bounded by what is durable: SQLite already holds groups whose fdatasync is still
        // running (store/event_store.h), and a query must not show an event a crash may lose.
        const OffsetMap durable = store.offsets();
        for (auto& [source, upper] : request->upper_bound) {
          auto it = durable.find(source);
          upper = std::min(upper, it == durable.end() ? std::int64_t{-1} : it->second);
        }
        auto spec = std::make_shared<QuerySpec>(
            QuerySpec{std::move(request->filters), request->order, std::move(request->lower_bound),
                      std::move(request->upper_bound)});
        co_return Response::stream(
            200, "application/x-ndjson", [&store, &trimmer, spec, opts](StreamWriter& w) {
              return streamQuery(w, store, trimmer, std::move(*spec), opts->page);
            });
      },
      limit));

  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/events/subscribe",
      [&store, &hub, &trimmer, opts](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto request = parseSubscribeRequest(*body);
        if (!request) co_return http::errorResponse(request.error());
        auto shared = std::make_shared<SubscribeRequest>(std::move(*request));
        co_return Response::stream(
            200, "application/x-ndjson", [&store, &hub, &trimmer, shared, opts](StreamWriter& w) {
              return streamSubscription(w, store, hub, trimmer, std::move(*shared), *opts);
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
