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
  std::tm tm{};
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

bool etagMatches(std::string_view if_none_match, std::string_view etag) {
  std::string_view list = trim(if_none_match);
  if (list == "*") return true;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view tag = trim(list.substr(0, comma));
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace fleetlet::api
