#include "api/json_codec.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <ctime>

namespace fleetlet::api {
namespace {

using core::Clock;

// Parses exactly `digits` decimal digits at text[pos]; -1 when they are not there.
int fixedDigits(std::string_view text, size_t pos, size_t digits) {
  if (pos + digits > text.size()) return -1;
  int value = 0;
  for (size_t i = pos; i < pos + digits; ++i) {
    if (std::isdigit(static_cast<unsigned char>(text[i])) == 0) return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

void putTime(Json& j, const char* key, const std::optional<Clock::time_point>& t) {
  if (t) j[key] = formatTime(*t);
}

Result<std::optional<Clock::time_point>> optionalTime(const Json& j, std::string_view key,
                                                      std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, optionalString(j, key, path));
  if (!text) return std::optional<Clock::time_point>();
  auto t = parseTime(*text);
  if (!t) return std::unexpected(t.error().wrap("{}.{}", path, key));
  return std::optional<Clock::time_point>(*t);
}

Result<std::optional<int64_t>> optionalInt(const Json& j, std::string_view key,
                                           std::string_view path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) {
    return fail(ErrorCode::kInvalidArgument, "{}.{}: expected an integer, got {}", path, key,
                jsonTypeName(*it));
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

Result<bool> optionalBool(const Json& j, std::string_view key, std::string_view path,
                          bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return fail(ErrorCode::kInvalidArgument, "{}.{}: expected a boolean, got {}", path, key,
                jsonTypeName(*it));
  }
  return it->get<bool>();
}

Result<std::string> stringOrEmpty(const Json& j, std::string_view key, std::string_view path) {
  FLEETLET_ASSIGN_OR_RETURN(auto s, optionalString(j, key, path));
  return s.value_or("");
}

}  // namespace

std::string formatTime(Clock::time_point t) {
  auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  auto frac = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  (void)::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

Result<Clock::time_point> parseTime(std::string_view text) {
  auto bad = [&] {
    return fail(ErrorCode::kInvalidArgument, "\"{}\" is not an RFC 3339 time", text);
  };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':') {
    return bad();
  }
  std::tm tm{};
  int year = fixedDigits(text, 0, 4), month = fixedDigits(text, 5, 2),
      day = fixedDigits(text, 8, 2);
  int hour = fixedDigits(text, 11, 2), minute = fixedDigits(text, 14, 2);
  int second = fixedDigits(text, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60) {
    return bad();
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
      if (digits < 9) nanos = nanos * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad();
    for (size_t d = digits; d < 9; ++d) nanos *= 10;
  }
  int64_t offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh = fixedDigits(text, pos + 1, 2), om = fixedDigits(text, pos + 4, 2);
    if (oh < 0 || om < 0 || pos + 3 >= text.size() || text[pos + 3] != ':') return bad();
    offset_seconds = static_cast<int64_t>(oh * 3600 + om * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  std::time_t secs = ::timegm(&tm);
  auto since_epoch = std::chrono::seconds(secs - offset_seconds) + std::chrono::nanoseconds(nanos);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(since_epoch));
}

Json toJson(const core::AppStatus& s) {
  Json j = {{"name", s.name},
            {"runtime", s.runtime},
            {"image", s.image},
            {"state", s.state},
            {"restarts", s.restarts},
            {"message", s.message},
            {"containerId", s.container_id},
            {"specHash", s.spec_hash},
            {"pid", s.pid},
            {"healthy", s.healthy}};
  if (s.system) j["system"] = true;
  if (!s.last_restart_reason.empty()) j["lastRestartReason"] = s.last_restart_reason;
  if (!s.image_digest.empty()) j["imageDigest"] = s.image_digest;
  if (s.last_exit_code) j["lastExitCode"] = *s.last_exit_code;
  putTime(j, "lastExitAt", s.last_exit_at);
  putTime(j, "startedAt", s.started_at);
  putTime(j, "backoffUntil", s.backoff_until);
  return j;
}

Json toJson(const core::NodeEvent& e) {
  return {{"seq", e.seq},
          {"time", formatTime(e.time)},
          {"app", e.app},
          {"kind", e.kind},
          {"message", e.message}};
}

Json toJson(const core::AppDetail& d) {
  Json events = Json::array();
  for (const auto& e : d.recent_events) events.push_back(toJson(e));
  Json out = {{"status", toJson(d.status)},
              {"spec", d.spec.is_null() ? Json::object() : d.spec},
              {"recentEvents", std::move(events)}};
  if (!d.screen.is_null()) out["screen"] = d.screen;
  if (d.network) {
    auto counter = [](const core::AppNetworkStatus::Counter& c) {
      return Json{{"packets", c.packets}, {"bytes", c.bytes}};
    };
    out["network"] = {{"netns", d.network->netns},
                      {"addresses", d.network->addresses},
                      {"egress", counter(d.network->egress)},
                      {"ingress", counter(d.network->ingress)},
                      {"dropped", counter(d.network->dropped)}};
  }
  return out;
}

Json toJson(const core::NodeStatus& s) {
  Json failed = Json::array();
  for (const auto& f : s.failed) failed.push_back({{"revision", f.revision}, {"reason", f.reason}});
  Json out = {{"desiredRevision", s.desired_revision},
              {"appliedRevision", s.applied_revision},
              {"lastGoodRevision", s.last_good_revision},
              {"converged", s.converged},
              {"errors", s.errors},
              {"failedRevisions", std::move(failed)}};
  if (s.rollback_window) {
    out["rollbackWindow"] = {{"revision", s.rollback_window->revision},
                             {"backTo", s.rollback_window->back_to},
                             {"until", formatTime(s.rollback_window->until)}};
  }
  return out;
}

Json toJson(const core::ApplyResult& r) { return {{"revision", r.revision}, {"apps", r.apps}}; }

Json toJson(const logs::LogEntry& e) {
  return {{"time", logs::formatRfc3339Nano(e.time)},
          {"stream", logs::toString(e.stream)},
          {"log", e.text}};
}

Result<core::AppStatus> appStatusFromJson(const Json& j, std::string_view path) {
  core::AppStatus s;
  FLEETLET_ASSIGN_OR_RETURN(s.name, requireString(j, "name", path));
  FLEETLET_ASSIGN_OR_RETURN(s.state, requireString(j, "state", path));
  FLEETLET_ASSIGN_OR_RETURN(s.runtime, stringOrEmpty(j, "runtime", path));
  FLEETLET_ASSIGN_OR_RETURN(s.image, stringOrEmpty(j, "image", path));
  FLEETLET_ASSIGN_OR_RETURN(s.message, stringOrEmpty(j, "message", path));
  FLEETLET_ASSIGN_OR_RETURN(s.container_id, stringOrEmpty(j, "containerId", path));
  FLEETLET_ASSIGN_OR_RETURN(s.spec_hash, stringOrEmpty(j, "specHash", path));
  FLEETLET_ASSIGN_OR_RETURN(s.last_restart_reason, stringOrEmpty(j, "lastRestartReason", path));
  FLEETLET_ASSIGN_OR_RETURN(s.image_digest, stringOrEmpty(j, "imageDigest", path));
  FLEETLET_ASSIGN_OR_RETURN(auto restarts, optionalInt(j, "restarts", path));
  s.restarts = static_cast<int>(restarts.value_or(0));
  FLEETLET_ASSIGN_OR_RETURN(auto pid, optionalInt(j, "pid", path));
  s.pid = static_cast<uint32_t>(pid.value_or(0));
  FLEETLET_ASSIGN_OR_RETURN(auto code, optionalInt(j, "lastExitCode", path));
  if (code) s.last_exit_code = static_cast<int>(*code);
  FLEETLET_ASSIGN_OR_RETURN(s.healthy, optionalBool(j, "healthy", path, true));
  FLEETLET_ASSIGN_OR_RETURN(s.system, optionalBool(j, "system", path, false));
  FLEETLET_ASSIGN_OR_RETURN(s.last_exit_at, optionalTime(j, "lastExitAt", path));
  FLEETLET_ASSIGN_OR_RETURN(s.started_at, optionalTime(j, "startedAt", path));
  FLEETLET_ASSIGN_OR_RETURN(s.backoff_until, optionalTime(j, "backoffUntil", path));
  return s;
}

Result<core::NodeEvent> nodeEventFromJson(const Json& j, std::string_view path) {
  core::NodeEvent e;
  FLEETLET_ASSIGN_OR_RETURN(e.seq, requireInt(j, "seq", path));
  FLEETLET_ASSIGN_OR_RETURN(e.kind, requireString(j, "kind", path));
  FLEETLET_ASSIGN_OR_RETURN(auto time, requireString(j, "time", path));
  auto t = parseTime(time);
  if (!t) return std::unexpected(t.error().wrap("{}.time", path));
  e.time = *t;
  FLEETLET_ASSIGN_OR_RETURN(e.app, stringOrEmpty(j, "app", path));
  FLEETLET_ASSIGN_OR_RETURN(e.message, stringOrEmpty(j, "message", path));
  return e;
}

Result<core::AppDetail> appDetailFromJson(const Json& j, std::string_view path) {
  core::AppDetail d;
  FLEETLET_ASSIGN_OR_RETURN(const Json* status, requireObject(j, "status", path));
  FLEETLET_ASSIGN_OR_RETURN(d.status, appStatusFromJson(*status, fmt::format("{}.status", path)));
  if (auto spec = j.find("spec"); spec != j.end()) d.spec = *spec;
  if (auto screen = j.find("screen"); screen != j.end() && screen->is_object()) d.screen = *screen;
  if (auto net = j.find("network"); net != j.end() && net->is_object()) {
    const std::string where = fmt::format("{}.network", path);
    core::AppNetworkStatus n;
    FLEETLET_ASSIGN_OR_RETURN(n.netns, stringOrEmpty(*net, "netns", where));
    if (auto a = net->find("addresses"); a != net->end() && a->is_array()) {
      for (const auto& addr : *a) {
        if (addr.is_string()) n.addresses.push_back(addr.get<std::string>());
      }
    }
    for (auto [key, target] : {std::pair{"egress", &n.egress}, std::pair{"ingress", &n.ingress},
                               std::pair{"dropped", &n.dropped}}) {
      auto c = net->find(key);
      if (c == net->end() || !c->is_object()) continue;
      target->packets = c->value("packets", uint64_t{0});
      target->bytes = c->value("bytes", uint64_t{0});
    }
    d.network = std::move(n);
  }
  if (auto events = j.find("recentEvents"); events != j.end() && !events->is_null()) {
    if (!events->is_array()) {
      return fail(ErrorCode::kInvalidArgument, "{}.recentEvents: expected an array, got {}", path,
                  jsonTypeName(*events));
    }
    for (size_t i = 0; i < events->size(); ++i) {
      FLEETLET_ASSIGN_OR_RETURN(
          auto e, nodeEventFromJson((*events)[i], fmt::format("{}.recentEvents[{}]", path, i)));
      d.recent_events.push_back(std::move(e));
    }
  }
  return d;
}

Result<core::NodeStatus> nodeStatusFromJson(const Json& j, std::string_view path) {
  core::NodeStatus s;
  FLEETLET_ASSIGN_OR_RETURN(s.desired_revision, requireInt(j, "desiredRevision", path));
  FLEETLET_ASSIGN_OR_RETURN(s.applied_revision, requireInt(j, "appliedRevision", path));
  FLEETLET_ASSIGN_OR_RETURN(s.last_good_revision, requireInt(j, "lastGoodRevision", path));
  FLEETLET_ASSIGN_OR_RETURN(s.converged, optionalBool(j, "converged", path, false));
  if (auto errors = j.find("errors"); errors != j.end() && !errors->is_null()) {
    if (!errors->is_array()) {
      return fail(ErrorCode::kInvalidArgument, "{}.errors: expected an array, got {}", path,
                  jsonTypeName(*errors));
    }
    for (size_t i = 0; i < errors->size(); ++i) {
      if (!(*errors)[i].is_string()) {
        return fail(ErrorCode::kInvalidArgument, "{}.errors[{}]: expected a string, got {}", path,
                    i, jsonTypeName((*errors)[i]));
      }
      s.errors.push_back((*errors)[i].get<std::string>());
    }
  }
  if (auto failed = j.find("failedRevisions"); failed != j.end() && failed->is_array()) {
    for (size_t i = 0; i < failed->size(); ++i) {
      auto at = fmt::format("{}.failedRevisions[{}]", path, i);
      core::FailedRevision f;
      FLEETLET_ASSIGN_OR_RETURN(f.revision, requireInt((*failed)[i], "revision", at));
      FLEETLET_ASSIGN_OR_RETURN(f.reason, requireString((*failed)[i], "reason", at));
      s.failed.push_back(std::move(f));
    }
  }
  if (auto w = j.find("rollbackWindow"); w != j.end() && w->is_object()) {
    const auto at = fmt::format("{}.rollbackWindow", path);
    core::RollbackWindow window;
    FLEETLET_ASSIGN_OR_RETURN(window.revision, requireInt(*w, "revision", at));
    FLEETLET_ASSIGN_OR_RETURN(window.back_to, requireInt(*w, "backTo", at));
    FLEETLET_ASSIGN_OR_RETURN(auto until, requireString(*w, "until", at));
    auto t = parseTime(until);
    if (!t) return std::unexpected(t.error().wrap("{}.until", at));
    window.until = *t;
    s.rollback_window = window;
  }
  return s;
}

Result<core::ApplyResult> applyResultFromJson(const Json& j, std::string_view path) {
  core::ApplyResult r;
  FLEETLET_ASSIGN_OR_RETURN(r.revision, requireInt(j, "revision", path));
  FLEETLET_ASSIGN_OR_RETURN(auto apps, requireInt(j, "apps", path));
  r.apps = static_cast<int>(apps);
  return r;
}

Result<logs::LogEntry> logEntryFromJson(const Json& j, std::string_view path) {
  logs::LogEntry e;
  FLEETLET_ASSIGN_OR_RETURN(auto time, requireString(j, "time", path));
  auto t = parseTime(time);
  if (!t) return std::unexpected(t.error().wrap("{}.time", path));
  e.time = *t;
  FLEETLET_ASSIGN_OR_RETURN(auto stream, requireString(j, "stream", path));
  if (stream == "stdout") {
    e.stream = logs::Stream::kStdout;
  } else if (stream == "stderr") {
    e.stream = logs::Stream::kStderr;
  } else {
    return fail(ErrorCode::kInvalidArgument, "{}.stream: \"{}\" is not stdout or stderr", path,
                stream);
  }
  FLEETLET_ASSIGN_OR_RETURN(e.text, requireString(j, "log", path));
  return e;
}

}  // namespace fleetlet::api
