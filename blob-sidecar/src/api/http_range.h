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
// Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime
// forms recipients must accept; nullopt when malformed.
std::optional<int64_t> parseHttpDate(std::string_view text);

// Whether an If-None-Match header value matches `etag` (a quoted strong tag); handles "*",
// lists and weak tags (weak comparison, as RFC 9110 requires for If-None-Match).
bool etagMatches(std::string_view if_none_match, std::string_view etag);
// Whether an If-Match header value matches `etag` with the strong comparison RFC 9110
// §13.1.1 requires: "*" matches, a weak tag W/"..." never does.
bool etagMatchesStrong(std::string_view if_match, std::string_view etag);

// The conditional request headers of a request (absent ones nullopt).
struct ConditionalHeaders {
  std::optional<std::string_view> if_match;
  std::optional<std::string_view> if_none_match;
  std::optional<std::string_view> if_modified_since;
  std::optional<std::string_view> if_unmodified_since;
};

struct PreconditionResult {
  enum class Outcome : std::uint8_t { kProceed, kNotModified, kFailed };
  Outcome outcome = Outcome::kProceed;
  // For kNotModified and kFailed: which header decided, e.g. "If-Match".
  std::string_view header;
};

// Evaluates the preconditions of a `method` request on an existing representation with the
// strong `etag` and `last_modified` (Unix seconds), in the order of RFC 9110 §13.2.2:
// If-Match (strong) else If-Unmodified-Since, failing → kFailed (412); then If-None-Match
// (weak), matching → kNotModified (304) for GET/HEAD and kFailed for other methods; else, for
// GET/HEAD only, If-Modified-Since not older than last_modified → kNotModified. A malformed
// date is ignored, as the RFC requires. If-Range is not part of this (it only decides
// whether a Range applies).
PreconditionResult evaluatePreconditions(std::string_view method, const ConditionalHeaders& headers,
                                         std::string_view etag, int64_t last_modified);

// Whether a blob of `content_type` (as uploaded: any case, parameters allowed) may be shown
// inline by a browser: images other than SVG, audio, video, fonts, text/plain, text/csv,
// application/json, application/pdf and application/octet-stream. Everything else (HTML,
// XHTML, SVG, XML, JavaScript, CSS, unknown or malformed types) is active or may be, and is
// served as an attachment in a CSP sandbox so that it cannot run on the service's origin.
bool passiveContentType(std::string_view content_type);

}  // namespace fleetlet::api
