#pragma once
// HTTP helpers of the download path: Range (RFC 9110 §14) and HTTP dates.
//
// Concurrency: pure functions; safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet::api {

// An inclusive byte range within a representation.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
};

// Interprets a Range header against a representation of `size` bytes.
// - nullopt: serve the whole representation (no header, not a bytes range, a syntax error,
//   or several ranges, which this server answers with the full body as RFC 9110 allows);
// - a range: answer 206 with it (suffix ranges and open ends resolved, end clamped to size);
// - kInvalidArgument: syntactically fine but unsatisfiable (answer 416).
Result<std::optional<ByteRange>> parseRange(std::optional<std::string_view> header, uint64_t size);

// "Sun, 06 Nov 1994 08:49:37 GMT" for Unix seconds.
std::string httpDate(int64_t unix_seconds);
// Parses the IMF-fixdate form; nullopt when malformed.
std::optional<int64_t> parseHttpDate(std::string_view text);

// Whether an If-None-Match header value matches `etag` (a quoted strong tag); handles "*",
// lists and weak tags (weak comparison, as RFC 9110 requires for If-None-Match).
bool etagMatches(std::string_view if_none_match, std::string_view etag);

}  // namespace fleetlet::api
