#include "events/event.h"

#include "json/json.h"

namespace fleetlet::streams {
namespace {

void appendString(std::string_view value, std::string& out) {
  // Printable ASCII without '"' and '\\' needs no escaping: copied as is, the common case
  // for stream names and source ids. Anything else goes through nlohmann.
  bool plain = true;
  for (char c : value) {
    plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  }
  if (plain) {
    out += '"';
    out += value;
    out += '"';
    return;
  }
  out += Json(value).dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

bool Filter::matches(const Event& event) const {
  return (!semantics || *semantics == event.semantics) && (!name || *name == event.name) &&
         (!source || *source == event.source);
}

bool matchesAny(const std::vector<Filter>& filters, const Event& event) {
  for (const auto& filter : filters) {
    if (filter.matches(event)) return true;
  }
  return false;
}

std::size_t eventBytes(const Event& event) {
  // The numbers, the field names and the std::string/shared_ptr headers.
  constexpr std::size_t kOverhead = 160;
  return kOverhead + event.semantics.size() + event.name.size() + event.source.size() +
         event.app.size() + event.payload.size();
}

void appendEventJson(const Event& event, std::string& out) {
  out += R"({"stream":{"semantics":)";
  appendString(event.semantics, out);
  out += R"(,"name":)";
  appendString(event.name, out);
  out += R"(,"source":)";
  appendString(event.source, out);
  out += R"(},"timestamp":)";
  out += std::to_string(event.timestamp);
  out += R"(,"lamport":)";
  out += std::to_string(event.lamport);
  out += R"(,"offset":)";
  out += std::to_string(event.offset);
  if (!event.app.empty()) {
    out += R"(,"sourceApp":)";
    appendString(event.app, out);
  }
  out += R"(,"payload":)";
  out += event.payload.empty() ? std::string_view("null") : std::string_view(event.payload);
  out += "}\n";
}

std::string eventJson(const Event& event) {
  std::string out;
  appendEventJson(event, out);
  return out;
}

std::string offsetMapJson(const OffsetMap& offsets) {
  Json map = Json::object();
  for (const auto& [source, offset] : offsets) map[source] = offset;
  return map.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string receiptsJson(const std::vector<PublishReceipt>& receipts) {
  std::string out;
  out.reserve(16 + receipts.size() * (80 + (receipts.empty() ? 0 : receipts[0].source.size())));
  out += R"({"data":[)";
  for (const auto& r : receipts) {
    if (out.back() != '[') out += ',';
    out += R"({"lamport":)";
    out += std::to_string(r.lamport);
    out += R"(,"offset":)";
    out += std::to_string(r.offset);
    out += R"(,"source":)";
    appendString(r.source, out);
    out += R"(,"timestamp":)";
    out += std::to_string(r.timestamp);
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace fleetlet::streams
