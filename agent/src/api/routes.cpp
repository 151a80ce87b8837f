#include "api/routes.h"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "api/json_codec.h"
#include "http/server.h"
#include "manifest/parse.h"
#include "metrics/exposition.h"

namespace fleetlet::api {
namespace {

using http::Request;
using http::Response;
using http::StreamWriter;
using http::Task;

constexpr std::string_view kNdjson = "application/x-ndjson";

Response jsonResponse(unsigned status, const Json& body) {
  return Response::json(status, body.dump());
}

// ?name=N: nullopt when absent; kInvalidArgument when not an integer in [min, max].
Result<std::optional<int64_t>> intQuery(const Request& r, std::string_view name, int64_t min,
                                        int64_t max) {
  auto text = r.query(name);
  if (!text) return std::optional<int64_t>();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return fail(ErrorCode::kInvalidArgument,
                "query parameter {}: \"{}\" is not an integer in [{}, {}]", name, *text, min, max);
  }
  return std::optional<int64_t>(value);
}

// ?follow, ?follow=true|1 → true; absent, false, 0 → false.
std::string ndjsonLines(const std::vector<core::NodeEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    out += toJson(e).dump();
    out += '\n';
  }
  return out;
}

std::string ndjsonLines(const std::vector<logs::LogEntry>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += toJson(l).dump();
    out += '\n';
  }
  return out;
}

Task<Response> handleApply(Request& r, core::NodeService& service) {
  auto body = co_await r.readBody();
  if (!body) co_return http::errorResponse(body.error());
  if (body->find_first_not_of(" \t\r\n") == std::string::npos) {
    co_return http::errorResponse(Error(ErrorCode::kInvalidArgument,
                                        "empty request body: expected a manifest (YAML or JSON)"));
  }
  std::string source = r.query("source").value_or("");
  auto job = [&service, text = std::move(*body), source = std::move(source)] {
    return service.apply(text, source);
  };
  auto result = co_await r.offload(std::move(job));
  if (!result) co_return http::errorResponse(result.error());
  co_return jsonResponse(201, toJson(*result));
}

Task<Response> handleApps(Request& r, core::NodeService& service) {
  auto job = [&service] { return service.apps(); };
  auto apps = co_await r.offload(std::move(job));
  if (!apps) co_return http::errorResponse(apps.error());
  Json list = Json::array();
  for (const auto& a : *apps) list.push_back(toJson(a));
  co_return jsonResponse(200, Json{{"apps", std::move(list)}});
}

// The route's {name}: kInvalidArgument unless it is a valid app name, so that no name reaches
// the service (and its file paths) that a manifest could not have given.
Result<std::string> appName(const Request& r) {
  std::string name(r.param("name"));
  FLEETLET_RETURN_IF_ERROR(manifest::checkAppName(name));
  return name;
}

Task<Response> handleDescribe(Request& r, core::NodeService& service) {
  auto checked = appName(r);
  if (!checked) co_return http::errorResponse(checked.error());
  std::string name = std::move(*checked);
  auto job = [&service, name] { return service.describe(name); };
  auto detail = co_await r.offload(std::move(job));
  if (!detail) co_return http::errorResponse(detail.error());
  co_return jsonResponse(200, toJson(*detail));
}

Task<Response> handleRestart(Request& r, core::NodeService& service) {
  auto checked = appName(r);
  if (!checked) co_return http::errorResponse(checked.error());
  std::string name = std::move(*checked);
  auto job = [&service, name] { return service.restart(name); };
  auto status = co_await r.offload(std::move(job));
  if (!status) co_return http::errorResponse(status.error());
  co_return jsonResponse(200, Json{{"app", name}, {"restarted", true}});
}

Task<Response> handleScreenshot(Request& r, core::NodeService& service) {
  std::string name = r.query("app").value_or("");
  auto job = [&service, name] { return service.screenshot(name); };
  auto png = co_await r.offload(std::move(job));
  if (!png) co_return http::errorResponse(png.error());
  co_return Response::text(200, std::move(*png), "image/png");
}

Task<Response> handleShow(Request& r, core::NodeService& service) {
  auto checked = appName(r);
  if (!checked) co_return http::errorResponse(checked.error());
  std::string name = std::move(*checked);
  auto job = [&service, name] { return service.show(name); };
  auto status = co_await r.offload(std::move(job));
  if (!status) co_return http::errorResponse(status.error());
  co_return jsonResponse(200, Json{{"app", name}, {"shown", true}});
}

Task<Response> handleStatus(Request& r, core::NodeService& service) {
  auto job = [&service] { return service.status(); };
  auto status = co_await r.offload(std::move(job));
  if (!status) co_return http::errorResponse(status.error());
  co_return jsonResponse(200, toJson(*status));
}

// What wakes an events follower waiting on the connection's strand: the stream closing, or
// the service recording an event (its watch posts the wake to the strand).
struct FollowerWake {
  explicit FollowerWake(const boost::asio::any_io_executor& ex) : timer(ex) {}
  boost::asio::steady_timer timer;  // never expires; cancel() wakes the waiting follower
};

// Streams events after `after` until the client leaves or the server stops. Waits on a timer,
// not on a thread: an idle follower holds no thread of the blocking pool. Parameters are
// copies: the coroutine frame owns them.
Task<void> followEvents(StreamWriter& w, core::NodeService& service, int64_t after, size_t limit) {
  auto wake = std::make_shared<FollowerWake>(w.executor());
  auto on_close = [wake] { wake->timer.cancel(); };
  w.onClose(std::move(on_close));
  // The posted wake-up holds the state weakly: it may run after this coroutine returned.
  auto on_event = [ex = w.executor(), weak = std::weak_ptr<FollowerWake>(wake)] {
    boost::asio::post(ex, [weak] {
      if (auto state = weak.lock()) state->timer.cancel();
    });
  };
  // Destroyed before the frame: no wake-up is posted once this coroutine has returned.
  auto watch = service.watchEvents(std::move(on_event));
  while (w.isOpen()) {
    // On the strand, between two waits: an event recorded after this read posts a wake-up
    // that runs once the wait below has begun, so none is missed.
    auto events = service.events(after, limit);
    if (events.empty()) {
      wake->timer.expires_at(boost::asio::steady_timer::time_point::max());
      boost::system::error_code ec;
      co_await wake->timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      continue;
    }
    after = events.back().seq;
    std::string chunk = ndjsonLines(events);
    auto written = co_await w.write(chunk);
    if (!written) co_return;
  }
}

Task<Response> handleEvents(Request& r, core::NodeService& service, RouteConfig config) {
  auto after = intQuery(r, "after", 0, INT64_MAX);
  if (!after) co_return http::errorResponse(after.error());
  auto limit = intQuery(r, "limit", 1, static_cast<int64_t>(config.event_limit));
  if (!limit) co_return http::errorResponse(limit.error());
  auto follow = http::boolQuery(r, "follow");
  if (!follow) co_return http::errorResponse(follow.error());
  int64_t from = after->value_or(0);
  size_t count = static_cast<size_t>(limit->value_or(static_cast<int64_t>(config.event_limit)));
  if (!*follow) {
    co_return Response::text(200, ndjsonLines(service.events(from, count)), std::string(kNdjson));
  }
  auto producer = [&service, from, count](StreamWriter& w) {
    return followEvents(w, service, from, count);
  };
  co_return Response::stream(200, std::string(kNdjson), std::move(producer));
}

// A logs follower: opens logs::LogFollower once the app's log directory exists (an app that
// has not logged yet is followed from its first line). Used from one thread at a time.
struct LogFollowState {
  std::filesystem::path dir;
  std::string only;  // NodeService::LogSource::only
  size_t tail = SIZE_MAX;
  std::optional<logs::LogFollower> follower;

  // The entries completed since the last call (the tail first).
  Result<std::vector<logs::LogEntry>> poll() {
    const bool first = !follower;
    if (!follower) {
      // With a filter, the tail is counted among the entries it keeps: all are read first.
      auto opened = logs::LogFollower::open(dir, only.empty() ? tail : SIZE_MAX);
      if (!opened && opened.error().code() == ErrorCode::kNotFound) {
        return std::vector<logs::LogEntry>();
      }
      if (!opened) return std::unexpected(opened.error());
      follower.emplace(std::move(*opened));
    }
    FLEETLET_ASSIGN_OR_RETURN(auto entries, follower->poll());
    logs::keepOnly(entries, only, first ? tail : SIZE_MAX);
    return entries;
  }
};

// Streams `first`, then new log entries every `interval` until the client leaves or the server
// stops.
Task<void> followLogs(StreamWriter& w, std::shared_ptr<LogFollowState> state,
                      std::vector<logs::LogEntry> first, std::chrono::milliseconds interval) {
  if (!first.empty()) {
    std::string chunk = ndjsonLines(first);
    auto written = co_await w.write(chunk);
    if (!written) co_return;
  }
  // Shared with the close callback, which may run after this coroutine has returned.
  auto timer = std::make_shared<boost::asio::steady_timer>(w.executor());
  auto wake = [timer] { timer->cancel(); };
  w.onClose(std::move(wake));
  while (w.isOpen()) {
    timer->expires_after(interval);
    boost::system::error_code ec;
    co_await timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (!w.isOpen()) break;
    auto job = [state] { return state->poll(); };
    auto entries = co_await w.offload(std::move(job));
    if (!entries) {
      spdlog::warn("[api] following logs in {}: {}", state->dir.string(),
                   entries.error().message());
      co_return;
    }
    if (entries->empty()) continue;
    std::string chunk = ndjsonLines(*entries);
    auto written = co_await w.write(chunk);
    if (!written) co_return;
  }
}

// ?since=T&until=T (RFC 3339, or a duration before now such as 10m): nullopt when neither is
// given; kInvalidArgument naming the parameter otherwise.
Result<std::optional<logs::TimeRange>> rangeQuery(const Request& r) {
  auto since = r.query("since");
  auto until = r.query("until");
  if (!since && !until) return std::optional<logs::TimeRange>();
  const auto now = std::chrono::system_clock::now();
  logs::TimeRange range;
  if (since) {
    FLEETLET_ASSIGN_OR_RETURN(range.since, logs::parseTimeBound("since", *since, now));
  }
  if (until) {
    FLEETLET_ASSIGN_OR_RETURN(range.until, logs::parseTimeBound("until", *until, now));
  }
  if (since && until) {
    FLEETLET_RETURN_IF_ERROR(logs::checkRange(range));
  }
  return std::optional<logs::TimeRange>(range);
}

// The entries of `source`: those in `range` when given, else all; the last `count` of them.
Result<logs::TailResult> readLogs(const core::NodeService::LogSource& source,
                                  const std::optional<logs::TimeRange>& range, size_t count) {
  if (!range && source.only.empty()) return logs::readTail(source.dir, count);
  FLEETLET_ASSIGN_OR_RETURN(auto result, range ? logs::readRange(source.dir, *range)
                                               : logs::readTail(source.dir, SIZE_MAX));
  logs::keepOnly(result.entries, source.only, count);
  return result;
}

Task<Response> handleLogs(Request& r, core::NodeService& service, RouteConfig config) {
  auto checked = appName(r);
  if (!checked) co_return http::errorResponse(checked.error());
  std::string name = std::move(*checked);
  auto tail = intQuery(r, "tail", 0, INT32_MAX);
  if (!tail) co_return http::errorResponse(tail.error());
  auto follow = http::boolQuery(r, "follow");
  if (!follow) co_return http::errorResponse(follow.error());
  auto range = rangeQuery(r);
  if (!range) co_return http::errorResponse(range.error());
  if (*follow && range->has_value()) {
    co_return http::errorResponse(
        Error(ErrorCode::kInvalidArgument, "follow cannot be combined with since or until"));
  }
  auto source_job = [&service, name] { return service.logSource(name); };
  auto source = co_await r.offload(std::move(source_job));
  if (!source) co_return http::errorResponse(source.error());
  const auto& tail_lines = *tail;
  size_t count = tail_lines ? static_cast<size_t>(*tail_lines) : SIZE_MAX;

  if (!*follow) {
    auto read_job = [source = *source, range = *range, count] {
      return readLogs(source, range, count);
    };
    auto result = co_await r.offload(std::move(read_job));
    // No directory yet: the app has not written a line.
    if (!result && result.error().code() != ErrorCode::kNotFound) {
      co_return http::errorResponse(result.error().wrap("logs of {}", name));
    }
    std::string body = result ? ndjsonLines(result->entries) : std::string();
    co_return Response::text(200, std::move(body), std::string(kNdjson));
  }
  auto state = std::make_shared<LogFollowState>();
  state->dir = source->dir;
  state->only = source->only;
  state->tail = count;
  auto first_job = [state] { return state->poll(); };
  auto first = co_await r.offload(std::move(first_job));
  if (!first) co_return http::errorResponse(first.error().wrap("logs of {}", name));
  auto interval = config.log_poll;
  auto producer = [state, entries = std::move(*first), interval](StreamWriter& w) {
    return followLogs(w, state, entries, interval);
  };
  co_return Response::stream(200, std::string(kNdjson), std::move(producer));
}

Task<Response> handleNodeLogs(Request& r, std::filesystem::path node_log_dir) {
  if (node_log_dir.empty()) {
    co_return http::errorResponse(
        Error(ErrorCode::kNotFound, "this fleetletd keeps no log of its own on disk"));
  }
  auto tail = intQuery(r, "tail", 0, INT32_MAX);
  if (!tail) co_return http::errorResponse(tail.error());
  auto range = rangeQuery(r);
  if (!range) co_return http::errorResponse(range.error());
  const auto& tail_lines = *tail;
  size_t count = tail_lines ? static_cast<size_t>(*tail_lines) : SIZE_MAX;
  auto read_job = [source = core::NodeService::LogSource{.dir = node_log_dir, .only = {}},
                   range = *range, count] { return readLogs(source, range, count); };
  auto result = co_await r.offload(std::move(read_job));
  if (!result && result.error().code() != ErrorCode::kNotFound) {
    co_return http::errorResponse(result.error().wrap("the node's log"));
  }
  std::string body = result ? ndjsonLines(result->entries) : std::string();
  co_return Response::text(200, std::move(body), std::string(kNdjson));
}

Task<Response> handleMetrics(Request& r, const std::function<std::string()>& exposition) {
  auto job = [&exposition] { return exposition(); };
  auto text = co_await r.offload(std::move(job));
  co_return Response::text(200, std::move(text), metrics::kContentType);
}

Task<Response> handleTop(Request& r, const std::function<Json()>& top) {
  auto job = [&top] { return top(); };
  auto body = co_await r.offload(std::move(job));
  co_return jsonResponse(200, body);
}

}  // namespace

Status registerMetricsRoutes(http::Server& server, const MetricsEndpoints& endpoints) {
  if (endpoints.exposition) {
    FLEETLET_RETURN_IF_ERROR(server.route(
        "GET", "/metrics", [f = endpoints.exposition](Request& r) { return handleMetrics(r, f); }));
  }
  if (endpoints.top) {
    FLEETLET_RETURN_IF_ERROR(server.route(
        "GET", "/v1/top", [f = endpoints.top](Request& r) { return handleTop(r, f); }));
  }
  return {};
}

Status registerRoutes(http::Server& server, core::NodeService& service, RouteConfig config) {
  auto* svc = &service;
  FLEETLET_RETURN_IF_ERROR(server.route("POST", "/v1/apply",
                                        [svc](Request& r) { return handleApply(r, *svc); },
                                        {.body_limit = config.apply_body_limit}));
  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/v1/apps", [svc](Request& r) { return handleApps(r, *svc); }));
  FLEETLET_RETURN_IF_ERROR(server.route("GET", "/v1/apps/{name}",
                                        [svc](Request& r) { return handleDescribe(r, *svc); }));
  FLEETLET_RETURN_IF_ERROR(server.route("POST", "/v1/apps/{name}/restart",
                                        [svc](Request& r) { return handleRestart(r, *svc); }));
  FLEETLET_RETURN_IF_ERROR(server.route("GET", "/v1/apps/{name}/logs", [svc, config](Request& r) {
    return handleLogs(r, *svc, config);
  }));
  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/v1/node/logs",
                   [dir = config.node_log_dir](Request& r) { return handleNodeLogs(r, dir); }));
  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/v1/status", [svc](Request& r) { return handleStatus(r, *svc); }));
  FLEETLET_RETURN_IF_ERROR(server.route("GET", "/v1/screenshot",
                                        [svc](Request& r) { return handleScreenshot(r, *svc); }));
  FLEETLET_RETURN_IF_ERROR(server.route("POST", "/v1/apps/{name}/show",
                                        [svc](Request& r) { return handleShow(r, *svc); }));
  FLEETLET_RETURN_IF_ERROR(server.route(
      "GET", "/v1/events", [svc, config](Request& r) { return handleEvents(r, *svc, config); }));
  return registerMetricsRoutes(server, config.metrics);
}

}  // namespace fleetlet::api
