#pragma once
// The event model of the ActyxOS v1 event service: events, streams, filters, offset maps, and
// their wire form (one JSON object per NDJSON line).
//
// Concurrency: plain values; no shared state.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetlet::streams {

// Highest offset per source ({"<source>": <offset>}); ordered so output is deterministic.
using OffsetMap = std::map<std::string, std::int64_t, std::less<>>;

// An event as published: the stream it belongs to (without source) and its payload as
// serialized JSON text.
struct NewEvent {
  std::string semantics;
  std::string name;
  std::string payload;
};

// An event as stored and delivered. `payload` is serialized JSON; `app` is the identity of the
// app that published it ("" for host clients), shown as "sourceApp" when set.
struct Event {
  std::string semantics;
  std::string name;
  std::string source;
  std::int64_t timestamp = 0;
  std::int64_t lamport = 0;
  std::int64_t offset = 0;
  std::string payload;
  std::string app;
};

// What a publish request learns about each event it stored (extension of the 201 body).
struct PublishReceipt {
  std::string source;
  std::int64_t offset = 0;
  std::int64_t lamport = 0;
  std::int64_t timestamp = 0;
};

// A subscription filter: an absent field matches anything.
struct Filter {
  std::optional<std::string> semantics;
  std::optional<std::string> name;
  std::optional<std::string> source;

  bool matches(const Event& event) const;
  bool matchesAll() const { return !semantics && !name && !source; }
};

// True when `event` matches any filter of `filters` (an empty list matches nothing).
bool matchesAny(const std::vector<Filter>& filters, const Event& event);

enum class Order : std::uint8_t { kLamport, kLamportReverse, kSourceOrdered };

// About the bytes `event` takes in memory and as an NDJSON line (payload, stream, app and a
// fixed overhead). Byte limits on pages and subscriber queues count this.
std::size_t eventBytes(const Event& event);

// The NDJSON line of an event, ending in '\n'. Appends to `out`.
void appendEventJson(const Event& event, std::string& out);
std::string eventJson(const Event& event);
// {"<source>":offset,...}
std::string offsetMapJson(const OffsetMap& offsets);
// {"data":[{"source","offset","lamport","timestamp"},...]}
std::string receiptsJson(const std::vector<PublishReceipt>& receipts);

}  // namespace fleetlet::streams
