#pragma once
// Test and benchmark helpers for fleetlet-blobs: a raw HTTP/1.1 client that streams generated
// multipart bodies of any size without holding them in memory, a process fixture for the
// fleetlet-blobs binary, and a recording event service.
//
// Concurrency: each object is used from one thread, except RecordingEventService, whose
// accessors are thread-safe (its server records on its own thread).

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "error/error.h"
#include "json/json.h"
#include "os/child_process.h"
#include "os/unique_fd.h"

// Keeps http/server.h out of the tests that include this header.
namespace fleetlet::http {
class Server;
}

namespace fleetlet::blobtest {

struct RawResponse {
  int status = 0;
  std::string headers;  // raw header block
  std::string body;
  std::optional<std::string> header(std::string_view name) const;
};

// A TCP connection to 127.0.0.1:port speaking just enough HTTP/1.1 for the tests.
class RawConnection {
 public:
  static Result<RawConnection> connect(uint16_t port);
  Status sendAll(std::string_view data);
  // Reads one response (Content-Length or connection close delimited). When `sink` is set,
  // body bytes go to it instead of RawResponse::body.
  Result<RawResponse> readResponse(const std::function<void(std::string_view)>& sink = {});
  int fd() const { return fd_.get(); }

 private:
  explicit RawConnection(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buffer_;
};

// Deterministic blob bytes: byte i of a blob with `seed`.
void fillPattern(uint64_t offset, char* out, std::size_t n, uint32_t seed);

struct MultipartUpload {
  uint64_t blob_bytes = 0;
  uint32_t seed = 1;
  std::string content_type = "application/octet-stream";
  std::string filename = "blob.bin";
  std::string metadata_json;
  // Send Content-Length (else chunked).
  bool with_length = true;
  // Stop sending after this many blob bytes (simulating a client cut off); the connection is
  // left open and returned to the caller through `keep_open`.
  std::optional<uint64_t> stop_after;
};

// Streams the upload to POST /api/v1/blobs and returns the response. With stop_after set,
// returns status 0 after sending that much and leaves the connection in *keep_open.
Result<RawResponse> upload(uint16_t port, const MultipartUpload& request,
                           std::optional<RawConnection>* keep_open = nullptr);

// SHA-256 (hex) of the pattern blob.
std::string patternSha256(uint64_t bytes, uint32_t seed);

// Peak and current RSS of a process from /proc/<pid>/status, in KiB.
struct Rss {
  uint64_t peak_kib = 0;
  uint64_t current_kib = 0;
};
Result<Rss> readRss(pid_t pid);

// Runs build/blob-sidecar/fleetlet-blobs with `args` plus --listen 127.0.0.1:0, stderr to a
// log file in `log_dir`, and waits until it logged its port.
class BlobProcess {
 public:
  static Result<BlobProcess> start(const std::filesystem::path& binary,
                                   const std::vector<std::string>& args,
                                   const std::filesystem::path& log_path);
  uint16_t port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  std::string baseUrl() const;
  ChildProcess& child() { return child_; }

 private:
  BlobProcess(ChildProcess child, uint16_t port) : child_(std::move(child)), port_(port) {}
  ChildProcess child_;
  uint16_t port_ = 0;
};

// The fleetlet-blobs binary of this build (FLEETLET_BINARY_DIR or the test's own build dir).
std::filesystem::path blobBinary();

// An event service stand-in: records every event POSTed to /api/v1/events/publish, and
// answers 503 while unavailable. Its "log" (what the node's replicated event log holds, set by
// the test with addToLog) answers GET /api/v1/events/offsets and POST /api/v1/events/query
// (every logged event, as NDJSON, whatever the query).
class RecordingEventService {
 public:
  static Result<std::unique_ptr<RecordingEventService>> start();
  ~RecordingEventService();
  std::string baseUrl() const;
  void setAvailable(bool available);
  std::vector<Json> events() const;
  // Adds `event` ({"semantics","name","payload"}, as published) to the log.
  void addToLog(const Json& event);
  // Waits until at least `count` events arrived or `timeout` passed; returns the events.
  std::vector<Json> waitForEvents(std::size_t count, std::chrono::milliseconds timeout) const;

 private:
  RecordingEventService();
  std::unique_ptr<http::Server> server_;
  uint16_t port_ = 0;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool available_ = true;     // guarded by mutex_
  std::vector<Json> events_;  // guarded by mutex_
  std::vector<Json> log_;     // guarded by mutex_
};

}  // namespace fleetlet::blobtest
