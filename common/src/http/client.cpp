#include "http/client.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <mutex>

namespace fleetlet::http {
namespace {

// curl_global_init is not thread-safe; run it once before the first handle.
void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// State of one transfer, shared with curl's callbacks.
struct Transfer {
  ClientResponse response;
  const BodySink* sink = nullptr;
  const ResponseStart* on_start = nullptr;
  bool started = false;  // on_start was called
  const std::stop_token* stop = nullptr;
  bool sink_aborted = false;
  bool cancelled = false;
  bool status_known = false;

  bool success() const { return response.status >= 200 && response.status < 300; }
};

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    // A new response begins (after a redirect or a 100 Continue): forget earlier headers.
    t->response.headers = Headers();
    t->response.body.clear();
    auto sp = line.find(' ');
    if (sp != std::string_view::npos)
      t->response.status = std::strtol(line.data() + sp + 1, nullptr, 10);
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response.headers.add(std::string(trim(line.substr(0, colon))),
                            std::string(trim(line.substr(colon + 1))));
  }
  return size * count;
}

int onProgress(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t /*ultotal*/,
               curl_off_t /*ulnow*/) {
  auto* t = static_cast<Transfer*>(user);
  if (t->stop->stop_requested()) {
    t->cancelled = true;
    return 1;
  }
  return 0;
}

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view chunk(data, size * count);
  if (t->sink != nullptr && t->success()) {
    if (!t->started && t->on_start != nullptr) {
      t->started = true;
      (*t->on_start)(t->response);
    }
    if (!(*t->sink)(chunk)) {
      t->sink_aborted = true;
      return CURL_WRITEFUNC_ERROR;
    }
    return chunk.size();
  }
  if (t->sink != nullptr) {
    // An error body while streaming: keep what a message needs.
    size_t room = Client::kMaxErrorBody - std::min(Client::kMaxErrorBody, t->response.body.size());
    t->response.body.append(chunk.substr(0, room));
    return chunk.size();
  }
  t->response.body.append(chunk);
  return chunk.size();
}

std::string hostOf(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find('/', start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace

void Headers::add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> Headers::find(std::string_view name) const {
  for (const auto& [k, v] : entries_) {
    // NOLINTNEXTLINE(bugprone-suspicious-stringview-data-usage): both sizes are k.size().
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return std::nullopt;
}

struct Client::Impl {
  ClientOptions options;
  std::unique_ptr<CURL, CurlDeleter> curl;

  Result<ClientResponse> perform(const ClientRequest& request, const BodySink* sink,
                                 const ResponseStart* on_start = nullptr);
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  initCurlOnce();
  impl_->options = std::move(options);
  impl_->curl.reset(curl_easy_init());
}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<ClientResponse> Client::send(const ClientRequest& request) {
  return impl_->perform(request, nullptr);
}

Result<ClientResponse> Client::stream(const ClientRequest& request, const BodySink& sink) {
  return impl_->perform(request, &sink);
}

Result<ClientResponse> Client::stream(const ClientRequest& request, const BodySink& sink,
                                      const ResponseStart& on_start) {
  return impl_->perform(request, &sink, &on_start);
}

Result<ClientResponse> Client::Impl::perform(const ClientRequest& request, const BodySink* sink,
                                             const ResponseStart* on_start) {
  CURL* h = curl.get();
  if (h == nullptr) return fail(ErrorCode::kInternal, "curl_easy_init failed");
  curl_easy_reset(h);

  Transfer transfer;
  transfer.sink = sink;
  transfer.on_start = on_start;
  CurlSlist headers;
  for (const auto& [k, v] : request.headers.all()) {
    std::string line = k;
    line.append(": ").append(v);
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
  // Never send "Expect: 100-continue": it costs a round trip and some servers mishandle it.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, options.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  // Registries redirect blob downloads to storage that must not get our Authorization header;
  // curl drops it on a host change by default (CURLOPT_UNRESTRICTED_AUTH off).
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
                   static_cast<long>(std::max<int64_t>(1, options.min_bytes_per_second)));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                   std::max(1L, static_cast<long>(options.stall_timeout.count() / 1000)));
  curl_easy_setopt(
      h, CURLOPT_MAX_SEND_SPEED_LARGE,
      static_cast<curl_off_t>(std::max<int64_t>(0, options.max_send_bytes_per_second)));
  auto limit = options.total_timeout;
  if (options.deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        *options.deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return fail(ErrorCode::kUnavailable, "{} {}: deadline exceeded", request.method, request.url);
    }
    if (limit.count() == 0 || left < limit) limit = left;
  }
  // 0 resets the limit: a reused handle must not keep an earlier request's.
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(limit.count()));
  if (options.stop.stop_possible()) {
    transfer.stop = &options.stop;
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &onProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  } else {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
  }
  if (options.unix_socket)
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, options.unix_socket->c_str());
  const ClientTls& tls = options.tls;
  if (!tls.client_cert.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, tls.client_cert.c_str());
  if (!tls.client_key.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls.client_key.c_str());
  if (!tls.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, tls.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  }
  std::string pins;
  for (const auto& pin : tls.pinned_public_keys) pins += (pins.empty() ? "" : ";") + pin;
  if (!pins.empty()) curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pins.c_str());
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");

  std::string range;
  if (request.range_start) {
    range = std::to_string(*request.range_start) + "-";
    curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET" || !request.body.empty()) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }

  std::array<char, CURL_ERROR_SIZE> error_buffer{};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer.data());
  CURLcode rc = curl_easy_perform(h);
  if (transfer.cancelled) {
    return fail(ErrorCode::kUnavailable, "{} {}: cancelled", request.method, request.url);
  }
  if (transfer.sink_aborted) {
    return fail(ErrorCode::kUnavailable, "{} {}: aborted by the receiver", request.method,
                request.url);
  }
  if (rc != CURLE_OK) {
    std::string reason = error_buffer[0] != '\0' ? error_buffer.data() : curl_easy_strerror(rc);
    // curl says "Operation too slow. Less than N bytes/sec transferred the last S seconds"
    // for the minimum rate, "Operation timed out after …" for the overall limit.
    if (rc == CURLE_OPERATION_TIMEDOUT && options.deadline &&
        reason.find("too slow") == std::string::npos) {
      reason += " (deadline exceeded)";
    }
    return fail(ErrorCode::kUnavailable, "{} unreachable: {}",
                options.unix_socket ? *options.unix_socket : hostOf(request.url), reason);
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = status;
  char* effective = nullptr;
  curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) transfer.response.effective_url = effective;
  return std::move(transfer.response);
}

}  // namespace fleetlet::http
