#include "logs/time_range.h"

#include <fmt/format.h>

#include <cctype>

namespace fleetlet::logs {

Result<TimePoint> parseTimeBound(std::string_view what, std::string_view text, TimePoint now) {
  auto bad = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "{}: \"{}\" is neither an RFC 3339 time (2026-12-07T06:00:00Z) nor a duration "
                "before now (10m, 2h, 1d)",
                what, text.substr(0, 64));
  };
  if (text.empty()) return bad();
  if (text.find('T') != std::string_view::npos || text.find('-') != std::string_view::npos) {
    auto t = parseRfc3339(text);
    if (!t) {
      return fail(ErrorCode::kInvalidArgument, "{}: \"{}\": {}", what, text.substr(0, 64),
                  t.error().message());
    }
    return *t;
  }
  std::chrono::seconds ago{0};
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      if (n > 1'000'000'000) return bad();  // more than 30 years of seconds
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i == text.size()) return bad();
    int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return bad();
    }
    ++i;
    ago += std::chrono::seconds(n * unit);
  }
  return now - ago;
}

Status checkRange(const TimeRange& range) {
  if (range.since < range.until) return {};
  return fail(ErrorCode::kInvalidArgument, "since ({}) is not before until ({})",
              formatRfc3339Nano(range.since), formatRfc3339Nano(range.until));
}

std::string formatEntryLine(TimePoint time, Stream stream, std::string_view text) {
  std::string out = formatRfc3339Nano(time);
  out += ' ';
  out += toString(stream);
  out += ' ';
  out += text;
  out += '\n';
  return out;
}

}  // namespace fleetlet::logs
