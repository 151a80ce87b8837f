#include "api/http_range.h"

#include <charconv>
#include <ctime>

namespace fleetlet::api {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<std::optional<ByteRange>> parseRange(std::optional<std::string_view> header, uint64_t size) {
  if (!header) return std::optional<ByteRange>();
  std::string_view value = trim(*header);
  if (!value.starts_with("bytes=")) return std::optional<ByteRange>();
  value.remove_prefix(6);
  if (value.find(',') != std::string_view::npos) return std::optional<ByteRange>();
  value = trim(value);
  std::size_t dash = value.find('-');
  if (dash == std::string_view::npos) return std::optional<ByteRange>();
  std::string_view first_text = trim(value.substr(0, dash));
  std::string_view last_text = trim(value.substr(dash + 1));
  auto unsatisfiable = [&] {
    return fail(ErrorCode::kInvalidArgument, "range \"{}\" is outside the {} bytes", *header, size);
  };
  if (first_text.empty()) {
    auto suffix = number(last_text);
    if (!suffix) return std::optional<ByteRange>();
    if (*suffix == 0 || size == 0) return unsatisfiable();
    uint64_t n = std::min(*suffix, size);
    return std::optional<ByteRange>(ByteRange{size - n, size - 1});
  }
  auto first = number(first_text);
  if (!first) return std::optional<ByteRange>();
  uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    auto parsed = number(last_text);
    if (!parsed || *parsed < *first) return std::optional<ByteRange>();
    last = std::min(*parsed, last);
  }
  if (*first >= size) return unsatisfiable();
  return std::optional<ByteRange>(ByteRange{*first, last});
}

std::string httpDate(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  // Only a year beyond INT_MAX makes it fail; the epoch stands in for such a date.
  if (gmtime_r(&t, &tm) == nullptr) tm = std::tm{.tm_mday = 1, .tm_year = 70};
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::optional<int64_t> parseHttpDate(std::string_view text) {
  std::string copy(trim(text));
  // IMF-fixdate, then the obsolete RFC 850 and asctime forms (RFC 9110 §5.6.7).
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(copy.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return static_cast<int64_t>(timegm(&tm));
  }
  return std::nullopt;
}

namespace {

// Whether the entity-tag list `list` ("*" or comma-separated tags) contains `etag`. The weak
// comparison ignores W/ prefixes; the strong one never matches a weak tag.
bool etagListMatches(std::string_view list, std::string_view etag, bool weak) {
  list = trim(list);
  if (list == "*") return true;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view tag = trim(list.substr(0, comma));
    bool weak_tag = tag.starts_with("W/");
    if (weak_tag) tag.remove_prefix(2);
    if (tag == etag && (weak || !weak_tag)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool etagMatches(std::string_view if_none_match, std::string_view etag) {
  return etagListMatches(if_none_match, etag, true);
}

bool etagMatchesStrong(std::string_view if_match, std::string_view etag) {
  return etagListMatches(if_match, etag, false);
}

PreconditionResult evaluatePreconditions(std::string_view method, const ConditionalHeaders& headers,
                                         std::string_view etag, int64_t last_modified) {
  using Outcome = PreconditionResult::Outcome;
  const bool safe = method == "GET" || method == "HEAD";
  if (headers.if_match) {
    if (!etagMatchesStrong(*headers.if_match, etag)) return {Outcome::kFailed, "If-Match"};
  } else if (headers.if_unmodified_since) {
    auto since = parseHttpDate(*headers.if_unmodified_since);
    if (since && last_modified > *since) return {Outcome::kFailed, "If-Unmodified-Since"};
  }
  if (headers.if_none_match) {
    if (etagMatches(*headers.if_none_match, etag)) {
      return {safe ? Outcome::kNotModified : Outcome::kFailed, "If-None-Match"};
    }
  } else if (safe && headers.if_modified_since) {
    auto since = parseHttpDate(*headers.if_modified_since);
    if (since && last_modified <= *since) return {Outcome::kNotModified, "If-Modified-Since"};
  }
  return {};
}

bool passiveContentType(std::string_view content_type) {
  std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (type == "image/svg+xml") return false;
  for (std::string_view prefix : {"image/", "audio/", "video/", "font/"}) {
    // A bare prefix ("image/") or anything with characters a token does not have is refused.
    if (type.starts_with(prefix) && type.size() > prefix.size() &&
        type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-/") ==
            std::string::npos &&
        !type.ends_with("+xml") && type.find('/', prefix.size()) == std::string::npos) {
      return true;
    }
  }
  for (std::string_view exact : {"text/plain", "text/csv", "application/json", "application/pdf",
                                 "application/octet-stream"}) {
    if (type == exact) return true;
  }
  return false;
}

}  // namespace fleetlet::api
