#pragma once
// KioskClient: fleetletd's side of fleetlet-webview's control socket (docs/webview.md): one
// JSON request line per connection, one JSON answer line. Blocks up to the timeout.
// Thread-safe (no state besides its settings).

#include <chrono>
#include <filesystem>
#include <string>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::webview {

class KioskClient {
 public:
  explicit KioskClient(std::filesystem::path socket,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : socket_(std::move(socket)), timeout_(timeout) {}

  // Sends `request` and returns the answer when it says "ok": true. An answer with "ok":
  // false becomes an Error with the kiosk's code (ERR_NOT_FOUND → kNotFound, ERR_BAD_REQUEST
  // → kInvalidArgument, ...) and message; no answer is kUnavailable.
  Result<Json> call(const Json& request) const;

 private:
  std::filesystem::path socket_;
  std::chrono::milliseconds timeout_;
};

}  // namespace fleetlet::webview
