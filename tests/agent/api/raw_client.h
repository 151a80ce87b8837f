#pragma once
// Plain HTTP/1.1 calls on the API's unix socket for the route tests, written on raw sockets.
// Not http::Client: its http::Request/Response share names with the server's, and a binary
// that links both breaks the one-definition rule (see the report in docs/local-api.md).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fleetlet::api::test {

struct Reply {
  long status = 0;  // 0 when no HTTP answer came; `body` then says why
  std::string content_type;
  std::string body;  // de-chunked
};

// One request on a fresh connection ("Connection: close"). A read that waits longer than
// `patience` ends the call (status 0 when no answer came).
Reply call(const std::string& socket, const std::string& method, const std::string& path,
           const std::string& body = {},
           std::chrono::milliseconds patience = std::chrono::seconds(10));

// GETs `path` and collects NDJSON lines until `done(lines)` is true (then hangs up) or the
// stream ends. Reads time out after 10 s.
Reply collectLines(const std::string& socket, const std::string& path,
                   const std::function<bool(const std::vector<std::string>&)>& done,
                   std::vector<std::string>& lines);

// A streamed GET left open: many of them stand for idle followers without a thread each.
class OpenStream {
 public:
  // Connects and sends `GET path`; nullptr (and `error` set) when the socket refuses.
  static std::unique_ptr<OpenStream> open(const std::string& socket, const std::string& path,
                                          std::string& error);
  ~OpenStream();
  OpenStream(const OpenStream&) = delete;
  OpenStream& operator=(const OpenStream&) = delete;

  // Reads until the response head arrived (or `patience` passed); returns its status, 0
  // without one.
  long waitForHead(std::chrono::milliseconds patience);
  // Reads until the body holds `n` complete lines, the stream ends or `patience` passed;
  // returns every line so far.
  const std::vector<std::string>& waitForLines(size_t n, std::chrono::milliseconds patience);
  long status() const;

 private:
  struct State;
  explicit OpenStream(std::unique_ptr<State> state);
  // Reads until done() or the stream ends or `patience` passed.
  void readUntil(const std::function<bool()>& done, std::chrono::milliseconds patience);
  std::unique_ptr<State> state_;
};

}  // namespace fleetlet::api::test
