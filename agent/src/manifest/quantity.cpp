// Quantities ("64Mi"), cpu amounts ("500m") and durations ("1m30s") as manifests write them.
// All arithmetic is exact integer arithmetic with overflow checks: no input yields a wrapped or
// rounded value.

#include "manifest/quantity.h"

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>

#include "error/error.h"
#include "json/json.h"
#include "manifest/parse.h"

namespace fleetlet::manifest {
namespace {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
// Wide enough for every product below (at most 10^18 * 2^60).
__extension__ typedef __int128 Int128;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Quoted for messages, with control characters escaped.
std::string quote(std::string_view text) {
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A decimal number "<digits>[.<digits>]" at the front of `text`.
struct Decimal {
  int64_t whole = 0;
  int64_t fraction = 0;        // the digits after the point, as an integer
  int64_t fraction_scale = 1;  // 10^(number of fraction digits)
  bool has_point = false;
};

// Consumes a decimal from the front of `text`. Fails on no digits, a whole part past int64 or
// more than 9 fraction digits (nothing a manifest needs; keeps the arithmetic in range).
bool consumeDecimal(std::string_view& text, Decimal& out) {
  size_t i = 0;
  while (i < text.size() && isDigit(text[i])) {
    const int digit = text[i] - '0';
    if (out.whole > (kMaxInt64 - digit) / 10) return false;
    out.whole = out.whole * 10 + digit;
    ++i;
  }
  if (i == 0) return false;
  if (i < text.size() && text[i] == '.') {
    out.has_point = true;
    ++i;
    size_t digits = 0;
    while (i < text.size() && isDigit(text[i])) {
      if (digits == 9) return false;
      out.fraction = out.fraction * 10 + (text[i] - '0');
      out.fraction_scale *= 10;
      ++digits;
      ++i;
    }
    if (digits == 0) return false;
  }
  text.remove_prefix(i);
  return true;
}

struct Suffix {
  std::string_view text;
  int64_t multiplier;
};

constexpr std::array<Suffix, 13> kQuantitySuffixes = {{
    {"", 1},
    {"k", 1000},
    {"M", int64_t{1000} * 1000},
    {"G", int64_t{1000} * 1000 * 1000},
    {"T", 1000LL * 1000 * 1000 * 1000},
    {"P", 1000LL * 1000 * 1000 * 1000 * 1000},
    {"E", 1000LL * 1000 * 1000 * 1000 * 1000 * 1000},
    {"Ki", 1LL << 10},
    {"Mi", 1LL << 20},
    {"Gi", 1LL << 30},
    {"Ti", 1LL << 40},
    {"Pi", 1LL << 50},
    {"Ei", 1LL << 60},
}};

}  // namespace

Result<int64_t> parseQuantity(std::string_view text) {
  auto not_quantity = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "{} is not a quantity (bytes, optionally with a suffix k, M, G, T, Ki, Mi, Gi, "
                "Ti, ...)",
                quote(text));
  };
  std::string_view rest = text;
  Decimal number;
  if (!consumeDecimal(rest, number)) return not_quantity();
  const Suffix* suffix = nullptr;
  for (const Suffix& s : kQuantitySuffixes) {
    if (rest == s.text) suffix = &s;
  }
  if (suffix == nullptr) return not_quantity();

  // whole * m + fraction * m / scale, exactly.
  const Int128 m = suffix->multiplier;
  const Int128 whole = static_cast<Int128>(number.whole) * m;
  const Int128 fraction_bytes = static_cast<Int128>(number.fraction) * m;
  if (fraction_bytes % number.fraction_scale != 0) {
    return fail(ErrorCode::kInvalidArgument, "{} is not a whole number of bytes", quote(text));
  }
  const Int128 total = whole + fraction_bytes / number.fraction_scale;
  if (total > kMaxInt64) {
    return fail(ErrorCode::kInvalidArgument, "{} is too large", quote(text));
  }
  return static_cast<int64_t>(total);
}

Result<double> parseCpu(std::string_view text) {
  auto not_cpu = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "{} is not a cpu amount (cores like 0.5 or 2, or millicores like 500m)",
                quote(text));
  };
  std::string_view rest = text;
  Decimal number;
  if (!consumeDecimal(rest, number)) return not_cpu();
  int64_t millis = 0;
  if (rest == "m") {
    if (number.has_point) {
      return fail(ErrorCode::kInvalidArgument, "{}: millicores must be a whole number",
                  quote(text));
    }
    millis = number.whole;
  } else if (rest.empty()) {
    // Cores: at most three significant fraction digits (1m is the finest unit).
    int64_t scaled = number.fraction;
    int64_t scale = number.fraction_scale;
    while (scale > 1000) {
      if (scaled % 10 != 0) {
        return fail(ErrorCode::kInvalidArgument, "{} is finer than 1m (0.001 cores)", quote(text));
      }
      scaled /= 10;
      scale /= 10;
    }
    if (number.whole > kMaxInt64 / 1000 - 1000) {
      return fail(ErrorCode::kInvalidArgument, "{} is too large", quote(text));
    }
    millis = number.whole * 1000 + scaled * (1000 / scale);
  } else {
    return not_cpu();
  }
  return static_cast<double>(millis) / 1000.0;
}

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  auto not_duration = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "{} is not a duration (like 10s, 250ms, 1m30s, 2h; units h, m, s, ms)",
                quote(text));
  };
  if (text == "0") return std::chrono::milliseconds(0);
  if (text.empty()) return not_duration();
  std::string_view rest = text;
  Int128 total = 0;
  while (!rest.empty()) {
    size_t digits = 0;
    int64_t value = 0;
    while (digits < rest.size() && isDigit(rest[digits])) {
      if (digits == 15) return not_duration();
      value = value * 10 + (rest[digits] - '0');
      ++digits;
    }
    if (digits == 0) return not_duration();
    rest.remove_prefix(digits);
    int64_t unit_ms = 0;
    if (rest.starts_with("ms")) {
      unit_ms = 1;
      rest.remove_prefix(2);
    } else if (rest.starts_with("h")) {
      unit_ms = int64_t{3600} * 1000;
      rest.remove_prefix(1);
    } else if (rest.starts_with("m")) {
      unit_ms = int64_t{60} * 1000;
      rest.remove_prefix(1);
    } else if (rest.starts_with("s")) {
      unit_ms = 1000;
      rest.remove_prefix(1);
    } else {
      return not_duration();
    }
    total += static_cast<Int128>(value) * unit_ms;
    if (total > kMaxInt64) {
      return fail(ErrorCode::kInvalidArgument, "{} is too long", quote(text));
    }
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

std::string formatDuration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms <= 0) return "0s";
  std::string out;
  auto part = [&](int64_t unit, std::string_view name) {
    if (ms >= unit) {
      out += std::to_string(ms / unit);
      out += name;
      ms %= unit;
    }
  };
  part(int64_t{3600} * 1000, "h");
  part(int64_t{60} * 1000, "m");
  part(1000, "s");
  part(1, "ms");
  return out;
}

}  // namespace fleetlet::manifest
