#include "time/rfc3339.h"

#include <charconv>
#include <cstdint>

namespace fleetlet {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;

// Parses exactly `width` decimal digits at `pos`; false when they are not all digits.
bool digits(std::string_view text, size_t pos, size_t width, int& value) {
  if (pos + width > text.size()) return false;
  value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

Result<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text) {
  // 2006-01-02T15:04:05[.999999999](Z|+07:00)
  int year, month, day, hour, minute, second;
  if (!digits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
      !digits(text, 5, 2, month) || text[7] != '-' || !digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't') || !digits(text, 11, 2, hour) || text[13] != ':' ||
      !digits(text, 14, 2, minute) || text[16] != ':' || !digits(text, 17, 2, second)) {
    return fail(ErrorCode::kInvalidArgument, "time \"{}\" is not RFC 3339", text);
  }
  std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(unsigned(month)),
                                  std::chrono::day(unsigned(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return fail(ErrorCode::kInvalidArgument, "time \"{}\" is out of range", text);
  }
  size_t pos = 19;
  std::int64_t frac_ns = 0;
  if (pos < text.size() && text[pos] == '.') {
    size_t start = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    size_t n = pos - start;
    if (n == 0 || n > 9) {
      return fail(ErrorCode::kInvalidArgument, "time \"{}\" has a bad fraction", text);
    }
    std::from_chars(text.data() + start, text.data() + pos, frac_ns);
    for (size_t i = n; i < 9; ++i) frac_ns *= 10;
  }
  int offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(text, pos + 4, 2, om)) {
      return fail(ErrorCode::kInvalidArgument, "time \"{}\" has a bad zone offset", text);
    }
    offset_minutes = (oh * 60 + om) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return fail(ErrorCode::kInvalidArgument, "time \"{}\" has no zone", text);
  }
  if (pos != text.size()) {
    return fail(ErrorCode::kInvalidArgument, "time \"{}\" has trailing bytes", text);
  }
  auto local = std::chrono::sys_days(ymd) + std::chrono::hours(hour) +
               std::chrono::minutes(minute) + seconds(second) + nanoseconds(frac_ns);
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      local - std::chrono::minutes(offset_minutes));
}

}  // namespace fleetlet
