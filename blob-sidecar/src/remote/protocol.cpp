#include "remote/protocol.h"

#include <charconv>

#include "retention/retention_policy.h"

namespace fleetlet::remote {
namespace {

constexpr std::string_view kChunkMagic = "FLBLOB1 ";

bool isLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool isTokenChar(char c, bool underscore) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         (underscore && c == '_');
}

Status checkToken(std::string_view text, bool underscore, std::string_view what) {
  bool ok = !text.empty() && text.size() <= 64;
  for (char c : text) ok = ok && isTokenChar(c, underscore);
  if (!ok) {
    return fail(ErrorCode::kInvalidArgument, "{} '{}': 1 to 64 of letters, digits, '-'{}", what,
                text, underscore ? " and '_'" : "");
  }
  return Status();
}

// A decimal number of digits only (no sign, no spaces), as the encoders write it.
std::optional<uint64_t> parseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Splits off the text up to the first `sep` (the rest without it); nullopt without one.
std::optional<std::string_view> takeUntil(std::string_view& text, char sep) {
  std::size_t at = text.find(sep);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view head = text.substr(0, at);
  text.remove_prefix(at + 1);
  return head;
}

// A holder's message as it may go into our logs and answers: printable ASCII only, bounded.
std::string cleanMessage(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxErrorMessageBytes)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (text.size() > kMaxErrorMessageBytes) out += "...";
  return out;
}

Result<uint64_t> requireUnsigned(const Json& object, std::string_view key, std::string_view path) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_unsigned()) {
    return fail(ErrorCode::kInvalidArgument, "{}.{}: expected a non-negative integer", path, key);
  }
  return it->get<uint64_t>();
}

}  // namespace

Status checkSite(std::string_view site) { return checkToken(site, false, "site"); }

Status checkNode(std::string_view node) { return checkToken(node, true, "node"); }

bool isHandle(std::string_view text) { return text.size() == 32 && isLowerHex(text); }

std::string findSubject(std::string_view site) { return fmt::format("fl.{}.blobs.find", site); }

std::string getSubject(std::string_view site, std::string_view node) {
  return fmt::format("fl.{}.blobs.{}.get", site, node);
}

std::string encodeHolderAnswer(const HolderAnswer& answer) {
  return Json{{"node", answer.node}, {"metadata", store::toJson(answer.metadata)}}.dump();
}

Status checkHolderMetadata(const store::BlobMetadata& holder, const store::BlobMetadata& event) {
  const Json said = store::toJson(holder);
  const Json logged = store::toJson(event);
  for (const auto& [key, value] : logged.items()) {
    auto it = said.find(key);
    if (it == said.end() || *it != value) {
      return fail(ErrorCode::kInvalidArgument,
                  "the holder's metadata differs from the blob's metadata event in this node's "
                  "event log: {} is {} there, {} here",
                  key, it == said.end() ? std::string("missing") : it->dump(), value.dump());
    }
  }
  for (const auto& [key, value] : said.items()) {
    if (!logged.contains(key)) {
      return fail(ErrorCode::kInvalidArgument,
                  "the holder's metadata differs from the blob's metadata event in this node's "
                  "event log: {} is {} there, missing here",
                  key, value.dump());
    }
  }
  return {};
}

Result<store::BlobMetadata> parseBlobMetadata(const Json& value, std::string_view path) {
  if (!value.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", path,
                jsonTypeName(value));
  }
  store::BlobMetadata m;
  FLEETLET_ASSIGN_OR_RETURN(m.handle, requireString(value, "handle", path));
  if (!isHandle(m.handle)) {
    return fail(ErrorCode::kInvalidArgument, "{}.handle: \"{}\" is not 32 lowercase hex digits",
                path, cleanMessage(m.handle));
  }
  FLEETLET_ASSIGN_OR_RETURN(m.sha256, requireString(value, "sha256", path));
  if (m.sha256.size() != 64 || !isLowerHex(m.sha256)) {
    return fail(ErrorCode::kInvalidArgument, "{}.sha256: not 64 lowercase hex digits", path);
  }
  FLEETLET_ASSIGN_OR_RETURN(m.bytes, requireUnsigned(value, "bytes", path));
  if (m.bytes > uint64_t{1} << 62) {
    return fail(ErrorCode::kInvalidArgument, "{}.bytes: {} is too large", path, m.bytes);
  }
  FLEETLET_ASSIGN_OR_RETURN(m.semantics, requireString(value, "semantics", path));
  FLEETLET_ASSIGN_OR_RETURN(m.content_type, requireString(value, "contentType", path));
  FLEETLET_ASSIGN_OR_RETURN(m.created_on_micros, requireInt(value, "createdOn", path));
  FLEETLET_ASSIGN_OR_RETURN(m.source, requireString(value, "source", path));
  FLEETLET_ASSIGN_OR_RETURN(m.source_app, requireString(value, "sourceApp", path));
  FLEETLET_ASSIGN_OR_RETURN(m.filename, optionalString(value, "filename", path));
  FLEETLET_ASSIGN_OR_RETURN(const Json* policy, requireObject(value, "retentionPolicy", path));
  std::string policy_path = fmt::format("{}.retentionPolicy", path);
  FLEETLET_ASSIGN_OR_RETURN(m.retention,
                            retention::parseStoredRetentionPolicy(*policy, policy_path));
  return m;
}

Result<HolderAnswer> parseHolderAnswer(std::string_view body) {
  if (body.size() > kMaxHolderAnswerBytes) {
    return fail(ErrorCode::kInvalidArgument, "holder answer of {} bytes exceeds {}", body.size(),
                kMaxHolderAnswerBytes);
  }
  FLEETLET_ASSIGN_OR_RETURN(Json json, parseJson(body, "holder answer"));
  if (!json.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "holder answer: expected an object, got {}",
                jsonTypeName(json));
  }
  HolderAnswer answer;
  FLEETLET_ASSIGN_OR_RETURN(answer.node, requireString(json, "node", "holder answer"));
  if (auto valid = checkNode(answer.node); !valid) {
    return std::unexpected(valid.error().wrap("holder answer"));
  }
  FLEETLET_ASSIGN_OR_RETURN(const Json* metadata, requireObject(json, "metadata", "holder answer"));
  FLEETLET_ASSIGN_OR_RETURN(answer.metadata,
                            parseBlobMetadata(*metadata, "holder answer.metadata"));
  return answer;
}

std::string encodeChunkRequest(const ChunkRequest& request) {
  return fmt::format("{} {} {}", request.handle, request.offset, request.length);
}

Result<ChunkRequest> parseChunkRequest(std::string_view body) {
  auto malformed = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "chunk request \"{}\": expected \"<handle> <offset> <length>\"",
                cleanMessage(body.substr(0, 100)));
  };
  std::string_view rest = body;
  auto handle = takeUntil(rest, ' ');
  auto offset_text = handle ? takeUntil(rest, ' ') : std::nullopt;
  if (!offset_text) return malformed();
  auto offset = parseDecimal(*offset_text);
  auto length = parseDecimal(rest);
  if (!offset || !length || !isHandle(*handle)) return malformed();
  if (*length == 0) return fail(ErrorCode::kInvalidArgument, "chunk request: length 0");
  if (*offset > uint64_t{1} << 62 || *length > uint64_t{1} << 62) {
    return fail(ErrorCode::kInvalidArgument, "chunk request: offset or length too large");
  }
  return ChunkRequest{std::string(*handle), *offset, *length};
}

std::string chunkDataHead(uint64_t offset, uint64_t length) {
  return fmt::format("{}data {} {}\n", kChunkMagic, offset, length);
}

std::string chunkError(bool not_found, std::string_view message) {
  return fmt::format("{}error {} {}\n", kChunkMagic, not_found ? "not_found" : "failed",
                     cleanMessage(message));
}

Result<std::string_view> parseChunkReply(std::string_view body, const ChunkRequest& asked) {
  if (!body.starts_with(kChunkMagic)) {
    return fail(ErrorCode::kInvalidArgument, "chunk answer does not start with \"{}\"",
                kChunkMagic.substr(0, kChunkMagic.size() - 1));
  }
  std::string_view rest = body.substr(kChunkMagic.size());
  // The head is short; a body without a newline in its first KiB is no answer of ours.
  std::size_t newline = rest.substr(0, 1024).find('\n');
  if (newline == std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "chunk answer: no head line");
  }
  std::string_view head = rest.substr(0, newline);
  std::string_view data = rest.substr(newline + 1);
  auto kind = takeUntil(head, ' ');
  if (kind == "error") {
    std::string_view reason = head;
    std::string_view message;
    if (std::size_t space = head.find(' '); space != std::string_view::npos) {
      reason = head.substr(0, space);
      message = head.substr(space + 1);
    }
    if (reason != "not_found" && reason != "failed") {
      return fail(ErrorCode::kInvalidArgument, "chunk answer: unknown error kind \"{}\"",
                  cleanMessage(reason));
    }
    return fail(reason == "not_found" ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                "holder: {}", cleanMessage(message));
  }
  if (kind != "data") {
    return fail(ErrorCode::kInvalidArgument, "chunk answer: expected \"data\" or \"error\"");
  }
  auto offset_text = takeUntil(head, ' ');
  auto offset = offset_text ? parseDecimal(*offset_text) : std::nullopt;
  auto length = parseDecimal(head);
  if (!offset || !length) {
    return fail(ErrorCode::kInvalidArgument,
                "chunk answer: head is not \"data <offset> <length>\"");
  }
  if (*offset != asked.offset) {
    return fail(ErrorCode::kInvalidArgument, "chunk answer at offset {}, asked for {}", *offset,
                asked.offset);
  }
  if (*length == 0 || *length > asked.length) {
    return fail(ErrorCode::kInvalidArgument, "chunk answer of {} bytes, asked for 1 to {}", *length,
                asked.length);
  }
  if (data.size() != *length) {
    return fail(ErrorCode::kInvalidArgument, "chunk answer says {} bytes but carries {}", *length,
                data.size());
  }
  return data;
}

}  // namespace fleetlet::remote
