#pragma once
// fleetlet::http::Client: the one HTTP client of fleetlet, on libcurl.
//
// A Client owns one curl easy handle and reuses its connections across requests. It is not
// thread-safe: use one Client per thread (parallel downloads make one each). Calls block.
// HTTP error statuses are not Errors: they come back in ClientResponse::status so callers can read
// the server's message. An Error means no HTTP answer was had (unreachable, reset, timeout,
// TLS failure, aborted by the sink).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error/error.h"

namespace fleetlet::http {

// Header list; names compare case-insensitively in find().
class Headers {
 public:
  void add(std::string name, std::string value);
  // The first value of `name`, compared case-insensitively.
  std::optional<std::string> find(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  // Sends "Range: bytes=<range_start>-" when set (resuming a download).
  std::optional<uint64_t> range_start;
  bool follow_redirects = true;
};

struct ClientResponse {
  long status = 0;
  Headers headers;
  // The body when buffered; with stream(), only a non-2xx body (for error messages).
  std::string body;
  // The URL after redirects.
  std::string effective_url;
};

// TLS settings beyond curl's defaults (system CAs, no client certificate). Files are PEM and
// read by curl when it opens a connection; a reused connection keeps what it was opened with.
struct ClientTls {
  std::string client_cert;  // CURLOPT_SSLCERT
  std::string client_key;   // CURLOPT_SSLKEY
  std::string ca_file;      // CURLOPT_CAINFO: only these CAs, not the system's
  // CURLOPT_PINNEDPUBLICKEY: "sha256//<base64>" pins; the server's key must match one.
  std::vector<std::string> pinned_public_keys;
};

struct ClientOptions {
  std::string user_agent = "fleetlet/0.1";
  // Talk HTTP over this unix socket instead of TCP (the URL's host is then only a name).
  std::optional<std::string> unix_socket;
  std::chrono::milliseconds connect_timeout{10000};
  // A transfer slower than `min_bytes_per_second` on average over `stall_timeout` is aborted
  // as kUnavailable ("transfer too slow"), so a peer that drips a byte now and then cannot
  // hold a request for ever.
  std::chrono::milliseconds stall_timeout{30000};
  int64_t min_bytes_per_second = 1;
  // Request bodies are sent no faster than this (CURLOPT_MAX_SEND_SPEED_LARGE); 0: no cap.
  int64_t max_send_bytes_per_second = 0;
  // 0 means no overall limit (large downloads); otherwise the whole request's limit.
  std::chrono::milliseconds total_timeout{0};
  // When set, no request runs past this point (kUnavailable "deadline exceeded").
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Once stop is requested, a transfer in progress ends at once (kUnavailable "cancelled").
  std::stop_token stop;
  ClientTls tls;
};

// Receives body bytes as they arrive; returning false aborts the transfer (the call then fails
// with kUnavailable "aborted").
using BodySink = std::function<bool(std::string_view chunk)>;
// Receives the status and headers of a 2xx response once, before its first body chunk (not
// at all for an empty body or a non-2xx answer), so a proxy can answer before the body ends.
using ResponseStart = std::function<void(const ClientResponse& head)>;

class Client {
 public:
  static constexpr size_t kMaxErrorBody = size_t{64} * 1024;

  explicit Client(ClientOptions options = {});
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Performs the request and buffers the whole body. Fails with kUnavailable when no answer
  // came; the message names the host and curl's reason.
  Result<ClientResponse> send(const ClientRequest& request);

  // Performs the request; a 2xx body is passed to `sink` chunk by chunk and not kept. A
  // non-2xx body is buffered in ClientResponse::body instead, its first kMaxErrorBody bytes
  // only (the rest is read and dropped), so a hostile error page cannot fill memory.
  Result<ClientResponse> stream(const ClientRequest& request, const BodySink& sink);
  // The same, and `on_start` sees the response's head before the sink sees its body.
  Result<ClientResponse> stream(const ClientRequest& request, const BodySink& sink,
                                const ResponseStart& on_start);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetlet::http
