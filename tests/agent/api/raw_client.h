#pragma once
// Plain HTTP/1.1 calls on the API's unix socket for the route tests, written on raw sockets.
// Not http::Client: its http::Request/Response share names with the server's, and a binary
// that links both breaks the one-definition rule (see the report in docs/local-api.md).

#include <functional>
#include <string>
#include <vector>

namespace fleetlet::api::test {

struct Reply {
  long status = 0;  // 0 when no HTTP answer came; `body` then says why
  std::string content_type;
  std::string body;  // de-chunked
};

// One request on a fresh connection ("Connection: close").
Reply call(const std::string& socket, const std::string& method, const std::string& path,
           const std::string& body = {});

// GETs `path` and collects NDJSON lines until `done(lines)` is true (then hangs up) or the
// stream ends. Reads time out after 10 s.
Reply collectLines(const std::string& socket, const std::string& path,
                   const std::function<bool(const std::vector<std::string>&)>& done,
                   std::vector<std::string>& lines);

}  // namespace fleetlet::api::test
