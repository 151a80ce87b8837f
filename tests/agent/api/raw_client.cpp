#include "raw_client.h"

#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "os/unique_fd.h"

namespace fleetlet::api::test {
namespace {

UniqueFd connectTo(const std::string& path, std::string& error,
                   std::chrono::milliseconds patience = std::chrono::seconds(10)) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    error = std::string("connect: ") + std::strerror(errno);
    return UniqueFd();
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(patience).count();
  timeval timeout{.tv_sec = us / 1000000, .tv_usec = us % 1000000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// Reads a response incrementally; `on_body` gets de-chunked body bytes and may return false
// to stop reading.
class ResponseReader {
 public:
  // Feeds bytes; returns false once the response is complete.
  bool feed(std::string_view data, const std::function<bool(std::string_view)>& on_body) {
    buffer_.append(data);
    if (!head_done_) {
      auto end = buffer_.find("\r\n\r\n");
      if (end == std::string::npos) return true;
      parseHead(buffer_.substr(0, end));
      buffer_.erase(0, end + 4);
      head_done_ = true;
    }
    if (!chunked_) {
      if (!buffer_.empty() && !on_body(buffer_)) return false;
      received_ += buffer_.size();
      buffer_.clear();
      return !length_ || received_ < *length_;
    }
    for (;;) {
      if (chunk_left_ == 0) {
        auto eol = buffer_.find("\r\n");
        if (eol == std::string::npos) return true;
        if (eol == 0) {  // the CRLF after a chunk's data
          buffer_.erase(0, 2);
          continue;
        }
        chunk_left_ = std::stoul(buffer_.substr(0, eol), nullptr, 16);
        buffer_.erase(0, eol + 2);
        if (chunk_left_ == 0) return false;  // last chunk
      }
      if (buffer_.empty()) return true;
      size_t n = std::min(chunk_left_, buffer_.size());
      bool more = on_body(std::string_view(buffer_).substr(0, n));
      buffer_.erase(0, n);
      chunk_left_ -= n;
      if (!more) return false;
    }
  }

  Reply reply;

 private:
  void parseHead(const std::string& head) {
    auto sp = head.find(' ');
    reply.status = sp == std::string::npos ? -1 : std::stol(head.substr(sp + 1, 3));
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (::strcasecmp(name.c_str(), "content-type") == 0) reply.content_type = value;
        if (::strcasecmp(name.c_str(), "content-length") == 0) length_ = std::stoull(value);
        if (::strcasecmp(name.c_str(), "transfer-encoding") == 0) chunked_ = value == "chunked";
      }
      pos = next;
    }
  }

  std::string buffer_;
  bool head_done_ = false;
  bool chunked_ = false;
  std::optional<size_t> length_;
  size_t received_ = 0;
  size_t chunk_left_ = 0;
};

void sendAll(int fd, const std::string& request) {
  // A body the server refuses early (413) may not be taken whole; the answer still comes.
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
}

// Appends complete lines of `data` (after what `partial` held) to `lines`.
void splitLines(std::string_view data, std::string& partial, std::vector<std::string>& lines) {
  partial.append(data);
  for (size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
    lines.push_back(partial.substr(0, nl));
    partial.erase(0, nl + 1);
  }
}

Reply exchange(const std::string& socket, const std::string& request,
               const std::function<bool(std::string_view)>& on_body,
               std::chrono::milliseconds patience = std::chrono::seconds(10)) {
  std::string error;
  UniqueFd fd = connectTo(socket, error, patience);
  if (!fd) return {.status = 0, .body = error};
  sendAll(fd.get(), request);
  ResponseReader reader;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::recv(fd.get(), chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!reader.feed(std::string_view(chunk, static_cast<size_t>(n)), on_body)) break;
  }
  return reader.reply;
}

}  // namespace

Reply call(const std::string& socket, const std::string& method, const std::string& path,
           const std::string& body, std::chrono::milliseconds patience) {
  std::string request = method + " " + path +
                        " HTTP/1.1\r\nHost: fleetletd\r\nConnection: close\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string received;
  Reply reply = exchange(
      socket, request,
      [&](std::string_view data) {
        received.append(data);
        return true;
      },
      patience);
  if (reply.status != 0) reply.body = std::move(received);
  return reply;
}

Reply collectLines(const std::string& socket, const std::string& path,
                   const std::function<bool(const std::vector<std::string>&)>& done,
                   std::vector<std::string>& lines) {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: fleetletd\r\nConnection: close\r\n\r\n";
  std::string buffer;
  return exchange(socket, request, [&](std::string_view data) {
    size_t before = lines.size();
    splitLines(data, buffer, lines);
    return !(lines.size() > before && done(lines));
  });
}

struct OpenStream::State {
  UniqueFd fd;
  ResponseReader reader;
  std::string partial;
  std::vector<std::string> lines;
  bool ended = false;
};

OpenStream::OpenStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
OpenStream::~OpenStream() = default;

std::unique_ptr<OpenStream> OpenStream::open(const std::string& socket, const std::string& path,
                                             std::string& error) {
  auto state = std::make_unique<State>();
  state->fd = connectTo(socket, error);
  if (!state->fd) return nullptr;
  sendAll(state->fd.get(),
          "GET " + path + " HTTP/1.1\r\nHost: fleetletd\r\nConnection: close\r\n\r\n");
  return std::unique_ptr<OpenStream>(new OpenStream(std::move(state)));
}

void OpenStream::readUntil(const std::function<bool()>& done, std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  State& s = *state_;
  char chunk[65536];
  while (!s.ended && !done()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{.fd = s.fd.get(), .events = POLLIN, .revents = 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    ssize_t got = ::recv(s.fd.get(), chunk, sizeof(chunk), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      s.ended = true;
      break;
    }
    s.ended = !s.reader.feed(std::string_view(chunk, static_cast<size_t>(got)),
                             [&s](std::string_view data) {
                               splitLines(data, s.partial, s.lines);
                               return true;
                             });
  }
}

long OpenStream::waitForHead(std::chrono::milliseconds patience) {
  readUntil([this] { return state_->reader.reply.status != 0; }, patience);
  return state_->reader.reply.status;
}

const std::vector<std::string>& OpenStream::waitForLines(size_t n,
                                                         std::chrono::milliseconds patience) {
  readUntil([this, n] { return state_->lines.size() >= n; }, patience);
  return state_->lines;
}

long OpenStream::status() const { return state_->reader.reply.status; }

}  // namespace fleetlet::api::test
