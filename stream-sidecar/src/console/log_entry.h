#pragma once
// Console (logging) service entries: parsing both ActyxOS v1 request shapes and the NDJSON
// form returned when reading logs.
//
// Concurrency: plain values and pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::streams {

struct LogEntry {
  std::int64_t seq = 0;   // assigned by the store, increasing
  std::int64_t time = 0;  // microseconds since the epoch, when received
  std::string app;        // listener tag of the producer ("" = host)
  std::string log_name;
  std::string severity;  // debug|info|warn|error
  std::string message;
  // The remaining fields as serialized JSON objects ("{}" when none): labels, and the
  // request's other members (producerName, producerVersion, logTimestamp, additionalData,
  // payload).
  std::string labels = "{}";
  std::string extra = "{}";
};

// Parses a POST /api/v1/logs body (either shape). kInvalidArgument names the problem: not an
// object, missing or non-string logName, unknown severity, mistyped fields.
Result<LogEntry> parseLogRequest(std::string_view body);

// One entry posted by fleetletd on behalf of an app (POST /api/v1/logs/ingest, docs/logs.md
// "Shipping"): `key` makes it idempotent: the store keeps one entry per (app, key).
struct IngestEntry {
  std::string key;
  LogEntry entry;  // app, log_name, severity, message, labels, extra
};

// Limits of an ingest body.
inline constexpr std::size_t kMaxIngestEntries = 4096;
inline constexpr std::size_t kMaxIngestKeyBytes = 256;

// Parses {"entries":[{"app","key","logName","severity"?,"message","logTimestamp"?,
// "labels"?},...]}. app: 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit;
// key: 1-256 bytes; logTimestamp RFC 3339; at most kMaxIngestEntries entries. kInvalidArgument
// names the entry and the problem; nothing is accepted when one entry is bad.
Result<std::vector<IngestEntry>> parseIngestRequest(std::string_view body);

// {"seq","time","app","logName","severity","message","labels",...extra} + '\n'; time is
// RFC 3339 UTC with microseconds.
std::string logEntryJson(const LogEntry& entry);

// Whether `severity` is one of debug|info|warn|error.
bool isSeverity(std::string_view severity);

}  // namespace fleetlet::streams
