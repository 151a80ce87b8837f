#include "cloud/poll_schedule.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <string>

namespace fleetlet::cloud {
namespace {

std::optional<int64_t> decimal(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

PollSchedule::PollSchedule(Duration interval, std::function<double()> random01)
    : interval_(interval), random01_(std::move(random01)) {}

Duration PollSchedule::jitter(Duration d) {
  double factor = 0.8 + 0.4 * std::clamp(random01_(), 0.0, 1.0);
  return Duration(static_cast<int64_t>(static_cast<double>(d.count()) * factor));
}

Duration PollSchedule::next(const PollOutcome& outcome) {
  Duration delay{0};
  if (outcome.answered) {
    failures_ = 0;
    Duration base = interval_;
    if (outcome.max_age) {
      base = std::clamp(*outcome.max_age, Duration(std::chrono::seconds(1)), kMaxServerDelay);
    }
    delay = std::max(Duration(0), jitter(base) - outcome.elapsed);
  } else {
    ++failures_;
    Duration base = interval_;
    // 15 s·2ⁿ⁻¹ until it passes the interval (no overflow: the shift stops early).
    if (failures_ < 20) base = std::min(interval_, kFirstBackoff * (int64_t{1} << (failures_ - 1)));
    delay = jitter(base);
  }
  if (outcome.retry_after) delay = std::max(delay, std::min(*outcome.retry_after, kMaxServerDelay));
  return delay;
}

std::optional<Duration> parseRetryAfter(std::string_view value,
                                        std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (auto seconds = decimal(value)) {
    return Duration(std::chrono::seconds(std::min<int64_t>(*seconds, 366LL * 24 * 3600)));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  return std::max(Duration(0), std::chrono::duration_cast<Duration>(at - now));
}

std::optional<Duration> parseMaxAge(std::string_view cache_control) {
  while (!cache_control.empty()) {
    auto comma = cache_control.find(',');
    auto item = trim(cache_control.substr(0, comma));
    cache_control = comma == std::string_view::npos ? "" : cache_control.substr(comma + 1);
    if (item.size() > 8 && lower(item.substr(0, 8)) == "max-age=") {
      auto v = item.substr(8);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      auto seconds = decimal(v);
      if (!seconds) return std::nullopt;
      return Duration(std::chrono::seconds(std::min<int64_t>(*seconds, 366LL * 24 * 3600)));
    }
  }
  return std::nullopt;
}

}  // namespace fleetlet::cloud
