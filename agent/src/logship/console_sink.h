#pragma once
// Where the log shipper sends messages: LogSink, and ConsoleSink, the console service of
// fleetlet-streams reached through the ingest listener fleetletd hands it (ingest_listener.h).
//
// The request (docs/logs.md "Shipping"): POST /api/v1/logs/ingest with
//   {"entries":[{"app","key","logName":"stdout"|"stderr","severity":"info","message",
//                "logTimestamp","labels":{"stream":..., "part":"n", "lastPart":"true|false"}}]}
// answered 200 {"stored":n,"duplicates":m}. Text that is not UTF-8 is sent with U+FFFD in place
// of each invalid byte sequence (JSON strings are UTF-8).
//
// Thread-safety: a ConsoleSink is used from one thread at a time (it owns one HTTP client).

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "error/error.h"
#include "http/client.h"
#include "logship/tailer.h"

namespace fleetlet::logship {

struct SendResult {
  std::size_t stored = 0;
  std::size_t duplicates = 0;
};

class LogSink {
 public:
  virtual ~LogSink() = default;
  // Stores `messages` of `app`, each once by its key. Fails with kInvalidArgument when the
  // service refused them (they would be refused again), anything else when they may or may not
  // have been stored (try again later).
  virtual Result<SendResult> send(const std::string& app, const std::vector<Message>& messages) = 0;
};

// The JSON body for `messages` of `app`.
std::string ingestBody(const std::string& app, const std::vector<Message>& messages);

class ConsoleSink : public LogSink {
 public:
  // `socket`: the unix socket of the ingest listener.
  explicit ConsoleSink(const std::filesystem::path& socket,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Result<SendResult> send(const std::string& app, const std::vector<Message>& messages) override;

 private:
  http::Client client_;
};

}  // namespace fleetlet::logship
