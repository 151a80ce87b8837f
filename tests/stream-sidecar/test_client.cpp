#include "test_client.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <sstream>

namespace fleetlet::streams::testing {

Json Reply::json() const {
  auto j = Json::parse(body, nullptr, false);
  return j;
}

std::optional<std::string> Reply::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Reply::lines() const {
  std::vector<Json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(Json::parse(line, nullptr, false));
  }
  return out;
}

namespace {

// libcurl directly: fleetlet::http::Client's Request/Response share their names with the
// server's, so one binary cannot link both (ODR); these tests run the server in-process.
struct Transfer {
  std::function<bool(std::string_view)> sink;
  std::string body;
  std::map<std::string, std::string> headers;
};

size_t onBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view chunk(data, size * n);
  if (t->sink) return t->sink(chunk) ? chunk.size() : 0;
  t->body.append(chunk);
  return chunk.size();
}

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    t->headers[name] = value;
  }
  return size * n;
}

Reply perform(const std::string& method, const std::string& url, const std::string& body,
              const std::vector<std::pair<std::string, std::string>>& headers,
              std::function<bool(std::string_view)> sink,
              std::chrono::seconds quiet = std::chrono::seconds(0)) {
  CURL* curl = curl_easy_init();
  Transfer t{std::move(sink), {}, {}};
  curl_slist* list = nullptr;
  for (const auto& [k, v] : headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method != "GET" && method != "OPTIONS") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(kPatience.count() * 1000));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (quiet.count() > 0) {
    // Ends the transfer once no byte came for `quiet` (curl: below 1 byte/s over that time).
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(quiet.count()));
  }
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR && status == 0) {
    return Reply{0, curl_easy_strerror(rc), {}};
  }
  return Reply{status, std::move(t.body), std::move(t.headers)};
}

}  // namespace

Reply TestClient::get(const std::string& path) { return request("GET", path, ""); }

Reply TestClient::post(const std::string& path, const std::string& body) {
  return request("POST", path, body, {{"Content-Type", "application/json"}});
}

Reply TestClient::request(const std::string& method, const std::string& path,
                          const std::string& body,
                          std::vector<std::pair<std::string, std::string>> headers) {
  return perform(method, base_ + path, body, headers, nullptr);
}

std::vector<Json> TestClient::streamLines(
    const std::string& method, const std::string& path, const std::string& body,
    const std::function<bool(const std::vector<Json>&)>& enough) {
  std::vector<Json> lines;
  std::string partial;
  if (enough(lines)) return lines;
  auto sink = [&](std::string_view chunk) {
    partial.append(chunk);
    std::size_t pos;
    while ((pos = partial.find('\n')) != std::string::npos) {
      lines.push_back(Json::parse(partial.substr(0, pos), nullptr, false));
      partial.erase(0, pos + 1);
    }
    return !enough(lines);
  };
  (void)perform(method, base_ + path, body, {{"Content-Type", "application/json"}}, sink);
  return lines;
}

std::vector<Json> TestClient::streamLinesUntilQuiet(const std::string& method,
                                                    const std::string& path,
                                                    const std::string& body,
                                                    std::chrono::seconds quiet) {
  std::vector<Json> lines;
  std::string partial;
  auto sink = [&](std::string_view chunk) {
    partial.append(chunk);
    std::size_t pos;
    while ((pos = partial.find('\n')) != std::string::npos) {
      lines.push_back(Json::parse(partial.substr(0, pos), nullptr, false));
      partial.erase(0, pos + 1);
    }
    return true;
  };
  (void)perform(method, base_ + path, body, {{"Content-Type", "application/json"}}, sink, quiet);
  return lines;
}

Reply TestClient::publish(const std::string& semantics, const std::string& name, int count,
                          const Json& payload) {
  Json data = Json::array();
  for (int i = 0; i < count; ++i) {
    data.push_back({{"semantics", semantics}, {"name", name}, {"payload", payload}});
  }
  return post("/api/v1/events/publish", Json{{"data", data}}.dump());
}

std::size_t countOccurrences(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

std::string rawPost(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string rawWebSocketUpgrade(const std::string& path) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

std::string rawWebSocketFrame(const std::string& text) {
  std::string frame = "\x81";
  if (text.size() < 126) {
    frame += static_cast<char>(0x80 | text.size());
  } else {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>((text.size() >> 8) & 0xff);
    frame += static_cast<char>(text.size() & 0xff);
  }
  frame += std::string(4, '\0');  // the masking key
  return frame + text;
}

RawSocket RawSocket::connect(std::uint16_t port, int rcvbuf) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  return RawSocket(std::move(fd));
}

bool RawSocket::send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string RawSocket::readUntil(std::string_view needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buffer_.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
  return buffer_;
}

bool RawSocket::waitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) return true;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace fleetlet::streams::testing
