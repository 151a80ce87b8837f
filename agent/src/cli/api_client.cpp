#include "cli/api_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "api/json_codec.h"
#include "http/client.h"
#include "os/unique_fd.h"

namespace fleetlet::cli {
namespace {

// The URL's host is only a name: the socket decides where requests go.
constexpr std::string_view kBase = "http://fleetletd";

// The errno of connecting to the socket now, or 0 when a connection succeeds.
int probeConnect(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return ENAMETOOLONG;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return errno;
  }
  return 0;
}

Error unreachable(const std::string& socket, const Error& transport) {
  int err = probeConnect(socket);
  if (err == ENOENT || err == ECONNREFUSED) {
    return Error(
        ErrorCode::kUnavailable,
        fmt::format("fleetletd is not running at {} (connect: {})", socket, std::strerror(err)),
        err);
  }
  if (err != 0) {
    return Error(
        ErrorCode::kUnavailable,
        fmt::format("cannot connect to fleetletd at {} (connect: {})", socket, std::strerror(err)),
        err);
  }
  return Error(ErrorCode::kUnavailable,
               fmt::format("fleetletd at {} did not answer: {}", socket, transport.message()));
}

ErrorCode codeFromName(std::string_view name, long status) {
  if (name == "ERR_BAD_REQUEST") return ErrorCode::kInvalidArgument;
  if (name == "ERR_NOT_FOUND") return ErrorCode::kNotFound;
  if (name == "ERR_ALREADY_EXISTS") return ErrorCode::kAlreadyExists;
  if (name == "ERR_FAILED_PRECONDITION") return ErrorCode::kFailedPrecondition;
  if (name == "ERR_RESOURCE_EXHAUSTED" || name == "ERR_PAYLOAD_TOO_LARGE") {
    return ErrorCode::kResourceExhausted;
  }
  if (name == "ERR_UNAVAILABLE") return ErrorCode::kUnavailable;
  if (status == 404) return ErrorCode::kNotFound;
  if (status >= 400 && status < 500) return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

// The Error that an HTTP error answer describes: fleetletd's message, or the status and body
// when the body is not fleetletd's {"code","message"}.
Error serverError(const http::ClientResponse& response) {
  if (auto body = parseJson(response.body, "error"); body && body->is_object()) {
    auto message = requireString(*body, "message", "error");
    auto code = requireString(*body, "code", "error");
    if (message && code) return Error(codeFromName(*code, response.status), *message);
  }
  std::string body = response.body.substr(0, 200);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return Error(codeFromName("", response.status),
               fmt::format("fleetletd answered HTTP {}{}{}", response.status,
                           body.empty() ? "" : ": ", body));
}

Error malformed(const Error& e) {
  return Error(ErrorCode::kInternal,
               fmt::format("malformed answer from fleetletd: {}", e.message()));
}

}  // namespace

std::string escapePathSegment(std::string_view segment) {
  std::string out;
  for (char c : segment) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

ApiClient::ApiClient(std::string socket_path)
    : socket_(std::move(socket_path)),
      client_(std::make_unique<http::Client>(
          http::ClientOptions{.user_agent = "fleetletctl",
                              .unix_socket = socket_,
                              .connect_timeout = std::chrono::seconds(5),
                              .stall_timeout = std::chrono::seconds(60)})) {}
ApiClient::~ApiClient() = default;
ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;

Result<Json> ApiClient::call(std::string_view method, std::string_view path, std::string body) {
  http::ClientRequest request;
  request.method = std::string(method);
  request.url = fmt::format("{}{}", kBase, path);
  request.body = std::move(body);
  request.follow_redirects = false;
  if (!request.body.empty()) request.headers.add("Content-Type", "application/yaml");
  auto response = client_->send(request);
  if (!response) return std::unexpected(unreachable(socket_, response.error()));
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(serverError(*response));
  }
  if (response->body.empty()) return Json::object();
  auto json = parseJson(response->body, fmt::format("{} {}", method, path));
  if (!json) return std::unexpected(malformed(json.error()));
  return json;
}

Result<Json> ApiClient::getJson(std::string_view path) { return call("GET", path); }

Result<std::string> ApiClient::screenshot(std::string_view app) {
  http::ClientRequest request;
  request.url = fmt::format("{}/v1/screenshot", kBase);
  if (!app.empty()) request.url += "?app=" + escapePathSegment(app);
  auto response = client_->send(request);
  if (!response) return std::unexpected(unreachable(socket_, response.error()));
  if (response->status != 200) return std::unexpected(serverError(*response));
  return std::move(response->body);
}

Status ApiClient::show(std::string_view app) {
  return discardValue(call("POST", fmt::format("/v1/apps/{}/show", escapePathSegment(app))));
}

Result<core::ApplyResult> ApiClient::apply(std::string_view manifest_text,
                                           std::string_view source) {
  std::string path = "/v1/apply";
  if (!source.empty()) path += "?source=" + escapePathSegment(source);
  FLEETLET_ASSIGN_OR_RETURN(auto json, call("POST", path, std::string(manifest_text)));
  auto result = api::applyResultFromJson(json, "apply");
  if (!result) return std::unexpected(malformed(result.error()));
  return result;
}

Result<std::vector<core::AppStatus>> ApiClient::apps() {
  FLEETLET_ASSIGN_OR_RETURN(auto json, call("GET", "/v1/apps"));
  auto list = requireArray(json, "apps", "body");
  if (!list) return std::unexpected(malformed(list.error()));
  std::vector<core::AppStatus> apps;
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto app = api::appStatusFromJson((**list)[i], fmt::format("apps[{}]", i));
    if (!app) return std::unexpected(malformed(app.error()));
    apps.push_back(std::move(*app));
  }
  return apps;
}

Result<core::AppDetail> ApiClient::describe(std::string_view app) {
  FLEETLET_ASSIGN_OR_RETURN(auto json, call("GET", "/v1/apps/" + escapePathSegment(app)));
  auto detail = api::appDetailFromJson(json, "app");
  if (!detail) return std::unexpected(malformed(detail.error()));
  return detail;
}

Status ApiClient::restart(std::string_view app) {
  FLEETLET_ASSIGN_OR_RETURN(auto json,
                            call("POST", "/v1/apps/" + escapePathSegment(app) + "/restart"));
  (void)json;
  return {};
}

Result<core::NodeStatus> ApiClient::status() {
  FLEETLET_ASSIGN_OR_RETURN(auto json, call("GET", "/v1/status"));
  auto status = api::nodeStatusFromJson(json, "status");
  if (!status) return std::unexpected(malformed(status.error()));
  return status;
}

Status ApiClient::streamLines(std::string_view path, bool follow,
                              const std::function<Result<bool>(const Json&)>& on_line) {
  // A follower may see nothing for hours: only a long stall timeout lets it wait.
  http::Client follower(http::ClientOptions{.user_agent = "fleetletctl",
                                            .unix_socket = socket_,
                                            .connect_timeout = std::chrono::seconds(5),
                                            .stall_timeout = std::chrono::hours(24 * 365)});
  http::Client& client = follow ? follower : *client_;
  http::ClientRequest request;
  request.url = fmt::format("{}{}", kBase, path);
  request.follow_redirects = false;
  std::string buffer;
  std::optional<Error> failure;
  bool stopped = false;
  http::BodySink sink = [&](std::string_view chunk) {
    buffer.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer.data() + start, nl - start);
      if (line.empty()) continue;
      auto json = parseJson(line, "line");
      if (!json) {
        failure = malformed(json.error());
        return false;
      }
      auto more = on_line(*json);
      if (!more) {
        failure = more.error();
        return false;
      }
      if (!*more) {
        stopped = true;
        return false;
      }
    }
    buffer.erase(0, start);
    return true;
  };
  auto response = client.stream(request, sink);
  if (failure) return std::unexpected(*failure);
  if (stopped) return {};
  if (!response) return std::unexpected(unreachable(socket_, response.error()));
  if (response->status < 200 || response->status >= 300) {
    return std::unexpected(serverError(*response));
  }
  return {};
}

Status ApiClient::events(int64_t after, bool follow,
                         const std::function<bool(const core::NodeEvent&)>& on_event) {
  bool stopped = false;
  size_t received = 0;
  auto on_line = [&](const Json& j) -> Result<bool> {
    auto event = api::nodeEventFromJson(j, "event");
    if (!event) return std::unexpected(malformed(event.error()));
    after = event->seq;
    ++received;
    stopped = !on_event(*event);
    return !stopped;
  };
  if (follow) {
    return streamLines(fmt::format("/v1/events?after={}&follow=true", after), true, on_line);
  }
  // One answer holds at most the server's limit: page until an answer is empty.
  do {
    received = 0;
    FLEETLET_RETURN_IF_ERROR(
        streamLines(fmt::format("/v1/events?after={}", after), false, on_line));
  } while (received > 0 && !stopped);
  return {};
}

namespace {

std::string rangeQuery(const ApiClient::Range& range) {
  std::string out;
  if (!range.since.empty()) out += "&since=" + range.since;
  if (!range.until.empty()) out += "&until=" + range.until;
  return out;
}

}  // namespace

Status ApiClient::nodeLogs(std::optional<std::size_t> tail, const Range& range,
                           const std::function<bool(const logs::LogEntry&)>& on_line) {
  std::string path = "/v1/node/logs?follow=false" + rangeQuery(range);
  if (tail) path += fmt::format("&tail={}", *tail);
  return streamLines(path, false, [&](const Json& j) -> Result<bool> {
    auto line = api::logEntryFromJson(j, "line");
    if (!line) return std::unexpected(malformed(line.error()));
    return on_line(*line);
  });
}

Status ApiClient::logs(std::string_view app, std::optional<std::size_t> tail, bool follow,
                       const std::function<bool(const logs::LogEntry&)>& on_line,
                       const Range& range) {
  std::string path =
      fmt::format("/v1/apps/{}/logs?follow={}", escapePathSegment(app), follow ? "true" : "false");
  if (tail) path += fmt::format("&tail={}", *tail);
  path += rangeQuery(range);
  return streamLines(path, follow, [&](const Json& j) -> Result<bool> {
    auto line = api::logEntryFromJson(j, "line");
    if (!line) return std::unexpected(malformed(line.error()));
    return on_line(*line);
  });
}

}  // namespace fleetlet::cli
