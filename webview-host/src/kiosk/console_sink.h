#pragma once
// ConsoleSink: an SPA's console messages into the console (logging) service, as that app.
//
// The kiosk is given the unix socket of the app's own console listener (fleetletd made it and
// handed it to fleetlet-streams with the app's name, docs/webview.md "Identity"); each message
// becomes one POST /api/v1/logs there ({"logName":"console","severity",...,"message"}), so the
// service stores it with `app` = the app's name. Messages wait in a queue of at most
// kMaxQueued (older ones are dropped and counted when the service is slow or away: a page
// logging in a loop must not grow the kiosk); one thread sends them in order.
//
// Thread-safety: post() may be called from any thread; the destructor stops the thread
// (waiting for at most the request in flight, 2 s).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "json/json.h"

namespace fleetlet::webview {

class ConsoleSink {
 public:
  static constexpr size_t kMaxQueued = 1000;

  explicit ConsoleSink(std::string socket);
  ~ConsoleSink();
  ConsoleSink(const ConsoleSink&) = delete;
  ConsoleSink& operator=(const ConsoleSink&) = delete;

  // Queues one console message; `level` is the console method (log, info, warn, error, debug).
  void post(const std::string& level, const std::string& text);

  // Messages the service accepted (201), and dropped ones (queue full or refused).
  uint64_t sent() const;
  uint64_t dropped() const;

 private:
  void run(const std::stop_token& stop);

  const std::string socket_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::deque<Json> queue_;  // guarded by mu_
  uint64_t sent_ = 0;       // guarded by mu_
  uint64_t dropped_ = 0;    // guarded by mu_
  std::jthread thread_;     // last: stopped first
};

}  // namespace fleetlet::webview
