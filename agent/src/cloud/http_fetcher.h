#pragma once
// The cloud's HTTP as the manifest source needs it: one conditional GET with a bounded body.
// HttpFetcher is libcurl with the node's mTLS settings; tests use fakes of Fetcher.
//
// Thread-safety: a Fetcher is used by one thread at a time.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "config/daemon_config.h"
#include "error/error.h"
#include "http/client.h"

namespace fleetlet::cloud {

struct FetchRequest {
  std::string url;
  std::string etag;              // sent as If-None-Match when not empty
  std::chrono::seconds wait{0};  // sent as "Prefer: wait=N" when above 0
};

struct FetchResponse {
  long status = 0;
  std::string etag;
  std::optional<std::string> retry_after;
  std::optional<std::string> cache_control;
  std::string content_type;
  // A 2xx body, or the start of an error page; empty after 304.
  std::string body;
  // The 2xx body was larger than the limit: it was not read to the end and `body` is empty.
  bool too_large = false;
};

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // kUnavailable when no HTTP answer came (unreachable, TLS refused, timeout, cancelled).
  virtual Result<FetchResponse> get(const FetchRequest& request) = 0;
};

struct HttpFetcherOptions {
  config::CloudTls tls;
  int64_t max_body_bytes = int64_t{1024} * 1024;
  // How long a request may take beyond the long-poll wait it asks for.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::stop_token stop;  // cancels a request in flight
};

// A file's modification time and size: how a renewed certificate file is noticed.
struct FileStamp {
  std::filesystem::file_time_type mtime;
  uintmax_t size = 0;
  bool operator==(const FileStamp&) const = default;
};

// Status reports go out as `method url` with a JSON body (status_reporter.h).
struct SendResult {
  long status = 0;
  std::optional<std::string> retry_after;
};

class StatusSender {
 public:
  virtual ~StatusSender() = default;
  // kUnavailable when no HTTP answer came.
  virtual Result<SendResult> send(const std::string& method, const std::string& url,
                                  const std::string& body) = 0;
};

class HttpFetcher : public Fetcher, public StatusSender {
 public:
  explicit HttpFetcher(HttpFetcherOptions options);
  Result<FetchResponse> get(const FetchRequest& request) override;
  // The response body is read and dropped (up to its first 64 KiB kept for messages).
  Result<SendResult> send(const std::string& method, const std::string& url,
                          const std::string& body) override;

  // How many times the client was made afresh because the client certificate or key file
  // changed (a renewed certificate is used from the next request on).
  int clientRenewals() const { return renewals_; }

 private:
  std::pair<FileStamp, FileStamp> stampCertificate() const;
  http::Client& client(std::chrono::seconds wait);

  HttpFetcherOptions options_;
  std::optional<http::Client> client_;
  std::chrono::seconds client_wait_{-1};
  std::pair<FileStamp, FileStamp> cert_stamp_;
  int renewals_ = 0;
};

}  // namespace fleetlet::cloud
