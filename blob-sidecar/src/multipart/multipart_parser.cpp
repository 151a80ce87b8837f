#include "multipart/multipart_parser.h"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

namespace fleetlet::multipart {
namespace {

// Longest transport padding (spaces/tabs) accepted after a boundary.
constexpr std::size_t kMaxBoundaryPadding = 64;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isBoundaryChar(char c) {
  // RFC 2046 bchars.
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// Parameters of a header value such as `form-data; name="a"; filename="b.jpg"`: the first
// token, then name → value pairs (names lowercased, quoted values unescaped).
struct HeaderValue {
  std::string token;
  std::vector<std::pair<std::string, std::string>> params;
};

Result<HeaderValue> parseHeaderValue(std::string_view value, std::string_view what) {
  HeaderValue out;
  std::size_t i = value.find(';');
  out.token = std::string(trim(value.substr(0, i)));
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    if (i >= value.size()) break;
    std::size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) {
      return fail(ErrorCode::kInvalidArgument, "{}: parameter without '=' in \"{}\"", what, value);
    }
    std::string name(trim(value.substr(i, eq - i)));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    i = eq + 1;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    std::string param;
    if (i < value.size() && value[i] == '"') {
      ++i;
      bool closed = false;
      while (i < value.size()) {
        char c = value[i++];
        if (c == '\\' && i < value.size()) {
          param += value[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          param += c;
        }
      }
      if (!closed) {
        return fail(ErrorCode::kInvalidArgument, "{}: unterminated quoted parameter {}", what,
                    name);
      }
      i = value.find(';', i);
    } else {
      std::size_t end = value.find(';', i);
      param = std::string(trim(value.substr(i, end == std::string_view::npos ? end : end - i)));
      i = end;
    }
    out.params.emplace_back(std::move(name), std::move(param));
  }
  return out;
}

const std::string* findParam(const HeaderValue& value, std::string_view name) {
  for (const auto& [key, param] : value.params) {
    if (key == name) return &param;
  }
  return nullptr;
}

}  // namespace

Result<std::string> boundaryFromContentType(std::string_view content_type) {
  if (content_type.empty()) {
    return fail(ErrorCode::kInvalidArgument,
                "Content-Type is missing; expected multipart/form-data with a boundary");
  }
  auto parsed = parseHeaderValue(content_type, "Content-Type");
  if (!parsed) return std::unexpected(parsed.error());
  if (!iequals(parsed->token, "multipart/form-data")) {
    return fail(ErrorCode::kInvalidArgument,
                "Content-Type is \"{}\"; expected multipart/form-data with a boundary",
                parsed->token);
  }
  const std::string* boundary = findParam(*parsed, "boundary");
  if (!boundary) {
    return fail(ErrorCode::kInvalidArgument,
                "Content-Type multipart/form-data has no boundary parameter");
  }
  if (boundary->empty() || boundary->size() > 70) {
    return fail(ErrorCode::kInvalidArgument,
                "multipart boundary must have 1 to 70 characters, has {}", boundary->size());
  }
  if (!std::all_of(boundary->begin(), boundary->end(), isBoundaryChar) || boundary->back() == ' ') {
    return fail(ErrorCode::kInvalidArgument, "multipart boundary \"{}\" has invalid characters",
                *boundary);
  }
  return *boundary;
}

MultipartParser::MultipartParser(const std::string& boundary, PartSink& sink, Limits limits)
    : delimiter_("\r\n--" + boundary), sink_(sink), limits_(limits) {
  // The body may start with the boundary itself: behave as if a CRLF preceded it.
  held_ = "\r\n";
}

Status MultipartParser::setFailed(Error error) {
  state_ = State::kFailed;
  failure_ = error;
  return std::unexpected(std::move(error));
}

Status MultipartParser::feed(std::string_view data) {
  while (!data.empty()) {
    Status status;
    switch (state_) {
      case State::kFailed:
        return std::unexpected(failure());
      case State::kDone:
        return Status();  // the epilogue is ignored
      case State::kPreamble:
      case State::kBody:
        status = scanBody(data);
        break;
      case State::kAfterDelimiter:
        status = afterDelimiter(data);
        break;
      case State::kHeaders:
        status = headers(data);
        break;
    }
    if (!status) {
      if (state_ == State::kFailed) return status;
      return setFailed(status.error());
    }
  }
  if (state_ == State::kFailed) return std::unexpected(failure());
  return Status();
}

Status MultipartParser::finish() {
  switch (state_) {
    case State::kDone:
      return Status();
    case State::kFailed:
      return std::unexpected(failure());
    case State::kPreamble:
      return setFailed(Error(ErrorCode::kInvalidArgument,
                             "multipart: the body contains no boundary line (wrong boundary?)"));
    case State::kBody:
      return setFailed(Error(ErrorCode::kInvalidArgument,
                             fmt::format("multipart: the body ended inside part {} before the "
                                         "closing boundary",
                                         parts_)));
    case State::kHeaders:
      return setFailed(
          Error(ErrorCode::kInvalidArgument,
                fmt::format("multipart: the body ended inside the headers of part {}", parts_)));
    case State::kAfterDelimiter:
      break;
  }
  return setFailed(Error(ErrorCode::kInvalidArgument,
                         "multipart: the body ended after a boundary without the closing \"--\""));
}

Status MultipartParser::emit(std::string_view data) {
  if (state_ != State::kBody || data.empty()) return Status();  // preamble bytes are dropped
  return sink_.onPartData(data);
}

Status MultipartParser::scanBody(std::string_view& data) {
  const std::string_view delimiter(delimiter_);
  while (!data.empty()) {
    if (!held_.empty()) {
      std::size_t have = held_.size();
      std::size_t take = std::min(delimiter.size() - have, data.size());
      if (data.substr(0, take) == delimiter.substr(have, take)) {
        held_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (held_.size() == delimiter.size()) break;  // delimiter complete
        continue;
      }
      // Not a delimiter after all: release held bytes up to the next possible start.
      std::size_t p = 1;
      while (p < have && !delimiter.starts_with(std::string_view(held_).substr(p))) ++p;
      std::string released = held_.substr(0, p);
      held_.erase(0, p);
      FLEETLET_RETURN_IF_ERROR(emit(released));
      continue;
    }
    std::size_t pos = data.find(delimiter);
    if (pos != std::string_view::npos) {
      FLEETLET_RETURN_IF_ERROR(emit(data.substr(0, pos)));
      data.remove_prefix(pos + delimiter.size());
      held_ = delimiter_;
      break;
    }
    // Hold back the longest tail that could begin a delimiter.
    std::size_t keep = 0;
    std::size_t from =
        data.size() > delimiter.size() - 1 ? data.size() - (delimiter.size() - 1) : 0;
    for (std::size_t i = data.find('\r', from); i != std::string_view::npos;
         i = data.find('\r', i + 1)) {
      if (delimiter.starts_with(data.substr(i))) {
        keep = data.size() - i;
        break;
      }
    }
    FLEETLET_RETURN_IF_ERROR(emit(data.substr(0, data.size() - keep)));
    held_ = std::string(data.substr(data.size() - keep));
    data = {};
    return Status();
  }
  if (held_.size() == delimiter.size()) {
    held_.clear();
    if (state_ == State::kBody) FLEETLET_RETURN_IF_ERROR(sink_.onPartEnd());
    state_ = State::kAfterDelimiter;
    line_.clear();
  }
  return Status();
}

Status MultipartParser::afterDelimiter(std::string_view& data) {
  while (!data.empty()) {
    line_ += data.front();
    data.remove_prefix(1);
    if (line_ == "--") {
      state_ = State::kDone;
      return Status();
    }
    if (line_.size() >= 2 && line_.ends_with("\r\n")) {
      std::string_view padding = std::string_view(line_).substr(0, line_.size() - 2);
      if (!trim(padding).empty()) {
        return setFailed(Error(ErrorCode::kInvalidArgument,
                               "multipart: unexpected characters after a boundary"));
      }
      if (parts_ >= limits_.max_parts) {
        return setFailed(Error(ErrorCode::kInvalidArgument,
                               fmt::format("multipart: more than {} parts", limits_.max_parts)));
      }
      ++parts_;
      header_block_.clear();
      state_ = State::kHeaders;
      return Status();
    }
    bool padding_only =
        std::all_of(line_.begin(), line_.end() - 1, [](char c) { return c == ' ' || c == '\t'; });
    bool may_continue =
        (line_ == "-") ||
        (padding_only && (line_.back() == ' ' || line_.back() == '\t' || line_.back() == '\r'));
    if (!may_continue || line_.size() > kMaxBoundaryPadding) {
      return setFailed(Error(ErrorCode::kInvalidArgument,
                             "multipart: a boundary line must end with CRLF or \"--\""));
    }
  }
  return Status();
}

Status MultipartParser::headers(std::string_view& data) {
  // A header block (with its final CRLF CRLF) may span at most max_header_bytes + 2 bytes;
  // nothing beyond that is buffered. The outcome does not depend on how input is chunked.
  const std::size_t cap = limits_.max_header_bytes + 2;
  std::size_t old = header_block_.size();
  std::size_t take = std::min(cap - std::min(old, cap), data.size());
  header_block_.append(data.substr(0, take));
  std::size_t end = std::string::npos;
  if (header_block_.starts_with("\r\n")) {
    end = 2;
  } else {
    std::size_t pos = header_block_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (pos != std::string::npos) end = pos + 4;
  }
  if (end == std::string::npos) {
    if (header_block_.size() >= cap) {
      return setFailed(Error(ErrorCode::kInvalidArgument,
                             fmt::format("multipart: the headers of part {} exceed {} bytes",
                                         parts_, limits_.max_header_bytes)));
    }
    data.remove_prefix(take);
    return Status();
  }
  data.remove_prefix(end - old);
  header_block_.resize(end);
  auto parsed = parseHeaders(header_block_);
  if (!parsed) return setFailed(parsed.error());
  state_ = State::kBody;
  held_.clear();
  return sink_.onPartBegin(*parsed);
}

Result<PartHeaders> MultipartParser::parseHeaders(std::string_view block) const {
  PartHeaders out;
  out.index = parts_;
  bool has_disposition = false;
  while (!block.empty()) {
    std::size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol == std::string_view::npos ? block.size() : eol + 2);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return fleetlet::fail(ErrorCode::kInvalidArgument,
                            "multipart: part {} uses obsolete header line folding", parts_);
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fleetlet::fail(ErrorCode::kInvalidArgument,
                            "multipart: part {} has a malformed header line", parts_);
    }
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Disposition")) {
      auto parsed =
          parseHeaderValue(value, fmt::format("multipart: part {} Content-Disposition", parts_));
      if (!parsed) return std::unexpected(parsed.error());
      if (!iequals(parsed->token, "form-data")) {
        return fleetlet::fail(
            ErrorCode::kInvalidArgument,
            "multipart: part {} has Content-Disposition \"{}\", expected form-data", parts_,
            parsed->token);
      }
      const std::string* part_name = findParam(*parsed, "name");
      if (!part_name || part_name->empty()) {
        return fleetlet::fail(ErrorCode::kInvalidArgument,
                              "multipart: part {} has no name in its Content-Disposition", parts_);
      }
      out.name = *part_name;
      if (const std::string* filename = findParam(*parsed, "filename")) out.filename = *filename;
      has_disposition = true;
    } else if (iequals(name, "Content-Type")) {
      out.content_type = std::string(value);
    }
  }
  if (!has_disposition) {
    return fleetlet::fail(ErrorCode::kInvalidArgument,
                          "multipart: part {} has no Content-Disposition", parts_);
  }
  return out;
}

}  // namespace fleetlet::multipart
