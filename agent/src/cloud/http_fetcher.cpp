#include "cloud/http_fetcher.h"

#include <spdlog/spdlog.h>

namespace fleetlet::cloud {

HttpFetcher::HttpFetcher(HttpFetcherOptions options) : options_(std::move(options)) {}

std::pair<FileStamp, FileStamp> HttpFetcher::stampCertificate() const {
  auto stamp = [](const std::filesystem::path& p) {
    FileStamp s;
    std::error_code ec;
    if (p.empty()) return s;
    s.mtime = std::filesystem::last_write_time(p, ec);
    s.size = std::filesystem::file_size(p, ec);
    return s;
  };
  return {stamp(options_.tls.cert), stamp(options_.tls.key)};
}

http::Client& HttpFetcher::client(std::chrono::seconds wait) {
  // curl keeps connections (and TLS sessions) open with the certificate they were made with,
  // keyed by the file's name: a renewed file under the same name needs a fresh client.
  auto stamp = stampCertificate();
  bool renewed = client_ && stamp != cert_stamp_;
  if (renewed) {
    ++renewals_;
    spdlog::info("cloud: client certificate {} changed; reconnecting with it",
                 options_.tls.cert.string());
  }
  if (!client_ || renewed || wait != client_wait_) {
    const auto limit =
        std::chrono::duration_cast<std::chrono::milliseconds>(wait) + options_.timeout;
    http::ClientOptions o;
    o.user_agent = "fleetletd/0.1";
    o.connect_timeout = std::min(options_.timeout, std::chrono::milliseconds(10000));
    // A long-polling server sends nothing until it answers: no stall limit below the whole.
    o.stall_timeout = limit;
    o.total_timeout = limit;
    o.stop = options_.stop;
    o.tls = {.client_cert = options_.tls.cert.string(),
             .client_key = options_.tls.key.string(),
             .ca_file = options_.tls.ca.string(),
             .pinned_public_keys = options_.tls.pinned_public_keys};
    client_.emplace(std::move(o));
    client_wait_ = wait;
    cert_stamp_ = stamp;
  }
  return *client_;
}

Result<FetchResponse> HttpFetcher::get(const FetchRequest& request) {
  http::ClientRequest req;
  req.url = request.url;
  req.headers.add("Accept", "application/json");
  if (!request.etag.empty()) req.headers.add("If-None-Match", request.etag);
  if (request.wait.count() > 0) {
    req.headers.add("Prefer", fmt::format("wait={}", request.wait.count()));
  }
  FetchResponse out;
  const auto limit = static_cast<size_t>(options_.max_body_bytes);
  auto sink = [&](std::string_view chunk) {
    if (out.body.size() + chunk.size() > limit) {
      out.too_large = true;
      return false;
    }
    out.body.append(chunk);
    return true;
  };
  auto response = client(request.wait).stream(req, sink);
  if (out.too_large) {
    out.status = 200;
    out.body.clear();
    client_.reset();  // the connection was cut mid-body
    return out;
  }
  if (!response) return std::unexpected(response.error());
  out.status = response->status;
  if (out.status < 200 || out.status >= 300) out.body = std::move(response->body);
  out.etag = response->headers.find("ETag").value_or("");
  out.retry_after = response->headers.find("Retry-After");
  out.cache_control = response->headers.find("Cache-Control");
  out.content_type = response->headers.find("Content-Type").value_or("");
  return out;
}

Result<SendResult> HttpFetcher::send(const std::string& method, const std::string& url,
                                     const std::string& body) {
  http::ClientRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  req.headers.add("Content-Type", "application/json");
  auto response =
      client(std::chrono::seconds(0)).stream(req, [](std::string_view) { return true; });
  if (!response) return std::unexpected(response.error());
  return SendResult{.status = response->status,
                    .retry_after = response->headers.find("Retry-After")};
}

}  // namespace fleetlet::cloud
