#pragma once
// Retention policies of stored blobs (keepForever, keepUntilTime, keepUntilNext): parsing
// from the upload's metadata JSON, serializing back, and the keepUntilNext matching rule.
//
// Concurrency: plain values and pure functions; safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::retention {

enum class PolicyKind : std::uint8_t { kKeepForever, kKeepUntilTime, kKeepUntilNext };

struct RetentionPolicy {
  PolicyKind kind = PolicyKind::kKeepForever;
  // kKeepUntilTime: expiry in microseconds since the Unix epoch.
  int64_t until_micros = 0;
  // kKeepUntilNext: the fields a newer blob must match; unset semantics/sourceApp mean "the
  // same as this blob's", an unset source means any source.
  std::optional<std::string> semantics;
  std::optional<std::string> source;
  std::optional<std::string> source_app;
};

// Parses `{"policy":"keepUntilTime","until":...}` etc. as a client sends it. `until` is whole
// Unix seconds (a JSON integer) or an RFC 3339 string. Fails with kInvalidArgument naming
// `path` and the field: not an object, unknown policy, missing or malformed until (a
// fraction such as 1795251600.5 included). Whether `until` lies in the future is the
// store's check (it has the clock).
Result<RetentionPolicy> parseRetentionPolicy(const Json& value, std::string_view path);
// Parses a policy as stored in the index by toJson(): like parseRetentionPolicy, but a
// fractional `until` (a stored RFC 3339 time with a fraction, or a row written before
// fractions were refused) is accepted.
Result<RetentionPolicy> parseStoredRetentionPolicy(const Json& value, std::string_view path);

// The policy as the API shows it; `until` as Unix seconds.
Json toJson(const RetentionPolicy& policy);

// Parses an RFC 3339 timestamp ("2026-11-21T10:00:00Z", "...+02:00", fractional seconds) into
// microseconds since the epoch. Fails with kInvalidArgument.
Result<int64_t> parseRfc3339Micros(std::string_view text);

// The fields a keepUntilNext blob is superseded by, resolved against the blob's own metadata.
struct SupersedeKey {
  std::string semantics;
  std::string source_app;
  std::optional<std::string> source;
};
SupersedeKey supersedeKey(const RetentionPolicy& policy, std::string_view semantics,
                          std::string_view source_app);

}  // namespace fleetlet::retention
