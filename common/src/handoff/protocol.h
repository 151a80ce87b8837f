#pragma once
// The socket-handoff wire protocol (docs/socket-handoff.md): the agent hands listening sockets
// to a node service over an AF_UNIX SOCK_SEQPACKET connection. One datagram is one message: a
// small JSON object plus, for "add", exactly one fd in an SCM_RIGHTS control message.
//
//   {"v":1,"op":"add","app":"camera","listener":"events"}     + 1 fd
//   {"v":1,"op":"remove","app":"camera","listener":"events"}  (listener optional: all of app)
//   {"v":1,"op":"sync_begin"}  ...adds...  {"v":1,"op":"sync_end"}
//
// Concurrency: pure functions; sendMessage()/receiveMessage() may be called from any thread,
// one caller per socket at a time.
//
// Fd ownership: a decoded Message owns its fd (UniqueFd). receiveMessage() closes every fd it
// received when it fails, so a malformed message never leaks a descriptor.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::handoff {

inline constexpr int kProtocolVersion = 1;
// Largest JSON body; a longer datagram is rejected as truncated.
inline constexpr std::size_t kMaxMessageBytes = 1024;
// Fds one datagram may carry before the receiver reports MSG_CTRUNC (the kernel then closes
// the ones that did not fit). A valid message carries at most one.
inline constexpr std::size_t kMaxReceivedFds = 16;
// Longest app or listener name.
inline constexpr std::size_t kMaxNameLength = 64;
// The app name fleetletd hands its own listeners under (e.g. the console service's trusted
// ingest listener, docs/logs.md "Shipping"). No manifest app can have it (app names are
// lower-case letters, digits and '-'), so it is never an app's identity.
inline constexpr std::string_view kNodeApp = "fleetlet.node";

enum class Op : std::uint8_t { kAdd, kRemove, kSyncBegin, kSyncEnd };

// "add", "remove", "sync_begin", "sync_end".
std::string_view toString(Op op);

struct Message {
  Op op = Op::kSyncBegin;
  // add, remove: the app the listener belongs to (its identity for the service).
  std::string app;
  // add: which of the service's listeners this is ("events", "console", "blobs").
  // remove: that one listener, or empty for every listener of `app`.
  std::string listener;
  // add: the listening socket (owned). Invalid for every other op.
  UniqueFd fd;

  static Message add(std::string app, std::string listener, UniqueFd fd);
  static Message remove(std::string app, std::string listener = "");
  static Message syncBegin();
  static Message syncEnd();
};

// Names (apps, listeners): 1..kMaxNameLength characters of [A-Za-z0-9._-], starting with a
// letter or digit. Fails with kInvalidArgument naming `what` and the value.
Status validateName(std::string_view what, std::string_view name);

// The JSON body of `message` (its fd travels separately). Fails with kInvalidArgument when a
// name is invalid or the fd count does not match the op (add needs a valid fd).
Result<std::string> encodeMessage(const Message& message);

// Decodes and validates a body that arrived with `fd_count` fds. The returned Message has no
// fd; the caller attaches it. Fails with kInvalidArgument naming the problem: malformed JSON,
// a non-object, wrong version, unknown op, unknown or mistyped field, invalid name, or an fd
// count other than 1 for add and 0 for the rest.
Result<Message> decodeMessage(std::string_view body, std::size_t fd_count);

// Sends one message (and its fd) on a connected SOCK_SEQPACKET socket with MSG_NOSIGNAL.
// Blocks while the peer's queue is full, up to the socket's SO_SNDTIMEO. Fails with
// kInvalidArgument for an invalid message, kUnavailable (with the errno) when the peer is gone
// (EPIPE, ECONNRESET, ENOTCONN) or the send timed out (EAGAIN), the errno otherwise. The
// caller keeps its fd: the peer gets a new descriptor for the same open socket.
Status sendMessage(int socket, const Message& message);

// Receives one message without blocking (MSG_DONTWAIT, MSG_CMSG_CLOEXEC). Returns nullopt
// when the peer closed the connection. Fails with kUnavailable and sysErrno() EAGAIN when no
// message is queued, kInvalidArgument when the message is malformed (truncated body or control
// data, unexpected control message, or anything decodeMessage() rejects), the errno
// otherwise. On failure every received fd has been closed.
Result<std::optional<Message>> receiveMessage(int socket);

}  // namespace fleetlet::handoff
