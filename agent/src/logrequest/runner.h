#pragma once
// Running log requests (docs/observability.md, "Logs on request"): admit() takes a body the
// cloud served at cloud.logRequestUrl, verifies it (request.h) and records it (store.h);
// runOnce() runs the oldest request still to run:
//
//   - it waits until its `until` has passed (the range's lines are then all written), and
//     fails once it has expired;
//   - it is marked `uploading` (durable), then the lines of the range are read from the app's
//     log directory (or the node's own log), one per entry ("<time> <stream> <text>"), gzipped
//     within min(cloud.logUploadMaxBytes, the request's maxBytes) — truncation keeps the newest
//     lines and says so in the file and the result — and PUT to its uploadUrl;
//   - a 2xx ends it `done`; a 4xx other than 408/429 `failed` with the answer; no answer or
//     another status is retried after 5 s·2ⁿ (up to 5 min) until it expires. fleetletd killed
//     mid-upload finds it `uploading` and uploads it again: the same bytes to the same URL.
//
// The end is recorded with its result for the status report (store.h), then as a node event
// of kind "logRequest"; so are acceptance and refusals.
//
// Threading: admit() from the polling thread, runOnce()/run() on one thread (RunnerThread).

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "cloud/loop_thread.h"
#include "config/daemon_config.h"
#include "error/error.h"
#include "logrequest/store.h"
#include "trust/policy.h"

namespace fleetlet::logrequest {

using Duration = std::chrono::milliseconds;

// PUTs an upload; the HTTP status, or kUnavailable when no answer came.
class Uploader {
 public:
  virtual ~Uploader() = default;
  virtual Result<long> put(const std::string& url, const std::string& gzip) = 0;
};

// libcurl with the cloud's TLS settings; bodies sent no faster than `bytes_per_second`
// (0: no cap).
class HttpUploader : public Uploader {
 public:
  HttpUploader(const config::CloudConfig& config, std::stop_token stop);
  Result<long> put(const std::string& url, const std::string& gzip) override;

 private:
  const config::CloudConfig& config_;
  std::stop_token stop_;
};

struct RunnerOptions {
  std::string node_id;
  const trust::Policy* policy = nullptr;
  // An app's log: its directory (it may not exist) and, when not empty, what the text of an
  // entry about the app contains (a webview app's lines in the kiosk's log:
  // core::NodeService::logSource).
  struct AppLog {
    std::filesystem::path dir;
    std::string only;
  };
  std::function<AppLog(const std::string& app)> app_log;
  std::filesystem::path node_log_dir;
  int64_t max_bytes = int64_t{16} * 1024 * 1024;  // cloud.logUploadMaxBytes
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  // Records a node event of kind "logRequest" (app "" for the node's own logs).
  std::function<void(const std::string& app, const std::string& message)> on_event;
  Duration idle{std::chrono::seconds(60)};
  Duration first_retry{std::chrono::seconds(5)};
  Duration max_retry{std::chrono::minutes(5)};
};

class LogRequestRunner {
 public:
  LogRequestRunner(RunnerOptions options, LogRequestStore& store, Uploader& uploader);

  // Admits and records a body (see request.h). true: a new request; false: its id is known
  // (it runs once). A refusal is kFailedPrecondition with the reason, also recorded as a node
  // event; kUnavailable when it could not be recorded (try again).
  Result<bool> admit(std::string_view body);
  // Runs the oldest request still to run, if one is due; the delay before the next call.
  Duration runOnce();

 private:
  void end(const LogRequest& r, bool done, const std::string& reason, Json result);

  RunnerOptions options_;
  LogRequestStore& store_;
  Uploader& uploader_;
  int failures_ = 0;        // in a row, of the current request's uploads
  std::string attempting_;  // the request this process last tried to upload
};

// A LogRequestRunner on a thread of its own with an HttpUploader; admit() wakes it. Stopped
// (an upload in flight cancelled) on destruction.
class RunnerThread {
 public:
  RunnerThread(const config::CloudConfig& config, RunnerOptions options, LogRequestStore& store);
  ~RunnerThread() { loop_.stop(); }

  Result<bool> admit(std::string_view body);

 private:
  cloud::LoopThread loop_;
  HttpUploader uploader_;
  LogRequestRunner runner_;
};

}  // namespace fleetlet::logrequest
