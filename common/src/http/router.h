#pragma once
// Path routing and URL decoding for the HTTP server. Pure functions and a Router that maps
// (method, path) to a route index; no I/O. Not thread-safe for add(); find() may run
// concurrently once routes are no longer added.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error/error.h"

namespace fleetlet::http {

using ParamList = std::vector<std::pair<std::string, std::string>>;

// Decodes %XX escapes (and '+' as a space when `plus_is_space`). Fails with kInvalidArgument
// on a truncated or non-hex escape.
Result<std::string> percentDecode(std::string_view text, bool plus_is_space);

// Parses "a=1&b=x%20y&flag" into {{"a","1"},{"b","x y"},{"flag",""}}. Empty pieces are
// skipped. Fails like percentDecode.
Result<ParamList> parseQuery(std::string_view query);

// Splits a raw path ("/a/b%2Fc") into decoded segments ({"a", "b/c"}). Fails like
// percentDecode, and with kInvalidArgument when the path does not start with '/'.
Result<std::vector<std::string>> splitPath(std::string_view raw_path);

class Router {
 public:
  struct Match {
    // Index of the matched route (the order of add()), valid when `found`.
    std::size_t route = 0;
    bool found = false;
    ParamList params;
    // Methods of routes whose pattern matches the path (for 405 and CORS preflight).
    std::vector<std::string> allowed_methods;
  };

  // Adds a route; returns its index. Fails with kInvalidArgument on a malformed pattern
  // (not starting with '/', an unterminated '{', an empty name, or '{name...}' not last).
  Result<std::size_t> add(std::string method, std::string_view pattern);

  // The most specific route matching `method` and `segments` (literal segments beat
  // parameters, parameters beat a rest parameter, earlier position decides first).
  Match find(std::string_view method, const std::vector<std::string>& segments) const;

 private:
  enum class SegmentKind : std::uint8_t { kLiteral, kParam, kRest };
  struct Segment {
    SegmentKind kind;
    std::string text;  // the literal, or the parameter's name
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
  };

  // Returns whether `route` matches and fills `params`.
  static bool matches(const Route& route, const std::vector<std::string>& segments,
                      ParamList& params);

  std::vector<Route> routes_;
};

}  // namespace fleetlet::http
