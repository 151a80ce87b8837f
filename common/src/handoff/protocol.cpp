#include "handoff/protocol.h"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "json/json.h"

namespace fleetlet::handoff {
namespace {

constexpr std::string_view kWhat = "handoff message";

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::optional<Op> parseOp(std::string_view text) {
  for (Op op : {Op::kAdd, Op::kRemove, Op::kSyncBegin, Op::kSyncEnd}) {
    if (text == toString(op)) return op;
  }
  return std::nullopt;
}

std::size_t expectedFds(Op op) { return op == Op::kAdd ? 1 : 0; }

// Printable excerpt of an untrusted string for error messages.
std::string excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxNameLength + 1)) {
    out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
  }
  if (text.size() > kMaxNameLength + 1) out += "...";
  return out;
}

bool isPeerGone(int err) { return err == EPIPE || err == ECONNRESET || err == ENOTCONN; }

}  // namespace

std::string_view toString(Op op) {
  switch (op) {
    case Op::kAdd:
      return "add";
    case Op::kRemove:
      return "remove";
    case Op::kSyncBegin:
      return "sync_begin";
    case Op::kSyncEnd:
      return "sync_end";
  }
  return "unknown";
}

Message Message::add(std::string app, std::string listener, UniqueFd fd) {
  return Message{Op::kAdd, std::move(app), std::move(listener), std::move(fd)};
}
Message Message::remove(std::string app, std::string listener) {
  return Message{Op::kRemove, std::move(app), std::move(listener), UniqueFd()};
}
Message Message::syncBegin() { return Message{Op::kSyncBegin, "", "", UniqueFd()}; }
Message Message::syncEnd() { return Message{Op::kSyncEnd, "", "", UniqueFd()}; }

Status validateName(std::string_view what, std::string_view name) {
  if (name.empty()) return fail(ErrorCode::kInvalidArgument, "{} is empty", what);
  if (name.size() > kMaxNameLength) {
    return fail(ErrorCode::kInvalidArgument, "{} \"{}\" is longer than {} characters", what,
                excerpt(name), kMaxNameLength);
  }
  if (!isAlnum(name.front())) {
    return fail(ErrorCode::kInvalidArgument, "{} \"{}\" must start with a letter or digit", what,
                excerpt(name));
  }
  for (char c : name) {
    if (!isNameChar(c)) {
      return fail(ErrorCode::kInvalidArgument,
                  "{} \"{}\" may only contain letters, digits, '.', '_' and '-'", what,
                  excerpt(name));
    }
  }
  return {};
}

Result<std::string> encodeMessage(const Message& message) {
  Json body = Json::object();
  body["v"] = kProtocolVersion;
  body["op"] = std::string(toString(message.op));
  switch (message.op) {
    case Op::kAdd:
      if (!message.fd) return fail(ErrorCode::kInvalidArgument, "add without a listener fd");
      FLEETLET_RETURN_IF_ERROR(validateName("app", message.app));
      FLEETLET_RETURN_IF_ERROR(validateName("listener", message.listener));
      body["app"] = message.app;
      body["listener"] = message.listener;
      break;
    case Op::kRemove:
      FLEETLET_RETURN_IF_ERROR(validateName("app", message.app));
      if (!message.listener.empty()) {
        FLEETLET_RETURN_IF_ERROR(validateName("listener", message.listener));
        body["listener"] = message.listener;
      }
      body["app"] = message.app;
      break;
    case Op::kSyncBegin:
    case Op::kSyncEnd:
      break;
  }
  if (message.op != Op::kAdd && message.fd) {
    return fail(ErrorCode::kInvalidArgument, "{} carries an fd", toString(message.op));
  }
  // Names are validated ASCII, so dump() cannot throw.
  return body.dump();
}

Result<Message> decodeMessage(std::string_view body, std::size_t fd_count) {
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseJson(body, kWhat));
  if (!json.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", kWhat,
                jsonTypeName(json));
  }
  FLEETLET_ASSIGN_OR_RETURN(int64_t version, requireInt(json, "v", kWhat));
  if (version != kProtocolVersion) {
    return fail(ErrorCode::kInvalidArgument, "{}: unsupported version {} (this side speaks {})",
                kWhat, version, kProtocolVersion);
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string op_text, requireString(json, "op", kWhat));
  std::optional<Op> op = parseOp(op_text);
  if (!op) {
    return fail(ErrorCode::kInvalidArgument, "{}.op: unknown op \"{}\"", kWhat, excerpt(op_text));
  }
  const bool named = *op == Op::kAdd || *op == Op::kRemove;
  for (const auto& [key, value] : json.items()) {
    bool known = key == "v" || key == "op" || (named && (key == "app" || key == "listener"));
    if (!known) {
      return fail(ErrorCode::kInvalidArgument, "{}: unknown field \"{}\" for op {}", kWhat,
                  excerpt(key), op_text);
    }
  }
  if (fd_count != expectedFds(*op)) {
    return fail(ErrorCode::kInvalidArgument, "{}: op {} carries {} fds, expected {}", kWhat,
                op_text, fd_count, expectedFds(*op));
  }

  Message message;
  message.op = *op;
  if (named) {
    FLEETLET_ASSIGN_OR_RETURN(message.app, requireString(json, "app", kWhat));
    FLEETLET_RETURN_IF_ERROR(validateName(fmt::format("{}.app", kWhat), message.app));
  }
  if (*op == Op::kAdd) {
    FLEETLET_ASSIGN_OR_RETURN(message.listener, requireString(json, "listener", kWhat));
  } else if (*op == Op::kRemove) {
    FLEETLET_ASSIGN_OR_RETURN(auto listener, optionalString(json, "listener", kWhat));
    message.listener = listener.value_or("");
  }
  if (*op == Op::kAdd || !message.listener.empty()) {
    FLEETLET_RETURN_IF_ERROR(validateName(fmt::format("{}.listener", kWhat), message.listener));
  }
  return message;
}

Status sendMessage(int socket, const Message& message) {
  FLEETLET_ASSIGN_OR_RETURN(std::string body, encodeMessage(message));
  iovec iov{body.data(), body.size()};
  msghdr header{};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  if (message.fd) {
    header.msg_control = control.data();
    header.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&header);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    int fd = message.fd.get();
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(fd));
  }
  ssize_t sent;
  do {
    sent = ::sendmsg(socket, &header, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    int err = errno;
    if (isPeerGone(err) || err == EAGAIN) {
      return std::unexpected(
          Error(ErrorCode::kUnavailable,
                fmt::format("send handoff {}: {}", toString(message.op), std::strerror(err)), err));
    }
    return failErrno(err, "send handoff {}", toString(message.op));
  }
  if (static_cast<std::size_t>(sent) != body.size()) {
    return fail(ErrorCode::kInternal, "send handoff {}: short send", toString(message.op));
  }
  return {};
}

Result<std::optional<Message>> receiveMessage(int socket) {
  std::array<char, kMaxMessageBytes> body{};
  iovec iov{body.data(), body.size()};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxReceivedFds)> control{};
  msghdr header{};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control.data();
  header.msg_controllen = control.size();
  ssize_t received;
  do {
    received = ::recvmsg(socket, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) {
    int err = errno;
    if (err == EAGAIN || isPeerGone(err)) {
      return std::unexpected(Error(ErrorCode::kUnavailable,
                                   fmt::format("receive handoff message: {}", std::strerror(err)),
                                   err));
    }
    return failErrno(err, "receive handoff message");
  }

  // Own every received fd before looking at anything else: they close on every return below.
  std::vector<UniqueFd> fds;
  bool unexpected_control = false;
  if (header.msg_controllen > 0) {
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&header); cmsg != nullptr;
         cmsg = CMSG_NXTHDR(&header, cmsg)) {
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
        std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(fd));
          fds.emplace_back(fd);
        }
      } else {
        unexpected_control = true;
      }
    }
  }
  if ((header.msg_flags & MSG_CTRUNC) != 0) {
    return fail(ErrorCode::kInvalidArgument,
                "handoff message: control data truncated (more than {} fds)", kMaxReceivedFds);
  }
  if ((header.msg_flags & MSG_TRUNC) != 0) {
    return fail(ErrorCode::kInvalidArgument, "handoff message: longer than {} bytes",
                kMaxMessageBytes);
  }
  if (unexpected_control) {
    return fail(ErrorCode::kInvalidArgument, "handoff message: unexpected control message");
  }
  if (received == 0 && fds.empty()) {
    // SOCK_SEQPACKET: a zero-length read without data is the peer's orderly shutdown.
    return std::nullopt;
  }
  FLEETLET_ASSIGN_OR_RETURN(
      Message message,
      decodeMessage(std::string_view(body.data(), static_cast<std::size_t>(received)), fds.size()));
  if (!fds.empty()) message.fd = std::move(fds.front());
  return message;
}

}  // namespace fleetlet::handoff
