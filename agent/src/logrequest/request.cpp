#include "logrequest/request.h"

#include <fmt/format.h>

#include <set>

#include "manifest/parse.h"
#include "trust/envelope.h"

namespace fleetlet::logrequest {
namespace {

Error invalid(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, "log request: " + message);
}

Result<std::string> stringField(const Json& j, const char* name, bool required) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return std::unexpected(invalid(fmt::format("{}: missing", name)));
    return std::string();
  }
  if (!it->is_string()) return std::unexpected(invalid(fmt::format("{}: not a string", name)));
  return it->get<std::string>();
}

Result<logs::TimePoint> timeField(const Json& j, const char* name) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, stringField(j, name, true));
  auto t = parseRfc3339(text);
  if (!t) return std::unexpected(invalid(fmt::format("{}: {}", name, t.error().message())));
  return *t;
}

bool validId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Json toJson(const LogRequest& r) {
  Json j = {{"apiVersion", "fleetlet.io/v1"},
            {"kind", "LogRequest"},
            {"id", r.id},
            {"node", r.node},
            {"source", r.app.empty() ? "node" : "app"},
            {"since", logs::formatRfc3339Nano(r.range.since)},
            {"until", logs::formatRfc3339Nano(r.range.until)},
            {"uploadUrl", r.upload_url},
            {"expires", logs::formatRfc3339Nano(r.expires)}};
  if (!r.app.empty()) j["app"] = r.app;
  if (r.max_bytes) j["maxBytes"] = *r.max_bytes;
  return j;
}

std::string describeSource(const LogRequest& request) {
  return request.app.empty() ? std::string("the node") : "app " + request.app;
}

Result<LogRequest> parseLogRequest(std::string_view payload) {
  auto j = Json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::unexpected(invalid("not a JSON object"));
  static const std::set<std::string, std::less<>> kKnown = {
      "apiVersion", "kind",  "id",        "node",     "source", "app",
      "since",      "until", "uploadUrl", "maxBytes", "expires"};
  for (const auto& [key, value] : j.items()) {
    if (!kKnown.contains(key)) {
      return std::unexpected(invalid(fmt::format("unknown field \"{}\"", key.substr(0, 64))));
    }
  }
  FLEETLET_ASSIGN_OR_RETURN(auto api, stringField(j, "apiVersion", true));
  if (api != "fleetlet.io/v1") {
    return std::unexpected(invalid(fmt::format("apiVersion: \"{}\" is not fleetlet.io/v1", api)));
  }
  FLEETLET_ASSIGN_OR_RETURN(auto kind, stringField(j, "kind", true));
  if (kind != "LogRequest") {
    return std::unexpected(invalid(fmt::format("kind: \"{}\" is not LogRequest", kind)));
  }
  LogRequest r;
  FLEETLET_ASSIGN_OR_RETURN(r.id, stringField(j, "id", true));
  if (!validId(r.id)) {
    return std::unexpected(
        invalid(fmt::format("id: \"{}\" is not 1 to 64 of A-Z a-z 0-9 . _ -", r.id.substr(0, 80))));
  }
  FLEETLET_ASSIGN_OR_RETURN(r.node, stringField(j, "node", true));
  if (r.node.empty()) return std::unexpected(invalid("node: empty"));
  FLEETLET_ASSIGN_OR_RETURN(auto source, stringField(j, "source", true));
  FLEETLET_ASSIGN_OR_RETURN(r.app, stringField(j, "app", false));
  if (source == "app") {
    if (r.app.empty()) return std::unexpected(invalid("app: missing (source is \"app\")"));
    if (auto st = manifest::checkAppName(r.app); !st) {
      return std::unexpected(invalid(fmt::format("app: {}", st.error().message())));
    }
  } else if (source == "node") {
    if (!r.app.empty()) return std::unexpected(invalid("app: given, but source is \"node\""));
  } else {
    return std::unexpected(
        invalid(fmt::format("source: \"{}\" is not \"app\" or \"node\"", source.substr(0, 64))));
  }
  FLEETLET_ASSIGN_OR_RETURN(r.range.since, timeField(j, "since"));
  FLEETLET_ASSIGN_OR_RETURN(r.range.until, timeField(j, "until"));
  if (auto st = logs::checkRange(r.range); !st) {
    return std::unexpected(invalid(st.error().message()));
  }
  FLEETLET_ASSIGN_OR_RETURN(r.upload_url, stringField(j, "uploadUrl", true));
  if (!r.upload_url.starts_with("https://") && !r.upload_url.starts_with("http://")) {
    return std::unexpected(invalid(
        fmt::format("uploadUrl: \"{}\" is not an http(s) URL", r.upload_url.substr(0, 100))));
  }
  if (auto it = j.find("maxBytes"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return std::unexpected(invalid("maxBytes: not a positive integer"));
    }
    r.max_bytes = it->get<int64_t>();
  }
  FLEETLET_ASSIGN_OR_RETURN(r.expires, timeField(j, "expires"));
  return r;
}

Result<LogRequest> admitLogRequest(std::string_view body, const trust::Policy& policy,
                                   std::string_view node_id,
                                   std::chrono::system_clock::time_point now) {
  auto refuse = [](std::string message) {
    return std::unexpected(Error(ErrorCode::kFailedPrecondition, std::move(message)));
  };
  if (!trust::looksLikeEnvelope(body)) {
    std::string start;
    for (char c : body.substr(0, 24)) start += (c >= 0x20 && c < 0x7f) ? c : ' ';
    return refuse(fmt::format(
        "log request: not a signed envelope (unsigned requests are refused; got {} bytes "
        "starting \"{}\")",
        body.size(), start));
  }
  auto envelope = trust::parseEnvelope(body);
  if (!envelope) return refuse("log request: " + envelope.error().message());
  auto verified = policy.verifyAs(*envelope, kPayloadType);
  if (!verified) return refuse("log request: " + verified.error().message());
  auto request = parseLogRequest(verified->manifest);
  if (!request) return refuse(request.error().message());
  if (request->node != node_id) {
    return refuse(fmt::format("log request {}: for node \"{}\", this node is \"{}\"", request->id,
                              request->node, node_id));
  }
  if (request->expires <= now) {
    return refuse(fmt::format("log request {}: expired at {}", request->id,
                              logs::formatRfc3339Nano(request->expires)));
  }
  return request;
}

}  // namespace fleetlet::logrequest
