#pragma once
// Small HTTP helpers for fleetlet-streams tests: JSON requests with the real client (libcurl),
// NDJSON streams read line by line, and a raw socket for misbehaving clients.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "json/json.h"
#include "os/unique_fd.h"

namespace fleetlet::streams::testing {

using namespace std::chrono_literals;
// Bound for anything a test waits for; never an assertion about speed.
inline constexpr auto kPatience = 20s;

struct Reply {
  long status = 0;
  std::string body;
  Json json() const;
  std::vector<Json> lines() const;  // NDJSON
  // Response headers by lower-case name (kept free of http/client.h, whose Request and
  // Response names clash with http/server.h's).
  std::map<std::string, std::string> headers;
  std::optional<std::string> header(const std::string& lower_name) const;
};

class TestClient {
 public:
  explicit TestClient(std::uint16_t port) : base_("http://127.0.0.1:" + std::to_string(port)) {}
  Reply get(const std::string& path);
  Reply post(const std::string& path, const std::string& body);
  Reply request(const std::string& method, const std::string& path, const std::string& body,
                std::vector<std::pair<std::string, std::string>> headers = {});
  // POSTs and reads NDJSON lines until `enough(lines)` returns true, the stream ends or the
  // patience runs out. Returns the lines read.
  std::vector<Json> streamLines(const std::string& method, const std::string& path,
                                const std::string& body,
                                const std::function<bool(const std::vector<Json>&)>& enough);
  // POSTs and reads every NDJSON line until the stream stayed silent for `quiet` (whole
  // seconds), ended, or the patience ran out. Returns the lines read.
  std::vector<Json> streamLinesUntilQuiet(const std::string& method, const std::string& path,
                                          const std::string& body, std::chrono::seconds quiet);
  // {"data":[{"semantics":S,"name":N,"payload":P}, ... count times]}; returns the reply.
  Reply publish(const std::string& semantics, const std::string& name, int count,
                const Json& payload = Json::object());

 private:
  std::string base_;
};

// How often `needle` occurs in `text`.
std::size_t countOccurrences(std::string_view text, std::string_view needle);

// A request with Content-Length and "Connection: close", for RawSocket::send.
std::string rawPost(const std::string& path, const std::string& body);
// A WebSocket upgrade request for `path` (for RawSocket::send; the answer is a 101).
std::string rawWebSocketUpgrade(const std::string& path);
// One client text frame carrying `text` (masked with a zero key, as the protocol allows).
std::string rawWebSocketFrame(const std::string& text);

// A raw TCP client for slowloris, abrupt disconnects and never-reading subscribers.
class RawSocket {
 public:
  // Connects to 127.0.0.1:port; a receive buffer of `rcvbuf` bytes when non-zero.
  static RawSocket connect(std::uint16_t port, int rcvbuf = 0);
  bool send(std::string_view data);
  // Reads until `needle` is seen, EOF, or `timeout`. Returns everything read so far.
  std::string readUntil(std::string_view needle, std::chrono::milliseconds timeout = kPatience);
  // True once the peer closed (reads EOF or reset within `timeout`).
  bool waitClosed(std::chrono::milliseconds timeout = kPatience);
  void close() { fd_.reset(); }

 private:
  explicit RawSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buffer_;
};

}  // namespace fleetlet::streams::testing
