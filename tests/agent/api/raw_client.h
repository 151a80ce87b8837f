#pragma once
// Plain HTTP calls on the API's unix socket for the route tests, on http::Client. Kept in its
// own file: http/client.h and http/server.h both declare http::Request and cannot meet in
// one translation unit.

#include <functional>
#include <string>
#include <vector>

namespace fleetlet::api::test {

struct Reply {
  long status = 0;  // 0 when no HTTP answer came; `body` then holds the transport error
  std::string content_type;
  std::string body;
};

Reply call(const std::string& socket, const std::string& method, const std::string& path,
           std::string body = {});

// GETs `path` and collects NDJSON lines until `done(lines)` is true (then hangs up) or the
// stream ends.
Reply collectLines(const std::string& socket, const std::string& path,
                   const std::function<bool(const std::vector<std::string>&)>& done,
                   std::vector<std::string>& lines);

}  // namespace fleetlet::api::test
