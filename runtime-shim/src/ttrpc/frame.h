#pragma once
// ttrpc framing (containerd/ttrpc PROTOCOL.md). Every message is a 10-byte header followed by
// `length` bytes of protobuf:
//
//   u32 big-endian length | u32 big-endian stream id | u8 type | u8 flags
//
// Clients open streams with odd ids; a request (type 1) carries a wire::Request and its
// answer (type 2, same stream id) a wire::Response. A message longer than kMaxMessageSize is
// refused with RESOURCE_EXHAUSTED on its stream and its bytes skipped; the connection lives on.
//
// Pure logic, no I/O: FrameDecoder takes whatever bytes the socket gave and hands out whole
// frames. Not thread-safe; one decoder per connection.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet::ttrpc {

inline constexpr std::size_t kHeaderSize = 10;
inline constexpr std::uint32_t kMaxMessageSize = 4u << 20;
// How much one recv() on a ttrpc socket asks for.
inline constexpr std::size_t kReadChunk = std::size_t{64} * 1024;

enum class MessageType : std::uint8_t { kRequest = 1, kResponse = 2 };

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;

  bool operator==(const FrameHeader&) const = default;
};

std::array<char, kHeaderSize> encodeHeader(const FrameHeader& header);
FrameHeader decodeHeader(std::string_view bytes);  // bytes.size() >= kHeaderSize

// Header plus payload, ready to write. Fails with kResourceExhausted when the payload exceeds
// kMaxMessageSize (nothing may be sent then).
Result<std::string> encodeFrame(std::uint32_t stream_id, MessageType type,
                                std::string_view payload);

struct Frame {
  FrameHeader header;
  std::string payload;
  // The header announced more than kMaxMessageSize bytes: payload is empty and the decoder
  // skips the announced bytes as they arrive. Answer the stream with RESOURCE_EXHAUSTED.
  bool oversized = false;
};

class FrameDecoder {
 public:
  // Appends bytes received from the peer. Never fails: any byte sequence is a frame stream.
  void feed(std::string_view bytes);
  // The next whole frame, or nullopt until more bytes arrive. Buffers at most one frame of
  // kMaxMessageSize plus a header.
  std::optional<Frame> next();
  // Bytes held that do not form a whole frame yet (for tests and limits).
  std::size_t buffered() const { return buffer_.size() - offset_; }

 private:
  std::string buffer_;
  std::size_t offset_ = 0;      // start of unconsumed bytes in buffer_
  std::uint64_t skipping_ = 0;  // bytes of an oversized frame still to drop
};

// gRPC status codes, as ttrpc carries them in wire::Status.code (an int32 on the wire).
enum class StatusCode : std::int32_t {  // NOLINT(performance-enum-size)
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
};

// A failed call: what the server put in wire::Status, or kUnavailable when the connection
// failed before an answer came.
struct RpcStatus {
  StatusCode code = StatusCode::kUnknown;
  std::string message;

  // fleetlet's error codes, one table each way (kUnimplemented and kPermissionDenied become
  // kFailedPrecondition, kDeadlineExceeded kUnavailable, the rest kInternal).
  static RpcStatus fromError(const Error& error);
  Error toError() const;
};

template <typename T>
using RpcResult = std::expected<T, RpcStatus>;

}  // namespace fleetlet::ttrpc
