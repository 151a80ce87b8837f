#include "support/blob_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "crypto/sha256.h"
#include "http/server.h"

namespace fleetlet::blobtest {
namespace {

constexpr std::size_t kBlock = 1 << 20;
constexpr std::string_view kBoundary = "----fleetletTestBoundary7MA4YWxkTrZu0gW";

const std::vector<char>& baseBlock(uint32_t seed) {
  static thread_local uint32_t cached_seed = 0;
  static thread_local std::vector<char> block;
  if (block.empty() || cached_seed != seed) {
    block.resize(kBlock);
    uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);
    for (std::size_t i = 0; i < kBlock; i += 8) {
      x += 0x9e3779b97f4a7c15ULL;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      std::memcpy(block.data() + i, &z, 8);
    }
    cached_seed = seed;
  }
  return block;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

void fillPattern(uint64_t offset, char* out, std::size_t n, uint32_t seed) {
  const std::vector<char>& base = baseBlock(seed);
  while (n > 0) {
    uint64_t in_block = offset % kBlock;
    uint64_t block_index = offset / kBlock;
    std::size_t take = std::min<std::size_t>(n, kBlock - in_block);
    std::memcpy(out, base.data() + in_block, take);
    // Make every MiB different: the first 8 bytes of each block carry its index.
    for (uint64_t i = in_block; i < 8 && i < in_block + take; ++i) {
      out[i - in_block] = static_cast<char>(out[i - in_block] ^ ((block_index >> (8 * i)) & 0xff));
    }
    out += take;
    offset += take;
    n -= take;
  }
}

std::string patternSha256(uint64_t bytes, uint32_t seed) {
  Sha256 hash;
  std::vector<char> buf(kBlock);
  for (uint64_t off = 0; off < bytes; off += kBlock) {
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kBlock, bytes - off));
    fillPattern(off, buf.data(), n, seed);
    hash.update(buf.data(), n);
  }
  return hash.finishHex();
}

std::optional<std::string> RawResponse::header(std::string_view name) const {
  std::istringstream lines(headers);
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos || colon != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) !=
          std::tolower(static_cast<unsigned char>(name[i]))) {
        same = false;
      }
    }
    if (same) return std::string(trim(std::string_view(line).substr(colon + 1)));
  }
  return std::nullopt;
}

Result<RawConnection> RawConnection::connect(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return failErrno(errno, "connect 127.0.0.1:{}", port);
  }
  return RawConnection(std::move(fd));
}

Status RawConnection::sendAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "send");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status();
}

Result<RawResponse> RawConnection::readResponse(const std::function<void(std::string_view)>& sink) {
  std::array<char, 65536> buf;
  auto fill = [&]() -> Result<bool> {
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) return true;
      return failErrno(errno, "recv");
    }
    if (n == 0) return false;
    buffer_.append(buf.data(), static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    FLEETLET_ASSIGN_OR_RETURN(bool more, fill());
    if (!more) return fail(ErrorCode::kUnavailable, "connection closed before a response");
  }
  RawResponse response;
  response.headers = buffer_.substr(0, end + 2);
  buffer_.erase(0, end + 4);
  if (response.headers.size() < 12) return fail(ErrorCode::kInternal, "short status line");
  response.status = std::stoi(response.headers.substr(9, 3));
  auto length = response.header("Content-Length");
  auto deliver = [&](std::string_view data) {
    if (sink) {
      sink(data);
    } else {
      response.body.append(data);
    }
  };
  if (length) {
    uint64_t left = std::stoull(*length);
    while (left > 0) {
      if (buffer_.empty()) {
        FLEETLET_ASSIGN_OR_RETURN(bool more, fill());
        if (!more) return fail(ErrorCode::kUnavailable, "connection closed inside the body");
      }
      std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(left, buffer_.size()));
      deliver(std::string_view(buffer_).substr(0, take));
      buffer_.erase(0, take);
      left -= take;
    }
  } else if (response.status != 204 && response.status != 304) {
    while (true) {
      deliver(buffer_);
      buffer_.clear();
      FLEETLET_ASSIGN_OR_RETURN(bool more, fill());
      if (!more) break;
    }
  }
  return response;
}

Result<RawResponse> upload(uint16_t port, const MultipartUpload& request,
                           std::optional<RawConnection>* keep_open) {
  std::string boundary(kBoundary);
  std::string pre = "--" + boundary +
                    "\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
                    "Content-Type: application/json\r\n\r\n" +
                    request.metadata_json + "\r\n--" + boundary +
                    "\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"" +
                    request.filename + "\"\r\nContent-Type: " + request.content_type + "\r\n\r\n";
  std::string post = "\r\n--" + boundary + "--\r\n";
  uint64_t total = pre.size() + request.blob_bytes + post.size();
  std::string head =
      "POST /api/v1/blobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: multipart/form-data; boundary=" +
      boundary + "\r\n";
  head += request.with_length ? fmt::format("Content-Length: {}\r\n", total)
                              : std::string("Transfer-Encoding: chunked\r\n");
  head += "\r\n";

  FLEETLET_ASSIGN_OR_RETURN(RawConnection connection, RawConnection::connect(port));
  auto send = [&](std::string_view data) -> Status {
    if (data.empty()) return Status();
    if (request.with_length) return connection.sendAll(data);
    FLEETLET_RETURN_IF_ERROR(connection.sendAll(fmt::format("{:x}\r\n", data.size())));
    FLEETLET_RETURN_IF_ERROR(connection.sendAll(data));
    return connection.sendAll("\r\n");
  };
  auto sent = [&]() -> Status {
    FLEETLET_RETURN_IF_ERROR(connection.sendAll(head));
    FLEETLET_RETURN_IF_ERROR(send(pre));
    std::vector<char> buf(kBlock);
    uint64_t limit = std::min(request.blob_bytes, request.stop_after.value_or(UINT64_MAX));
    for (uint64_t off = 0; off < limit; off += kBlock) {
      std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kBlock, limit - off));
      fillPattern(off, buf.data(), n, request.seed);
      FLEETLET_RETURN_IF_ERROR(send(std::string_view(buf.data(), n)));
    }
    if (request.stop_after) return Status();
    FLEETLET_RETURN_IF_ERROR(send(post));
    if (!request.with_length) FLEETLET_RETURN_IF_ERROR(connection.sendAll("0\r\n\r\n"));
    return Status();
  }();
  if (sent && request.stop_after) {
    if (keep_open) keep_open->emplace(std::move(connection));
    return RawResponse{};
  }
  // The server may answer early (413/507) and stop reading: its answer is still readable.
  auto response = connection.readResponse();
  if (!response && !sent) return std::unexpected(sent.error());
  return response;
}

Result<Rss> readRss(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  if (!status) return fail(ErrorCode::kNotFound, "no process {}", pid);
  Rss rss;
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) rss.peak_kib = std::stoull(line.substr(6));
    if (line.starts_with("VmRSS:")) rss.current_kib = std::stoull(line.substr(6));
  }
  return rss;
}

std::filesystem::path blobBinary() { return FLEETLET_BLOBS_BINARY; }

Result<BlobProcess> BlobProcess::start(const std::filesystem::path& binary,
                                       const std::vector<std::string>& args,
                                       const std::filesystem::path& log_path) {
  SpawnOptions options;
  options.argv = {binary.string()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.argv.push_back("--listen");
  options.argv.push_back("127.0.0.1:0");
  options.stderr_path = log_path;
  std::filesystem::remove(log_path);
  FLEETLET_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::spawn(options));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  // main.cpp's line, logged once the whole service (handoff socket included) is up; with
  // --log-level debug the HTTP server logs "listening on" earlier, before the handoff socket
  // exists, and a test connecting to it then failed now and then.
  constexpr std::string_view kMarker = "fleetlet-blobs: listening on 127.0.0.1:";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream log(log_path);
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    if (auto pos = text.find(kMarker); pos != std::string::npos) {
      uint16_t port = static_cast<uint16_t>(std::stoi(text.substr(pos + kMarker.size())));
      return BlobProcess(std::move(child), port);
    }
    if (auto exited = child.poll()) {
      return fail(ErrorCode::kInternal, "fleetlet-blobs exited ({}): {}", exited->describe(), text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fail(ErrorCode::kUnavailable, "fleetlet-blobs did not log its port within 15 s");
}

std::string BlobProcess::baseUrl() const { return fmt::format("http://127.0.0.1:{}", port_); }

Result<std::unique_ptr<RecordingEventService>> RecordingEventService::start() {
  std::unique_ptr<RecordingEventService> service(new RecordingEventService());
  service->server_ = std::make_unique<http::Server>(http::ServerOptions{});
  RecordingEventService* self = service.get();
  FLEETLET_RETURN_IF_ERROR(service->server_->route(
      "POST", "/api/v1/events/publish", [self](http::Request& r) -> http::Task<http::Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        auto parsed = parseJson(*body, "publish request");
        if (!parsed) co_return http::errorResponse(parsed.error());
        {
          std::lock_guard lock(self->mutex_);
          if (!self->available_) {
            co_return http::errorResponse(
                Error(ErrorCode::kUnavailable, "event service is down (test)"));
          }
          for (const Json& event : parsed->value("data", Json::array())) {
            self->events_.push_back(event);
          }
        }
        self->changed_.notify_all();
        co_return http::Response::empty(201);
      }));
  FLEETLET_RETURN_IF_ERROR(service->server_->route(
      "GET", "/api/v1/events/offsets", [self](http::Request&) -> http::Task<http::Response> {
        std::lock_guard lock(self->mutex_);
        Json offsets = Json::object();
        if (!self->log_.empty()) offsets["log"] = self->log_.size() - 1;
        co_return http::Response::json(200, offsets.dump());
      }));
  FLEETLET_RETURN_IF_ERROR(service->server_->route(
      "POST", "/api/v1/events/query", [self](http::Request& r) -> http::Task<http::Response> {
        auto body = co_await r.readBody();
        if (!body) co_return http::errorResponse(body.error());
        std::string lines;
        std::lock_guard lock(self->mutex_);
        for (std::size_t i = 0; i < self->log_.size(); ++i) {
          const Json& e = self->log_[i];
          lines += Json{{"stream",
                         {{"semantics", e.value("semantics", "")},
                          {"name", e.value("name", "")},
                          {"source", "log"}}},
                        {"timestamp", 0},
                        {"lamport", i},
                        {"offset", i},
                        {"payload", e.value("payload", Json())}}
                       .dump() +
                   "\n";
        }
        co_return http::Response::text(200, std::move(lines), "application/x-ndjson");
      }));
  FLEETLET_ASSIGN_OR_RETURN(auto info, service->server_->listenTcp("127.0.0.1", 0));
  service->port_ = info.port;
  FLEETLET_RETURN_IF_ERROR(service->server_->start());
  return service;
}

RecordingEventService::RecordingEventService() = default;

RecordingEventService::~RecordingEventService() {
  if (server_) server_->stop(std::chrono::milliseconds(500));
}

std::string RecordingEventService::baseUrl() const {
  return fmt::format("http://127.0.0.1:{}", port_);
}

void RecordingEventService::setAvailable(bool available) {
  std::lock_guard lock(mutex_);
  available_ = available;
}

std::vector<Json> RecordingEventService::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

void RecordingEventService::addToLog(const Json& event) {
  std::lock_guard lock(mutex_);
  log_.push_back(event);
}

std::vector<Json> RecordingEventService::waitForEvents(std::size_t count,
                                                       std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
  return events_;
}

}  // namespace fleetlet::blobtest
