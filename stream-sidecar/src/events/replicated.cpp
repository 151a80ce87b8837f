#include "events/replicated.h"

#include <algorithm>

#include "events/raw_json.h"
#include "events/requests.h"
#include "json/json.h"

namespace fleetlet::streams {
namespace {

Status checkToken(std::string_view what, std::string_view value, bool underscore) {
  auto ok = [underscore](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           (underscore && c == '_');
  };
  if (value.empty() || value.size() > 64 || !std::ranges::all_of(value, ok)) {
    return fail(ErrorCode::kInvalidArgument, "{} '{}': 1 to 64 of letters, digits, '-'{}", what,
                value, underscore ? " and '_'" : " (no '_')");
  }
  return {};
}

std::unexpected<Rejected> reject(Rejection reason, std::string message) {
  return std::unexpected(Rejected{reason, std::move(message)});
}

}  // namespace

Status checkSiteName(std::string_view site) { return checkToken("site", site, false); }
Status checkReplicatedSource(std::string_view source) {
  return checkToken("source id", source, true);
}

std::string sourceSubject(std::string_view site, std::string_view source) {
  return fmt::format("fl.{}.src.{}", site, source);
}
std::string sourceStream(std::string_view site, std::string_view source) {
  return fmt::format("FL_{}_{}", site, source);
}
std::string siteSubjects(std::string_view site) { return fmt::format("fl.{}.src.*", site); }
std::string whoSubject(std::string_view site, std::string_view source) {
  return fmt::format("fl.{}.node.{}.who", site, source);
}

std::optional<std::string> sourceOfSubject(std::string_view site, std::string_view subject) {
  std::string prefix = fmt::format("fl.{}.src.", site);
  if (!subject.starts_with(prefix)) return std::nullopt;
  std::string_view source = subject.substr(prefix.size());
  if (!checkReplicatedSource(source)) return std::nullopt;
  return std::string(source);
}

std::string replicatedEventJson(const Event& event) {
  std::string out;
  appendEventJson(event, out);
  out.pop_back();  // the NDJSON newline
  return out;
}

std::string_view toString(Rejection reason) {
  switch (reason) {
    case Rejection::kTooLarge:
      return "too_large";
    case Rejection::kBadJson:
      return "bad_json";
    case Rejection::kWrongSource:
      return "wrong_source";
    case Rejection::kWrongOffset:
      return "wrong_offset";
  }
  return "unknown";
}

std::expected<Event, Rejected> parseReplicatedEvent(std::string_view body, std::string_view source,
                                                    std::uint64_t seq, std::size_t max_bytes) {
  if (body.size() > max_bytes) {
    return reject(Rejection::kTooLarge,
                  fmt::format("{} bytes, more than the limit of {}", body.size(), max_bytes));
  }
  if (jsonNestingDepth(body) > kMaxJsonDepth) {
    return reject(Rejection::kBadJson, "JSON nested too deep");
  }
  auto json = parseJson(body, "event");
  if (!json) return reject(Rejection::kBadJson, json.error().message());
  if (!json->is_object()) return reject(Rejection::kBadJson, "not a JSON object");
  Event e;
  auto fields = [&]() -> Status {
    FLEETLET_ASSIGN_OR_RETURN(const Json* stream, requireObject(*json, "stream", "event"));
    FLEETLET_ASSIGN_OR_RETURN(e.semantics, requireString(*stream, "semantics", "event.stream"));
    FLEETLET_ASSIGN_OR_RETURN(e.name, requireString(*stream, "name", "event.stream"));
    FLEETLET_ASSIGN_OR_RETURN(e.source, requireString(*stream, "source", "event.stream"));
    FLEETLET_ASSIGN_OR_RETURN(e.timestamp, requireInt(*json, "timestamp", "event"));
    FLEETLET_ASSIGN_OR_RETURN(e.lamport, requireInt(*json, "lamport", "event"));
    FLEETLET_ASSIGN_OR_RETURN(e.offset, requireInt(*json, "offset", "event"));
    FLEETLET_ASSIGN_OR_RETURN(auto app, optionalString(*json, "sourceApp", "event"));
    e.app = app.value_or("");
    if (e.semantics.empty() || e.name.empty()) {
      return fail(ErrorCode::kInvalidArgument, "event.stream: empty semantics or name");
    }
    if (e.lamport < 0) return fail(ErrorCode::kInvalidArgument, "event.lamport: negative");
    if (!json->contains("payload")) {
      return fail(ErrorCode::kInvalidArgument, "event.payload: missing");
    }
    return {};
  }();
  if (!fields) return reject(Rejection::kBadJson, fields.error().message());
  if (e.source != source) {
    return reject(Rejection::kWrongSource,
                  fmt::format("event of source '{}' in the stream of '{}'", e.source, source));
  }
  if (seq == 0 || e.offset != static_cast<std::int64_t>(seq - 1)) {
    return reject(Rejection::kWrongOffset,
                  fmt::format("offset {} at stream sequence {}", e.offset, seq));
  }
  e.payload = compactJson(rawMember(body, "payload"));
  return e;
}

}  // namespace fleetlet::streams
