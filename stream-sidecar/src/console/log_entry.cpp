#include "console/log_entry.h"

#include <ctime>

#include "events/requests.h"
#include "handoff/protocol.h"
#include "json/json.h"
#include "time/rfc3339.h"

namespace fleetlet::streams {
namespace {

constexpr std::string_view kLevelLabel = "ax.schemas.logging.level";

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string rfc3339(std::int64_t micros) {
  std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  (void)gmtime_r(&seconds, &tm);
  char buf[40];
  (void)std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);  // 19 chars fit
  return fmt::format("{}.{:06d}Z", buf, micros % 1000000);
}

}  // namespace

bool isSeverity(std::string_view s) {
  return s == "debug" || s == "info" || s == "warn" || s == "error";
}

Result<LogEntry> parseLogRequest(std::string_view body) {
  if (jsonNestingDepth(body) > kMaxJsonDepth) {
    return fail(ErrorCode::kInvalidArgument, "request: JSON nested deeper than {} levels",
                kMaxJsonDepth);
  }
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseJson(body, "request"));
  if (!json.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "request: expected an object, got {}",
                jsonTypeName(json));
  }
  LogEntry entry;
  FLEETLET_ASSIGN_OR_RETURN(entry.log_name, requireString(json, "logName", "request"));
  if (entry.log_name.empty()) {
    return fail(ErrorCode::kInvalidArgument, "request.logName: must not be empty");
  }
  Json labels = Json::object();
  if (auto it = json.find("labels"); it != json.end() && !it->is_null()) {
    if (!it->is_object()) {
      return fail(ErrorCode::kInvalidArgument, "request.labels: expected an object, got {}",
                  jsonTypeName(*it));
    }
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        return fail(ErrorCode::kInvalidArgument, "request.labels.{}: expected a string, got {}", k,
                    jsonTypeName(v));
      }
    }
    labels = *it;
  }
  FLEETLET_ASSIGN_OR_RETURN(auto severity, optionalString(json, "severity", "request"));
  if (!severity && labels.contains(kLevelLabel)) severity = labels[kLevelLabel].get<std::string>();
  entry.severity = severity.value_or("info");
  if (!isSeverity(entry.severity)) {
    return fail(ErrorCode::kInvalidArgument,
                "request.severity: expected debug, info, warn or error, got \"{}\"",
                entry.severity);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto message, optionalString(json, "message", "request"));
  Json extra = Json::object();
  for (std::string_view key : {"producerName", "producerVersion", "logTimestamp"}) {
    FLEETLET_ASSIGN_OR_RETURN(auto value, optionalString(json, key, "request"));
    if (value) extra[std::string(key)] = *value;
  }
  if (auto stamp = extra.find("logTimestamp"); stamp != extra.end()) {
    if (auto time = parseRfc3339(stamp->get_ref<const std::string&>()); !time) {
      return std::unexpected(time.error().wrap("request.logTimestamp"));
    }
  }
  if (auto it = json.find("additionalData"); it != json.end()) extra["additionalData"] = *it;
  if (auto it = json.find("payload"); it != json.end()) {
    extra["payload"] = *it;
    if (!message) {
      auto m = it->is_object() ? it->find("message") : it->end();
      if (it->is_object() && m != it->end() && m->is_string()) {
        message = m->get<std::string>();
      } else {
        message = it->is_string() ? it->get<std::string>() : dump(*it);
      }
    }
  }
  entry.message = message.value_or("");
  entry.labels = dump(labels);
  entry.extra = dump(extra);
  return entry;
}

Result<std::vector<IngestEntry>> parseIngestRequest(std::string_view body) {
  if (jsonNestingDepth(body) > kMaxJsonDepth) {
    return fail(ErrorCode::kInvalidArgument, "request: JSON nested deeper than {} levels",
                kMaxJsonDepth);
  }
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseJson(body, "request"));
  if (!json.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "request: expected an object, got {}",
                jsonTypeName(json));
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* entries, requireArray(json, "entries", "request"));
  if (entries->size() > kMaxIngestEntries) {
    return fail(ErrorCode::kInvalidArgument, "request.entries: {} entries, at most {} allowed",
                entries->size(), kMaxIngestEntries);
  }
  std::vector<IngestEntry> out;
  out.reserve(entries->size());
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const Json& e = (*entries)[i];
    const std::string path = fmt::format("request.entries[{}]", i);
    if (!e.is_object()) {
      return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                  jsonTypeName(e));
    }
    IngestEntry in;
    FLEETLET_ASSIGN_OR_RETURN(in.entry.app, requireString(e, "app", path));
    if (auto st = handoff::validateName(path + ".app", in.entry.app); !st) {
      return std::unexpected(st.error());
    }
    FLEETLET_ASSIGN_OR_RETURN(in.key, requireString(e, "key", path));
    if (in.key.empty() || in.key.size() > kMaxIngestKeyBytes) {
      return fail(ErrorCode::kInvalidArgument, "{}.key: must be 1 to {} bytes, got {}", path,
                  kMaxIngestKeyBytes, in.key.size());
    }
    FLEETLET_ASSIGN_OR_RETURN(in.entry.log_name, requireString(e, "logName", path));
    if (in.entry.log_name.empty()) {
      return fail(ErrorCode::kInvalidArgument, "{}.logName: must not be empty", path);
    }
    FLEETLET_ASSIGN_OR_RETURN(auto severity, optionalString(e, "severity", path));
    in.entry.severity = severity.value_or("info");
    if (!isSeverity(in.entry.severity)) {
      return fail(ErrorCode::kInvalidArgument,
                  "{}.severity: expected debug, info, warn or error, got \"{}\"", path,
                  in.entry.severity);
    }
    FLEETLET_ASSIGN_OR_RETURN(in.entry.message, requireString(e, "message", path));
    Json extra = Json::object();
    FLEETLET_ASSIGN_OR_RETURN(auto stamp, optionalString(e, "logTimestamp", path));
    if (stamp) {
      if (auto time = parseRfc3339(*stamp); !time) {
        return std::unexpected(time.error().wrap("{}.logTimestamp", path));
      }
      extra["logTimestamp"] = *stamp;
    }
    Json labels = Json::object();
    if (auto it = e.find("labels"); it != e.end() && !it->is_null()) {
      if (!it->is_object()) {
        return fail(ErrorCode::kInvalidArgument, "{}.labels: expected an object, got {}", path,
                    jsonTypeName(*it));
      }
      for (const auto& [k, v] : it->items()) {
        if (!v.is_string()) {
          return fail(ErrorCode::kInvalidArgument, "{}.labels.{}: expected a string, got {}", path,
                      k, jsonTypeName(v));
        }
      }
      labels = *it;
    }
    in.entry.labels = dump(labels);
    in.entry.extra = dump(extra);
    out.push_back(std::move(in));
  }
  return out;
}

std::string logEntryJson(const LogEntry& entry) {
  Json j = Json::object();
  j["seq"] = entry.seq;
  j["time"] = rfc3339(entry.time);
  j["app"] = entry.app;
  j["logName"] = entry.log_name;
  j["severity"] = entry.severity;
  j["message"] = entry.message;
  auto labels = Json::parse(entry.labels, nullptr, false);
  j["labels"] = labels.is_discarded() ? Json::object() : labels;
  auto extra = Json::parse(entry.extra, nullptr, false);
  if (extra.is_object()) {
    for (auto& [k, v] : extra.items()) j[k] = v;
  }
  return dump(j) + "\n";
}

}  // namespace fleetlet::streams
