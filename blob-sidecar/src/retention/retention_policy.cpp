#include "retention/retention_policy.h"

#include <cmath>
#include <ctime>

namespace fleetlet::retention {
namespace {

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int toInt(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Seconds beyond which a timestamp is surely a mistake (year 5138); keeps arithmetic safe.
constexpr double kMaxSeconds = 1e11;

}  // namespace

Result<int64_t> parseRfc3339Micros(std::string_view text) {
  auto bad = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "\"{}\" is not an RFC 3339 time such as 2026-11-21T10:00:00Z", text);
  };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':') {
    return bad();
  }
  std::string_view year = text.substr(0, 4), month = text.substr(5, 2), day = text.substr(8, 2),
                   hour = text.substr(11, 2), minute = text.substr(14, 2),
                   second = text.substr(17, 2);
  if (!digits(year) || !digits(month) || !digits(day) || !digits(hour) || !digits(minute) ||
      !digits(second)) {
    return bad();
  }
  std::tm tm{};
  tm.tm_year = toInt(year) - 1900;
  tm.tm_mon = toInt(month) - 1;
  tm.tm_mday = toInt(day);
  tm.tm_hour = toInt(hour);
  tm.tm_min = toInt(minute);
  tm.tm_sec = toInt(second);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  std::string_view rest = text.substr(19);
  int64_t micros = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    std::size_t n = 0;
    int64_t scale = 100000;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') {
      micros += (rest[n] - '0') * scale;
      scale /= 10;
      ++n;
    }
    if (n == 0) return bad();
    rest.remove_prefix(n);
  }
  int64_t offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
    offset_seconds = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
             digits(rest.substr(1, 2)) && digits(rest.substr(4, 2))) {
    offset_seconds = toInt(rest.substr(1, 2)) * 3600 + toInt(rest.substr(4, 2)) * 60;
    if (rest[0] == '-') offset_seconds = -offset_seconds;
  } else {
    return bad();
  }
  int64_t seconds = static_cast<int64_t>(timegm(&tm)) - offset_seconds;
  return seconds * 1000000 + micros;
}

namespace {

Result<RetentionPolicy> parsePolicy(const Json& value, std::string_view path,
                                    bool fractions_allowed) {
  if (!value.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                jsonTypeName(value));
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string policy, requireString(value, "policy", path));
  RetentionPolicy out;
  if (policy == "keepForever") {
    out.kind = PolicyKind::kKeepForever;
  } else if (policy == "keepUntilTime") {
    out.kind = PolicyKind::kKeepUntilTime;
    auto until = value.find("until");
    if (until == value.end()) {
      return fail(ErrorCode::kInvalidArgument, "{}.until: missing (keepUntilTime needs a time)",
                  path);
    }
    if (until->is_number_float() && !fractions_allowed) {
      return fail(ErrorCode::kInvalidArgument,
                  "{}.until: {} is not a whole number of Unix seconds (send an integer, or an "
                  "RFC 3339 string for sub-second times)",
                  path, until->dump());
    }
    if (until->is_number()) {
      double seconds = until->get<double>();
      if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxSeconds) {
        return fail(ErrorCode::kInvalidArgument, "{}.until: {} is not a plausible Unix time", path,
                    until->dump());
      }
      out.until_micros = static_cast<int64_t>(std::llround(seconds * 1e6));
    } else if (until->is_string()) {
      auto micros = parseRfc3339Micros(until->get<std::string>());
      if (!micros) return std::unexpected(micros.error().wrap("{}.until", path));
      out.until_micros = *micros;
    } else {
      return fail(ErrorCode::kInvalidArgument,
                  "{}.until: expected Unix seconds or an RFC 3339 string, got {}", path,
                  jsonTypeName(*until));
    }
  } else if (policy == "keepUntilNext") {
    out.kind = PolicyKind::kKeepUntilNext;
    FLEETLET_ASSIGN_OR_RETURN(out.semantics, optionalString(value, "semantics", path));
    FLEETLET_ASSIGN_OR_RETURN(out.source, optionalString(value, "source", path));
    FLEETLET_ASSIGN_OR_RETURN(out.source_app, optionalString(value, "sourceApp", path));
  } else {
    return fail(ErrorCode::kInvalidArgument,
                "{}.policy: unknown policy \"{}\" (expected keepForever, keepUntilTime or "
                "keepUntilNext)",
                path, policy);
  }
  return out;
}

}  // namespace

Result<RetentionPolicy> parseRetentionPolicy(const Json& value, std::string_view path) {
  return parsePolicy(value, path, false);
}

Result<RetentionPolicy> parseStoredRetentionPolicy(const Json& value, std::string_view path) {
  return parsePolicy(value, path, true);
}

Json toJson(const RetentionPolicy& policy) {
  Json out = Json::object();
  switch (policy.kind) {
    case PolicyKind::kKeepForever:
      out["policy"] = "keepForever";
      break;
    case PolicyKind::kKeepUntilTime:
      out["policy"] = "keepUntilTime";
      if (policy.until_micros % 1000000 == 0) {
        out["until"] = policy.until_micros / 1000000;
      } else {
        out["until"] = static_cast<double>(policy.until_micros) / 1e6;
      }
      break;
    case PolicyKind::kKeepUntilNext:
      out["policy"] = "keepUntilNext";
      if (policy.semantics) out["semantics"] = *policy.semantics;
      if (policy.source) out["source"] = *policy.source;
      if (policy.source_app) out["sourceApp"] = *policy.source_app;
      break;
  }
  return out;
}

SupersedeKey supersedeKey(const RetentionPolicy& policy, std::string_view semantics,
                          std::string_view source_app) {
  SupersedeKey key;
  key.semantics = policy.semantics.value_or(std::string(semantics));
  key.source_app = policy.source_app.value_or(std::string(source_app));
  key.source = policy.source;
  return key;
}

}  // namespace fleetlet::retention
