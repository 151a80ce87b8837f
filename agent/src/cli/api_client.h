#pragma once
// ApiClient: fleetletctl's side of fleetletd's local API (docs/local-api.md), over the unix
// socket. Calls block. Not thread-safe: one ApiClient per thread.
//
// Errors: when fleetletd cannot be reached, kUnavailable "fleetletd is not running at <socket>
// (connect: <reason>)"; when it answers with an error, the code and message fleetletd sent
// ("apps.camera.image: missing", "app \"x\" not found"); a malformed answer is kInternal.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/node_service.h"
#include "error/error.h"
#include "json/json.h"
#include "logs/reader.h"

namespace fleetlet::http {
class Client;
}

namespace fleetlet::cli {

class ApiClient {
 public:
  explicit ApiClient(std::string socket_path);
  ~ApiClient();
  ApiClient(ApiClient&&) noexcept;
  ApiClient& operator=(ApiClient&&) noexcept;

  const std::string& socketPath() const { return socket_; }

  // GET `path` and return the decoded JSON body (for --output json).
  Result<Json> getJson(std::string_view path);

  // `source` names the manifest in fleetletd's error messages (the file name).
  Result<core::ApplyResult> apply(std::string_view manifest_text, std::string_view source);
  Result<std::vector<core::AppStatus>> apps();
  Result<core::AppDetail> describe(std::string_view app);
  Status restart(std::string_view app);
  Result<core::NodeStatus> status();
  // The PNG the kiosk shows for `app` (the app on screen when empty); show() switches.
  Result<std::string> screenshot(std::string_view app);
  Status show(std::string_view app);

  // Calls on_event for every event with seq > after, oldest first. Without `follow` it returns
  // after the events stored now; with it, it waits for new ones until on_event returns false
  // (then returns success) or the connection ends.
  Status events(int64_t after, bool follow,
                const std::function<bool(const core::NodeEvent&)>& on_event);
  // Calls on_line for the app's last `tail` log lines (all when nullopt) and, with `follow`,
  // for new lines as they are written, like events(). `range` (RFC 3339 "since"/"until",
  // either may be empty) limits them to a time range.
  struct Range {
    std::string since, until;
  };
  Status logs(std::string_view app, std::optional<std::size_t> tail, bool follow,
              const std::function<bool(const logs::LogEntry&)>& on_line, const Range& range = {});
  // The same for fleetletd's own log (GET /v1/node/logs; no follow).
  Status nodeLogs(std::optional<std::size_t> tail, const Range& range,
                  const std::function<bool(const logs::LogEntry&)>& on_line);

 private:
  // Sends a request; an HTTP error status becomes the Error fleetletd described.
  Result<Json> call(std::string_view method, std::string_view path, std::string body = {});
  // Streams an NDJSON GET, calling on_line per complete line.
  Status streamLines(std::string_view path, bool follow,
                     const std::function<Result<bool>(const Json&)>& on_line);

  std::string socket_;
  std::unique_ptr<http::Client> client_;
};

// "camera" → "camera"; escapes what a path segment cannot hold ("a b" → "a%20b").
std::string escapePathSegment(std::string_view segment);

}  // namespace fleetlet::cli
