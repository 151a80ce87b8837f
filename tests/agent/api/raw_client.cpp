#include "raw_client.h"

#include "http/client.h"

namespace fleetlet::api::test {
namespace {

http::Client client(const std::string& socket) {
  return http::Client({.unix_socket = socket, .stall_timeout = std::chrono::seconds(30)});
}

}  // namespace

Reply call(const std::string& socket, const std::string& method, const std::string& path,
           std::string body) {
  http::Request request;
  request.method = method;
  request.url = "http://fleetletd" + path;
  request.body = std::move(body);
  auto response = client(socket).send(request);
  if (!response) return {.status = 0, .body = response.error().message()};
  return {.status = response->status,
          .content_type = response->headers.find("Content-Type").value_or(""),
          .body = response->body};
}

Reply collectLines(const std::string& socket, const std::string& path,
                   const std::function<bool(const std::vector<std::string>&)>& done,
                   std::vector<std::string>& lines) {
  http::Request request;
  request.url = "http://fleetletd" + path;
  std::string buffer;
  bool finished = false;
  auto response = client(socket).stream(request, [&](std::string_view chunk) {
    buffer.append(chunk);
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      lines.push_back(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
    finished = done(lines);
    return !finished;
  });
  if (finished) return {.status = 200};
  if (!response) return {.status = 0, .body = response.error().message()};
  return {.status = response->status,
          .content_type = response->headers.find("Content-Type").value_or(""),
          .body = response->body};
}

}  // namespace fleetlet::api::test
