#include "ttrpc/frame.h"

#include <algorithm>

namespace fleetlet::ttrpc {
namespace {

void putU32(char* out, std::uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

// The big-endian u32 at the start of `in` (at least 4 bytes).
std::uint32_t getU32(std::string_view in) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

std::array<char, kHeaderSize> encodeHeader(const FrameHeader& header) {
  std::array<char, kHeaderSize> out{};
  putU32(out.data(), header.length);
  putU32(out.data() + 4, header.stream_id);
  out[8] = static_cast<char>(header.type);
  out[9] = static_cast<char>(header.flags);
  return out;
}

FrameHeader decodeHeader(std::string_view bytes) {
  return FrameHeader{
      .length = getU32(bytes),
      .stream_id = getU32(bytes.substr(4)),
      .type = static_cast<std::uint8_t>(bytes[8]),
      .flags = static_cast<std::uint8_t>(bytes[9]),
  };
}

Result<std::string> encodeFrame(std::uint32_t stream_id, MessageType type,
                                std::string_view payload) {
  if (payload.size() > kMaxMessageSize) {
    return fail(ErrorCode::kResourceExhausted,
                "ttrpc message of {} bytes exceeds the maximum of {} bytes", payload.size(),
                kMaxMessageSize);
  }
  auto header = encodeHeader({.length = static_cast<std::uint32_t>(payload.size()),
                              .stream_id = stream_id,
                              .type = static_cast<std::uint8_t>(type)});
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out.append(header.data(), header.size());
  out.append(payload);
  return out;
}

void FrameDecoder::feed(std::string_view bytes) {
  if (skipping_ > 0) {
    auto dropped = std::min<std::uint64_t>(skipping_, bytes.size());
    skipping_ -= dropped;
    bytes.remove_prefix(dropped);
  }
  if (bytes.empty()) return;
  // Compact before growing so the buffer never holds consumed frames.
  if (offset_ > 0) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameDecoder::next() {
  if (skipping_ > 0 || buffered() < kHeaderSize) return std::nullopt;
  std::string_view rest(buffer_.data() + offset_, buffered());
  FrameHeader header = decodeHeader(rest);
  if (header.length > kMaxMessageSize) {
    offset_ += kHeaderSize;
    // Drop what is already here, then the remainder in feed().
    auto here = std::min<std::uint64_t>(header.length, buffered());
    offset_ += here;
    skipping_ = header.length - here;
    return Frame{.header = header, .payload = {}, .oversized = true};
  }
  if (rest.size() - kHeaderSize < header.length) return std::nullopt;
  Frame frame{.header = header, .payload = std::string(rest.substr(kHeaderSize, header.length))};
  offset_ += kHeaderSize + header.length;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  return frame;
}

RpcStatus RpcStatus::fromError(const Error& error) {
  StatusCode code = StatusCode::kInternal;
  switch (error.code()) {
    case ErrorCode::kNotFound:
      code = StatusCode::kNotFound;
      break;
    case ErrorCode::kInvalidArgument:
      code = StatusCode::kInvalidArgument;
      break;
    case ErrorCode::kAlreadyExists:
      code = StatusCode::kAlreadyExists;
      break;
    case ErrorCode::kUnavailable:
      code = StatusCode::kUnavailable;
      break;
    case ErrorCode::kFailedPrecondition:
      code = StatusCode::kFailedPrecondition;
      break;
    case ErrorCode::kResourceExhausted:
      code = StatusCode::kResourceExhausted;
      break;
    case ErrorCode::kInternal:
      code = StatusCode::kInternal;
      break;
  }
  return RpcStatus{code, error.message()};
}

Error RpcStatus::toError() const {
  ErrorCode out = ErrorCode::kInternal;
  switch (code) {
    case StatusCode::kNotFound:
      out = ErrorCode::kNotFound;
      break;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      out = ErrorCode::kInvalidArgument;
      break;
    case StatusCode::kAlreadyExists:
      out = ErrorCode::kAlreadyExists;
      break;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kCancelled:
      out = ErrorCode::kUnavailable;
      break;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnimplemented:
    case StatusCode::kPermissionDenied:
      out = ErrorCode::kFailedPrecondition;
      break;
    case StatusCode::kResourceExhausted:
      out = ErrorCode::kResourceExhausted;
      break;
    default:
      out = ErrorCode::kInternal;
      break;
  }
  return Error(out, message);
}

}  // namespace fleetlet::ttrpc
