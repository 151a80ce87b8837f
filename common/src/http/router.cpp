#include "http/router.h"

#include <algorithm>

namespace fleetlet::http {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> percentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return fail(ErrorCode::kInvalidArgument, "truncated percent escape in '{}'", text);
      }
      int hi = hexValue(text[i + 1]);
      int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return fail(ErrorCode::kInvalidArgument, "invalid percent escape in '{}'", text);
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<ParamList> parseQuery(std::string_view query) {
  ParamList params;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    std::size_t eq = piece.find('=');
    FLEETLET_ASSIGN_OR_RETURN(std::string key, percentDecode(piece.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      FLEETLET_ASSIGN_OR_RETURN(value, percentDecode(piece.substr(eq + 1), true));
    }
    params.emplace_back(std::move(key), std::move(value));
  }
  return params;
}

Result<std::vector<std::string>> splitPath(std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/') {
    return fail(ErrorCode::kInvalidArgument, "path '{}' does not start with '/'", raw_path);
  }
  std::vector<std::string> segments;
  std::string_view rest = raw_path.substr(1);
  while (true) {
    std::size_t slash = rest.find('/');
    FLEETLET_ASSIGN_OR_RETURN(std::string segment, percentDecode(rest.substr(0, slash), false));
    segments.push_back(std::move(segment));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (segments.size() == 1 && segments.front().empty()) segments.clear();  // "/"
  return segments;
}

Result<std::size_t> Router::add(std::string method, std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    return fail(ErrorCode::kInvalidArgument, "route pattern '{}' does not start with '/'", pattern);
  }
  Route route{std::move(method), {}};
  std::string_view rest = pattern.substr(1);
  while (pattern != "/") {
    std::size_t slash = rest.find('/');
    std::string_view piece = rest.substr(0, slash);
    if (!route.segments.empty() && route.segments.back().kind == SegmentKind::kRest) {
      return fail(ErrorCode::kInvalidArgument, "route pattern '{}': '{{...}}' must be last",
                  pattern);
    }
    if (piece.starts_with('{')) {
      if (!piece.ends_with('}')) {
        return fail(ErrorCode::kInvalidArgument, "route pattern '{}': unterminated '{{'", pattern);
      }
      std::string_view name = piece.substr(1, piece.size() - 2);
      SegmentKind kind = SegmentKind::kParam;
      if (name.ends_with("...")) {
        kind = SegmentKind::kRest;
        name.remove_suffix(3);
      }
      if (name.empty()) {
        return fail(ErrorCode::kInvalidArgument, "route pattern '{}': empty parameter name",
                    pattern);
      }
      route.segments.push_back({kind, std::string(name)});
    } else {
      route.segments.push_back({SegmentKind::kLiteral, std::string(piece)});
    }
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  routes_.push_back(std::move(route));
  return routes_.size() - 1;
}

bool Router::matches(const Route& route, const std::vector<std::string>& segments,
                     ParamList& params) {
  params.clear();
  std::size_t i = 0;
  for (const Segment& segment : route.segments) {
    if (segment.kind == SegmentKind::kRest) {
      std::string joined;
      for (std::size_t j = i; j < segments.size(); ++j) {
        if (j > i) joined.push_back('/');
        joined += segments[j];
      }
      params.emplace_back(segment.text, std::move(joined));
      return true;
    }
    if (i >= segments.size()) return false;
    if (segment.kind == SegmentKind::kLiteral) {
      if (segment.text != segments[i]) return false;
    } else {
      if (segments[i].empty()) return false;
      params.emplace_back(segment.text, segments[i]);
    }
    ++i;
  }
  return i == segments.size();
}

Router::Match Router::find(std::string_view method,
                           const std::vector<std::string>& segments) const {
  Match best;
  const Route* best_route = nullptr;
  ParamList params;
  // Lower ranks are more specific: compares segment kinds position by position.
  auto more_specific = [](const Route& a, const Route& b) {
    std::size_t n = std::min(a.segments.size(), b.segments.size());
    for (std::size_t k = 0; k < n; ++k) {
      if (a.segments[k].kind != b.segments[k].kind) {
        return a.segments[k].kind < b.segments[k].kind;
      }
    }
    return a.segments.size() > b.segments.size();
  };
  for (std::size_t index = 0; index < routes_.size(); ++index) {
    const Route& route = routes_[index];
    if (!matches(route, segments, params)) continue;
    if (std::find(best.allowed_methods.begin(), best.allowed_methods.end(), route.method) ==
        best.allowed_methods.end()) {
      best.allowed_methods.push_back(route.method);
    }
    if (route.method != method) continue;
    if (best_route == nullptr || more_specific(route, *best_route)) {
      best_route = &route;
      best.route = index;
      best.found = true;
      best.params = params;
    }
  }
  return best;
}

}  // namespace fleetlet::http
