#pragma once
// Names on the site hub and the wire form of replicated events (docs/replication.md).
//
// Each source's log is one JetStream stream FL_<site>_<source> holding one subject
// fl.<site>.src.<source>; message n (stream sequence n) is the event at offset n-1, its body
// the event's JSON exactly as the HTTP API returns it (one NDJSON line without the newline).
//
// Concurrency: pure functions.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"
#include "events/event.h"

namespace fleetlet::streams {

// A site name: 1..64 of [A-Za-z0-9-] (no '_': it separates site and source in stream names).
Status checkSiteName(std::string_view site);
// A source id that can be replicated: 1..64 of [A-Za-z0-9_-] (a subject token and part of a
// stream name).
Status checkReplicatedSource(std::string_view source);

std::string sourceSubject(std::string_view site, std::string_view source);
std::string sourceStream(std::string_view site, std::string_view source);
// Subject every source's stream matches: fl.<site>.src.*
std::string siteSubjects(std::string_view site);
// Where the node running `source` answers "who holds this source id" (core NATS request).
std::string whoSubject(std::string_view site, std::string_view source);
// The source of subject fl.<site>.src.<source>; nullopt for anything else.
std::optional<std::string> sourceOfSubject(std::string_view site, std::string_view subject);

// The message body of `event`.
std::string replicatedEventJson(const Event& event);

// Why a replicated message was ignored.
enum class Rejection : std::uint8_t { kTooLarge, kBadJson, kWrongSource, kWrongOffset };
inline constexpr std::size_t kRejectionCount = 4;
std::string_view toString(Rejection reason);

struct Rejected {
  Rejection reason;
  std::string message;
};

// The event in message `seq` (stream sequence, from 1) of `source`'s stream: a body of at most
// `max_bytes`, valid JSON no deeper than the request limit, every field of an event with the
// right type, stream.source == `source` and offset == seq - 1. Anything else is Rejected.
std::expected<Event, Rejected> parseReplicatedEvent(std::string_view body, std::string_view source,
                                                    std::uint64_t seq, std::size_t max_bytes);

}  // namespace fleetlet::streams
