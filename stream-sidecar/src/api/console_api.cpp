#include "api/console_api.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>

#include "api/events_api.h"
#include "handoff/http_adapter.h"
#include "json/json.h"

namespace fleetlet::streams {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using http::StreamWriter;
using http::Task;

constexpr std::size_t kPage = 10000;  // LogStore::read's page without a limit

struct ReadRequest {
  LogFilter filter;
  bool follow = false;
};

Result<std::int64_t> parseCount(std::string_view key, const std::string& value) {
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < 0) {
    return fail(ErrorCode::kInvalidArgument,
                "query parameter {}: expected a non-negative "
                "integer, got \"{}\"",
                key, value);
  }
  return n;
}

Result<ReadRequest> parseReadRequest(const Request& r) {
  ReadRequest out;
  for (const auto& [key, value] : r.queryParams()) {
    if (key == "app") {
      out.filter.app = value;
    } else if (key == "logName") {
      out.filter.log_name = value;
    } else if (key == "severity") {
      if (!isSeverity(value)) {
        return fail(ErrorCode::kInvalidArgument,
                    "query parameter severity: expected debug, info, warn or error, got \"{}\"",
                    value);
      }
      out.filter.severity = value;
    } else if (key == "since") {
      FLEETLET_ASSIGN_OR_RETURN(out.filter.after_seq, parseCount(key, value));
    } else if (key == "limit") {
      FLEETLET_ASSIGN_OR_RETURN(auto n, parseCount(key, value));
      out.filter.limit = static_cast<std::size_t>(n);
    }
  }
  FLEETLET_ASSIGN_OR_RETURN(out.follow, http::boolQuery(r, "follow"));
  return out;
}

// Wakes a following reader: set and cancelled on the reader's strand only.
struct Waker {
  explicit Waker(const asio::any_io_executor& ex)
      : timer(ex, asio::steady_timer::time_point::max()) {}
  asio::steady_timer timer;
  bool pending = false;
};

Task<void> streamLogs(StreamWriter& w, LogStore& logs, ReadRequest request) {
  auto waker = std::make_shared<Waker>(w.executor());
  std::weak_ptr<Waker> weak = waker;
  asio::any_io_executor ex = w.executor();
  std::uint64_t watch = 0;
  if (request.follow) {
    watch = logs.watch([weak, ex] {
      asio::post(ex, [weak] {
        if (auto k = weak.lock()) {
          k->pending = true;
          k->timer.cancel();
        }
      });
    });
    w.onClose([weak] {
      if (auto k = weak.lock()) k->timer.cancel();
    });
  }
  LogFilter filter = request.filter;
  bool first = true;
  while (w.isOpen()) {
    waker->pending = false;
    auto job = [&logs, &filter] { return logs.read(filter); };
    auto entries = co_await w.offload(std::move(job));
    if (!entries) {
      spdlog::warn("[console] read failed: {}", entries.error().describe());
      break;
    }
    std::string out;
    for (const auto& e : *entries) out += logEntryJson(e);
    if (!entries->empty()) filter.after_seq = entries->back().seq;
    if (!(co_await w.write(out))) break;
    if (first) filter.limit.reset();
    first = false;
    if (!filter.limit && entries->size() >= kPage) continue;
    if (!request.follow) break;
    // An append during the read or write set `pending`: read again instead of waiting.
    if (waker->pending) continue;
    boost::system::error_code ec;
    waker->timer.expires_at(asio::steady_timer::time_point::max());
    co_await waker->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (watch != 0) logs.unwatch(watch);
}

}  // namespace

Status registerConsoleApi(http::Server& server, LogStore& logs, const ConsoleApiOptions& options) {
  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/logs",
      [&logs](Request& r) -> Task<Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto entry = parseLogRequest(*body);
        if (!entry) co_return http::errorResponse(entry.error());
        std::string app = appOfListener(r.listenerTag());
        auto job = [&logs, &app, &entry] { return logs.append(std::move(app), std::move(*entry)); };
        auto stored = co_await r.offload(std::move(job));
        if (!stored) co_return http::errorResponse(stored.error());
        co_return Response::json(201, Json{{"seq", stored->seq}}.dump());
      },
      {.body_limit = options.max_body}));

  // fleetletd ships apps' stdout/stderr here, on its own listener only (docs/logs.md).
  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/logs/ingest",
      [&logs](Request& r) -> Task<Response> {
        if (r.listenerTag() != handoff::kNodeTag) {
          co_return http::errorResponse(
              403, "ERR_FORBIDDEN",
              "only fleetletd may ingest log entries, on the listener it handed over");
        }
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto entries = parseIngestRequest(*body);
        if (!entries) co_return http::errorResponse(entries.error());
        auto job = [&logs, &entries] { return logs.ingest(std::move(*entries)); };
        auto stored = co_await r.offload(std::move(job));
        if (!stored) co_return http::errorResponse(stored.error());
        co_return Response::json(
            200, Json{{"stored", stored->stored}, {"duplicates", stored->duplicates}}.dump());
      },
      {.body_limit = options.max_body}));

  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/api/v1/logs", [&logs](Request& r) -> Task<Response> {
        auto request = parseReadRequest(r);
        if (!request) co_return http::errorResponse(request.error());
        auto shared = std::make_shared<ReadRequest>(std::move(*request));
        co_return Response::stream(200, "application/x-ndjson",
                                   [&logs, shared](StreamWriter& w) -> Task<void> {
                                     return streamLogs(w, logs, *shared);
                                   });
      }));
  return {};
}

}  // namespace fleetlet::streams
