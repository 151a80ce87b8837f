#pragma once
// LogShipper: ships every app's stdout/stderr, as fleetlet-logger wrote it under
// <logs_root>/<app>/, to the console service (a LogSink), so that it can be read there with
// GET /api/v1/logs?app=<app> (docs/logs.md "Shipping").
//
// Guarantees: every line still on disk reaches the service once. Per app a LogTailer reads the
// files and its cursor is saved (CursorStore) only after the service acknowledged the batch, so
// after a crash of fleetletd the shipper resumes at or before the last acknowledged line; the
// service keeps one entry per message key, so what is sent again is not stored again. While
// the service is down (send fails, or `service_up` says so) nothing advances: the shipper backs
// off (doubling from `poll_interval` to `max_backoff`) and catches up from the files after, in
// order. Lines in files the logger dropped before they were shipped (an outage longer than
// the log directory's rotation holds) are lost; the tailer reports it and it is logged.
//
// A batch the service refuses as malformed (400/413) is sent again one message at a time and
// a message still refused is dropped, counted and logged, so one bad line cannot stop an app's
// shipping.
//
// Memory: one batch (TailerLimits) in flight at a time, plus one tailer per app.
//
// Thread-safety: runOnce() from one thread at a time (start() runs it on its own thread);
// stats() from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "logship/console_sink.h"
#include "logship/cursor_store.h"
#include "logship/tailer.h"

namespace fleetlet::logship {

struct ShipperOptions {
  std::filesystem::path logs_root;
  TailerLimits limits;
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds max_backoff{5000};
  // Optional: false while the service is known to be down (nothing is sent then).
  std::function<bool()> service_up;
};

struct ShipperStats {
  std::uint64_t sent = 0;        // messages acknowledged
  std::uint64_t stored = 0;      // of those, stored by the service
  std::uint64_t duplicates = 0;  // of those, already stored (sent again after a crash)
  std::uint64_t refused = 0;     // dropped: the service refused them as malformed
  std::uint64_t failures = 0;    // sends that failed (service down)
  std::uint64_t lost_files = 0;  // apps whose cursor's file was gone when resuming
};

class LogShipper {
 public:
  LogShipper(ShipperOptions options, CursorStore& cursors, LogSink& sink);
  ~LogShipper();  // stops the thread
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  // One pass: finds apps (directories of logs_root; a directory gone drops its tailer and
  // cursor), then ships what each has until it has nothing new or a send fails. Returns how
  // many messages were acknowledged; fails when a send failed (the batch is kept and sent
  // first next time).
  Result<std::size_t> runOnce();
  // Runs runOnce() on a thread until destruction: at once again after progress, after
  // poll_interval when idle, backing off after failures.
  void start();

  ShipperStats stats() const;

 private:
  struct App {
    LogTailer tailer;
    Position saved;
  };
  struct Held {
    std::string app;
    std::vector<Message> messages;
    Position cursor;  // the app's cursor once these are acknowledged
  };
  void scan();
  // Sends `h` (held_); on success saves its cursor and clears held_.
  Status deliver(Held& h);

  ShipperOptions options_;
  CursorStore& cursors_;
  LogSink& sink_;
  std::map<std::string, App> apps_;
  std::map<std::string, Position> loaded_;  // saved cursors of apps not opened yet
  bool loaded_once_ = false;
  std::optional<Held> held_;
  mutable std::mutex stats_mu_;
  ShipperStats stats_;  // guarded by stats_mu_
  std::jthread thread_;
};

}  // namespace fleetlet::logship
