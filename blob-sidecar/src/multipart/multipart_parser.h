#pragma once
// An incremental multipart/form-data parser (RFC 7578 / RFC 2046): bytes are fed in chunks of
// any size as they arrive, and part headers and body pieces are handed to a PartSink at once,
// so a part of any size never sits in memory.
//
// Concurrency: a MultipartParser is single-threaded state; use it from one thread at a time.
// It owns no resources other than small bounded buffers (headers, a delimiter's worth of
// held-back body bytes).
//
// Bounds: a part's header block is at most Limits::max_header_bytes, the number of parts at
// most Limits::max_parts, and the padding after a boundary line a few bytes. The preamble and
// epilogue are skipped without being stored.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet::multipart {

struct PartHeaders {
  // 1-based position of the part in the body.
  int index = 0;
  // Content-Disposition's name parameter (never empty: a part without one is an error).
  std::string name;
  // Content-Disposition's filename parameter, when present.
  std::optional<std::string> filename;
  // The part's Content-Type, "" when absent.
  std::string content_type;
};

// Receives what the parser finds. A failing call stops the parser: feed() returns that error
// unchanged and every later feed() fails too.
class PartSink {
 public:
  virtual ~PartSink() = default;
  virtual Status onPartBegin(const PartHeaders& headers) = 0;
  // A piece of the current part's body; pieces arrive in order and may be empty-free but of
  // any size. The view is valid only during the call.
  virtual Status onPartData(std::string_view data) = 0;
  virtual Status onPartEnd() = 0;
};

struct Limits {
  std::size_t max_header_bytes = std::size_t{16} * 1024;
  int max_parts = 16;
};

// Extracts the boundary of a `multipart/form-data; boundary=...` Content-Type (quoted or
// not). Fails with kInvalidArgument naming the problem: another media type, no boundary, or a
// boundary that is empty, longer than 70 characters or has characters RFC 2046 forbids.
Result<std::string> boundaryFromContentType(std::string_view content_type);

class MultipartParser {
 public:
  MultipartParser(const std::string& boundary, PartSink& sink, Limits limits = {});

  // Parses the next bytes of the body. Fails with kInvalidArgument ("multipart: ...") when the
  // body is malformed, or with the sink's error. After a failure the parser stays failed.
  Status feed(std::string_view data);
  // Call at the end of the body: fails with kInvalidArgument when the closing boundary has not
  // been seen (the body was cut short), or with the earlier failure.
  Status finish();
  // Whether the closing boundary has been seen.
  bool done() const { return state_ == State::kDone; }
  // Number of parts begun so far.
  int parts() const { return parts_; }

 private:
  enum class State : std::uint8_t { kPreamble, kAfterDelimiter, kHeaders, kBody, kDone, kFailed };

  Status setFailed(Error error);
  // Scans body (or preamble) bytes for the delimiter; consumes from `data`.
  Status scanBody(std::string_view& data);
  Status emit(std::string_view data);
  Status afterDelimiter(std::string_view& data);
  Status headers(std::string_view& data);
  Result<PartHeaders> parseHeaders(std::string_view block) const;

  // "\r\n--" + boundary.
  std::string delimiter_;
  PartSink& sink_;
  Limits limits_;
  State state_ = State::kPreamble;
  // A proper prefix of delimiter_ seen at the end of the input so far (body or preamble).
  std::string held_;
  // Bytes after a delimiter (transport padding, CRLF or "--").
  std::string line_;
  // The header block of the part being read.
  std::string header_block_;
  int parts_ = 0;
  std::optional<Error> failure_;  // set iff state_ is kFailed
  Error failure() const {
    return failure_.value_or(Error(ErrorCode::kInternal, "multipart parser failed"));
  }
};

}  // namespace fleetlet::multipart
