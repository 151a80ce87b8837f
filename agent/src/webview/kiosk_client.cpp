#include "webview/kiosk_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "os/unique_fd.h"

namespace fleetlet::webview {
namespace {

ErrorCode codeOf(std::string_view code) {
  if (code == "ERR_NOT_FOUND") return ErrorCode::kNotFound;
  if (code == "ERR_BAD_REQUEST") return ErrorCode::kInvalidArgument;
  if (code == "ERR_ALREADY_EXISTS") return ErrorCode::kAlreadyExists;
  if (code == "ERR_FAILED_PRECONDITION") return ErrorCode::kFailedPrecondition;
  if (code == "ERR_RESOURCE_EXHAUSTED") return ErrorCode::kResourceExhausted;
  if (code == "ERR_UNAVAILABLE") return ErrorCode::kUnavailable;
  return ErrorCode::kInternal;
}

}  // namespace

Result<Json> KioskClient::call(const Json& request) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  auto left = [&] {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    return static_cast<int>(std::max<int64_t>(0, ms));
  };
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return failErrno(errno, "kiosk socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_.native().size() >= sizeof(addr.sun_path)) {
    return fail(ErrorCode::kInvalidArgument, "kiosk socket path {} is too long", socket_.string());
  }
  std::memcpy(addr.sun_path, socket_.c_str(), socket_.native().size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return fail(ErrorCode::kUnavailable, "kiosk {}: {}", socket_.string(), std::strerror(errno));
  }
  std::string out = request.dump() + "\n";
  size_t sent = 0;
  std::string in;
  while (in.find('\n') == std::string::npos) {
    pollfd p{.fd = fd.get(),
             .events = static_cast<short>(sent < out.size() ? POLLOUT : POLLIN),
             .revents = 0};
    int ready = ::poll(&p, 1, left());
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      return fail(ErrorCode::kUnavailable, "kiosk {}: no answer within {} ms", socket_.string(),
                  timeout_.count());
    }
    if (sent < out.size()) {
      ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) {
        return fail(ErrorCode::kUnavailable, "kiosk {}: {}", socket_.string(),
                    std::strerror(errno));
      }
      if (n > 0) sent += static_cast<size_t>(n);
      continue;
    }
    char buffer[65536];
    ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) {
      return fail(ErrorCode::kUnavailable, "kiosk {}: connection closed without an answer",
                  socket_.string());
    }
    in.append(buffer, static_cast<size_t>(n));
  }
  FLEETLET_ASSIGN_OR_RETURN(Json answer, parseJson(in, "kiosk answer"));
  if (!answer.is_object()) return fail(ErrorCode::kInternal, "kiosk answer is no object");
  if (!answer.value("ok", false)) {
    return std::unexpected(
        Error(codeOf(answer.value("code", "")), answer.value("error", "kiosk refused")));
  }
  return answer;
}

}  // namespace fleetlet::webview
