#include "oci/reference.h"

#include <cctype>

#include "oci/digest.h"

namespace fleetlet::oci {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool isWordChar(char c) { return isAlnum(c) || c == '_'; }

// One repository path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
Status checkPathComponent(std::string_view c) {
  if (c.empty()) return fail(ErrorCode::kInvalidArgument, "empty path component");
  for (char ch : c) {
    if (ch >= 'A' && ch <= 'Z') {
      return fail(ErrorCode::kInvalidArgument, "repository name must be lowercase");
    }
  }
  size_t i = 0;
  while (i < c.size()) {
    if (!isLowerAlnum(c[i])) {
      return fail(ErrorCode::kInvalidArgument,
                  "path component \"{}\" must start and end with [a-z0-9] and use only "
                  "[a-z0-9], '.', '_', '__' or '-' between",
                  c);
    }
    while (i < c.size() && isLowerAlnum(c[i])) ++i;
    if (i == c.size()) break;
    // A separator: ".", "_", "__" or one or more "-".
    size_t start = i;
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return fail(ErrorCode::kInvalidArgument, "invalid character '{}' in path component \"{}\"",
                  c[i], c);
    }
    if (i == c.size() || !isLowerAlnum(c[i])) {
      return fail(ErrorCode::kInvalidArgument, "bad separator \"{}\" in path component \"{}\"",
                  c.substr(start, i - start), c);
    }
  }
  return {};
}

Status checkPort(std::string_view port) {
  if (port.empty() || port.size() > 5) {
    return fail(ErrorCode::kInvalidArgument, "invalid port \"{}\"", port);
  }
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return fail(ErrorCode::kInvalidArgument, "invalid port \"{}\"", port);
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return fail(ErrorCode::kInvalidArgument, "port {} out of range", port);
  }
  return {};
}

// host[:port] where host is dot-separated labels ([A-Za-z0-9] with inner '-') or [ipv6].
Status checkRegistry(std::string_view registry) {
  std::string_view host = registry;
  std::string_view port;
  if (registry.starts_with('[')) {
    auto close = registry.find(']');
    if (close == std::string_view::npos) {
      return fail(ErrorCode::kInvalidArgument, "unterminated IPv6 address in registry \"{}\"",
                  registry);
    }
    std::string_view v6 = registry.substr(1, close - 1);
    if (v6.empty()) return fail(ErrorCode::kInvalidArgument, "empty IPv6 address");
    for (char c : v6) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return fail(ErrorCode::kInvalidArgument, "invalid IPv6 address \"{}\"", v6);
      }
    }
    std::string_view rest = registry.substr(close + 1);
    if (rest.empty()) return {};
    if (rest[0] != ':') {
      return fail(ErrorCode::kInvalidArgument, "unexpected \"{}\" after IPv6 address", rest);
    }
    return checkPort(rest.substr(1));
  }
  if (auto colon = registry.find(':'); colon != std::string_view::npos) {
    host = registry.substr(0, colon);
    port = registry.substr(colon + 1);
    FLEETLET_RETURN_IF_ERROR(checkPort(port));
  }
  if (host.empty()) return fail(ErrorCode::kInvalidArgument, "empty registry host");
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label =
        host.substr(start, dot == std::string_view::npos ? host.npos : dot - start);
    if (label.empty() || !isAlnum(label.front()) || !isAlnum(label.back())) {
      return fail(ErrorCode::kInvalidArgument, "invalid registry host \"{}\"", host);
    }
    for (char c : label) {
      if (!isAlnum(c) && c != '-') {
        return fail(ErrorCode::kInvalidArgument, "invalid character '{}' in registry host \"{}\"",
                    c, host);
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return {};
}

Status checkTag(std::string_view tag) {
  if (tag.empty()) return fail(ErrorCode::kInvalidArgument, "empty tag");
  if (tag.size() > kMaxTagLength) {
    return fail(ErrorCode::kInvalidArgument, "tag longer than {} characters", kMaxTagLength);
  }
  if (!isWordChar(tag[0])) {
    return fail(ErrorCode::kInvalidArgument, "tag \"{}\" must start with [A-Za-z0-9_]", tag);
  }
  for (char c : tag) {
    if (!isWordChar(c) && c != '.' && c != '-') {
      return fail(ErrorCode::kInvalidArgument, "invalid character '{}' in tag \"{}\"", c, tag);
    }
  }
  return {};
}

bool looksLikeRegistry(std::string_view component) {
  if (component == "localhost") return true;
  for (char c : component) {
    if (c == '.' || c == ':' || c == '[' || (c >= 'A' && c <= 'Z')) return true;
  }
  return false;
}

Status parseInner(std::string_view text, std::string& registry, std::string& repository,
                  std::string& tag, std::string& digest) {
  if (text.empty()) return fail(ErrorCode::kInvalidArgument, "empty reference");
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0 ||
        std::iscntrl(static_cast<unsigned char>(c)) != 0) {
      return fail(ErrorCode::kInvalidArgument, "contains whitespace or control characters");
    }
  }
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    std::string_view d = rest.substr(at + 1);
    FLEETLET_RETURN_IF_ERROR(validateDigest(d));
    digest = d;
    rest = rest.substr(0, at);
  }
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string_view t = rest.substr(colon + 1);
    FLEETLET_RETURN_IF_ERROR(checkTag(t));
    tag = t;
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return fail(ErrorCode::kInvalidArgument, "missing repository name");
  std::string_view path = rest;
  auto first_slash = rest.find('/');
  if (first_slash != std::string_view::npos && looksLikeRegistry(rest.substr(0, first_slash))) {
    std::string_view host = rest.substr(0, first_slash);
    FLEETLET_RETURN_IF_ERROR(checkRegistry(host));
    registry = host;
    path = rest.substr(first_slash + 1);
  } else {
    registry = kDockerHubRegistry;
  }
  if (registry == "index.docker.io" || registry == "registry-1.docker.io") {
    registry = kDockerHubRegistry;
  }
  if (path.empty()) return fail(ErrorCode::kInvalidArgument, "missing repository name");
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view component =
        path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    FLEETLET_RETURN_IF_ERROR(checkPathComponent(component));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  repository = path;
  if (registry == kDockerHubRegistry && path.find('/') == std::string_view::npos) {
    repository = "library/" + repository;
  }
  if (registry.size() + 1 + repository.size() > kMaxNameLength) {
    return fail(ErrorCode::kInvalidArgument, "name longer than {} characters", kMaxNameLength);
  }
  if (tag.empty() && digest.empty()) tag = "latest";
  return {};
}

}  // namespace

Result<Reference> Reference::parse(std::string_view text) {
  Reference ref;
  auto ok = parseInner(text, ref.registry_, ref.repository_, ref.tag_, ref.digest_);
  if (!ok) {
    return fail(ErrorCode::kInvalidArgument, "invalid reference \"{}\": {}", text,
                ok.error().message());
  }
  return ref;
}

std::string Reference::toString() const {
  std::string s = name();
  if (!tag_.empty()) s += ":" + tag_;
  if (!digest_.empty()) s += "@" + digest_;
  return s;
}

}  // namespace fleetlet::oci
