#include "events/requests.h"

#include <limits>
#include <optional>

#include "events/raw_json.h"
#include "json/json.h"

namespace fleetlet::streams {
namespace {

Result<Json> parseBody(std::string_view body) {
  if (jsonNestingDepth(body) > kMaxJsonDepth) {
    return fail(ErrorCode::kInvalidArgument, "request: JSON nested deeper than {} levels",
                kMaxJsonDepth);
  }
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseJson(body, "request"));
  if (!json.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "request: expected an object, got {}",
                jsonTypeName(json));
  }
  return json;
}

Result<std::vector<Filter>> parseFilters(const Json& request) {
  FLEETLET_ASSIGN_OR_RETURN(const Json* list, requireArray(request, "subscriptions", "request"));
  std::vector<Filter> filters;
  filters.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Json& f = (*list)[i];
    std::string path = fmt::format("request.subscriptions[{}]", i);
    if (!f.is_object()) {
      return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                  jsonTypeName(f));
    }
    Filter filter;
    FLEETLET_ASSIGN_OR_RETURN(filter.semantics, optionalString(f, "semantics", path));
    FLEETLET_ASSIGN_OR_RETURN(filter.name, optionalString(f, "name", path));
    FLEETLET_ASSIGN_OR_RETURN(filter.source, optionalString(f, "source", path));
    filters.push_back(std::move(filter));
  }
  return filters;
}

Result<OffsetMap> parseOffsetMap(const Json& request, std::string_view key, bool required) {
  auto it = request.find(key);
  if (it == request.end() || it->is_null()) {
    if (required) return fail(ErrorCode::kInvalidArgument, "request.{}: missing", key);
    return OffsetMap{};
  }
  if (!it->is_object()) {
    return fail(ErrorCode::kInvalidArgument, "request.{}: expected an object, got {}", key,
                jsonTypeName(*it));
  }
  OffsetMap map;
  for (const auto& [source, value] : it->items()) {
    bool fits = value.is_number_integer() &&
                (!value.is_number_unsigned() ||
                 value.get<std::uint64_t>() <=
                     static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    if (!fits) {
      return fail(ErrorCode::kInvalidArgument, "request.{}.{}: expected an integer, got {}", key,
                  source, jsonTypeName(value));
    }
    if (source.empty()) {
      return fail(ErrorCode::kInvalidArgument, "request.{}: empty source id", key);
    }
    map.emplace(source, value.get<std::int64_t>());
  }
  return map;
}

// The text of a JSON string that needs no unescaping ("abc" gives abc); nullopt for other
// values and for strings with escapes.
std::optional<std::string_view> plainString(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::nullopt;
  raw = raw.substr(1, raw.size() - 2);
  if (raw.find('\\') != std::string_view::npos) return std::nullopt;
  return raw;
}

// The common publish request ({"data":[{"semantics":"…","name":"…","payload":…},…]} with
// names that need no unescaping), read without building a DOM: nlohmann validates it
// (Json::accept) and raw_json.h finds the members, as the full path does. nullopt when the
// request is anything else, malformed included: then the full path parses it and names the
// problem. Both give the same events for every request this one accepts.
std::optional<PublishRequest> parseCommonPublishRequest(std::string_view body) {
  if (jsonNestingDepth(body) > kMaxJsonDepth || !Json::accept(body)) return std::nullopt;
  std::size_t start = body.find_first_not_of(" \t\n\r");
  if (start == std::string_view::npos || body[start] != '{') return std::nullopt;
  std::string_view data = rawMember(body, "data");
  if (data.empty() || data.front() != '[') return std::nullopt;
  PublishRequest request;
  for (std::string_view raw : rawElements(data)) {
    if (raw.front() != '{') return std::nullopt;
    auto semantics = plainString(rawMember(raw, "semantics"));
    auto name = plainString(rawMember(raw, "name"));
    std::string_view payload = rawMember(raw, "payload");
    if (!semantics || !name || semantics->empty() || name->empty() || payload.empty()) {
      return std::nullopt;
    }
    request.events.push_back(
        NewEvent{std::string(*semantics), std::string(*name), compactJson(payload)});
  }
  return request;
}

}  // namespace

int jsonNestingDepth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Result<PublishRequest> parsePublishRequest(std::string_view body) {
  if (auto common = parseCommonPublishRequest(body)) return std::move(*common);
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseBody(body));
  FLEETLET_ASSIGN_OR_RETURN(const Json* data, requireArray(json, "data", "request"));
  // Payloads are kept as written (see events/raw_json.h); nlohmann has validated the body.
  std::vector<std::string_view> raw = rawElements(rawMember(body, "data"));
  if (raw.size() != data->size()) {
    return fail(ErrorCode::kInternal, "request.data: found {} raw elements for {} events",
                raw.size(), data->size());
  }
  PublishRequest request;
  request.events.reserve(data->size());
  for (std::size_t i = 0; i < data->size(); ++i) {
    const Json& e = (*data)[i];
    std::string path = fmt::format("request.data[{}]", i);
    if (!e.is_object()) {
      return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                  jsonTypeName(e));
    }
    NewEvent event;
    FLEETLET_ASSIGN_OR_RETURN(event.semantics, requireString(e, "semantics", path));
    FLEETLET_ASSIGN_OR_RETURN(event.name, requireString(e, "name", path));
    // Readers (the ActyxOS SDK among them) reject events with an empty stream name.
    if (event.semantics.empty() || event.name.empty()) {
      return fail(ErrorCode::kInvalidArgument, "{}.{}: must not be empty", path,
                  event.semantics.empty() ? "semantics" : "name");
    }
    auto payload = e.find("payload");
    if (payload == e.end()) return fail(ErrorCode::kInvalidArgument, "{}.payload: missing", path);
    event.payload = compactJson(rawMember(raw[i], "payload"));
    request.events.push_back(std::move(event));
  }
  return request;
}

Result<QueryRequest> parseQueryRequest(std::string_view body) {
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseBody(body));
  QueryRequest request;
  FLEETLET_ASSIGN_OR_RETURN(request.filters, parseFilters(json));
  FLEETLET_ASSIGN_OR_RETURN(std::string order, requireString(json, "order", "request"));
  if (order == "lamport") {
    request.order = Order::kLamport;
  } else if (order == "lamport-reverse") {
    request.order = Order::kLamportReverse;
  } else if (order == "source-ordered") {
    request.order = Order::kSourceOrdered;
  } else {
    return fail(ErrorCode::kInvalidArgument,
                "request.order: expected \"lamport\", \"lamport-reverse\" or \"source-ordered\", "
                "got \"{}\"",
                order);
  }
  FLEETLET_ASSIGN_OR_RETURN(request.upper_bound, parseOffsetMap(json, "upperBound", true));
  FLEETLET_ASSIGN_OR_RETURN(request.lower_bound, parseOffsetMap(json, "lowerBound", false));
  return request;
}

Result<SubscribeRequest> parseSubscribeRequest(std::string_view body) {
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseBody(body));
  SubscribeRequest request;
  FLEETLET_ASSIGN_OR_RETURN(request.filters, parseFilters(json));
  FLEETLET_ASSIGN_OR_RETURN(request.lower_bound, parseOffsetMap(json, "lowerBound", false));
  return request;
}

}  // namespace fleetlet::streams
