#include "logs/cri.h"

#include <fmt/format.h>

#include <charconv>

namespace fleetlet::logs {
namespace {

using std::chrono::days;
using std::chrono::nanoseconds;

}  // namespace

std::string_view toString(Stream stream) { return stream == Stream::kStdout ? "stdout" : "stderr"; }

std::string formatRfc3339Nano(TimePoint time) {
  auto ns = std::chrono::time_point_cast<nanoseconds>(time);
  auto day = std::chrono::floor<days>(ns);
  std::chrono::year_month_day ymd{day};
  std::chrono::hh_mm_ss hms{ns - day};
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", int(ymd.year()),
                                unsigned(ymd.month()), unsigned(ymd.day()), hms.hours().count(),
                                hms.minutes().count(), hms.seconds().count());
  if (auto frac = hms.subseconds().count(); frac != 0) {
    std::string digits_str = fmt::format(".{:09}", frac);
    while (digits_str.back() == '0') digits_str.pop_back();
    out += digits_str;
  }
  out += 'Z';
  return out;
}

void appendCriRecord(std::string& out, TimePoint time, Stream stream, bool partial,
                     std::string_view text) {
  out += formatRfc3339Nano(time);
  out += ' ';
  out += toString(stream);
  out += partial ? " P " : " F ";
  out += text;
  out += '\n';
}

Result<CriRecord> parseCriLine(std::string_view line) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "record has no stream field");
  }
  auto time = parseRfc3339(line.substr(0, sp1));
  if (!time) return std::unexpected(time.error());
  CriRecord record{.time = *time};
  std::string_view rest = line.substr(sp1 + 1);
  if (rest.starts_with("stdout ")) {
    record.stream = Stream::kStdout;
  } else if (rest.starts_with("stderr ")) {
    record.stream = Stream::kStderr;
  } else {
    return fail(ErrorCode::kInvalidArgument, "record has no stdout/stderr stream");
  }
  rest.remove_prefix(7);
  // The tag is followed by one space and the text; "F" alone is an empty line.
  if (rest.empty() || (rest[0] != 'F' && rest[0] != 'P') || (rest.size() > 1 && rest[1] != ' ')) {
    return fail(ErrorCode::kInvalidArgument, "record has no F/P tag");
  }
  record.partial = rest[0] == 'P';
  record.text = rest.size() > 1 ? rest.substr(2) : std::string_view();
  return record;
}

}  // namespace fleetlet::logs
