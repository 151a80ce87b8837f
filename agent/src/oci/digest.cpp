#include "oci/digest.h"

namespace fleetlet::oci {
namespace {

constexpr std::string_view kSha256Prefix = "sha256:";
constexpr size_t kSha256HexLength = 64;

bool isLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

Status validateDigest(std::string_view digest) {
  auto colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return fail(ErrorCode::kInvalidArgument, "invalid digest \"{}\": expected sha256:<64 hex>",
                digest);
  }
  std::string_view algorithm = digest.substr(0, colon);
  if (algorithm != "sha256") {
    return fail(ErrorCode::kInvalidArgument,
                "unsupported digest algorithm \"{}\" (only sha256 is supported)", algorithm);
  }
  std::string_view hex = digest.substr(colon + 1);
  if (hex.size() != kSha256HexLength) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid digest \"{}\": sha256 needs 64 hex digits, got {}", digest, hex.size());
  }
  for (char c : hex) {
    if (!isLowerHex(c)) {
      return fail(ErrorCode::kInvalidArgument,
                  "invalid digest \"{}\": only lowercase hex digits may follow \"sha256:\"",
                  digest);
    }
  }
  return {};
}

std::string digestOf(std::string_view bytes) {
  return std::string(kSha256Prefix) + sha256Hex(bytes);
}

Status verify(std::string_view bytes, std::string_view digest) {
  FLEETLET_RETURN_IF_ERROR(validateDigest(digest));
  std::string actual = digestOf(bytes);
  if (actual != digest) {
    return fail(ErrorCode::kInvalidArgument, "digest mismatch: expected {}, got {}", digest,
                actual);
  }
  return {};
}

Result<DigestVerifier> DigestVerifier::create(std::string_view digest,
                                              std::optional<uint64_t> expected_size) {
  FLEETLET_RETURN_IF_ERROR(validateDigest(digest));
  return DigestVerifier(std::string(digest), expected_size);
}

Status DigestVerifier::update(std::string_view chunk) {
  seen_ += chunk.size();
  if (expected_size_ && seen_ > *expected_size_) {
    return fail(ErrorCode::kInvalidArgument,
                "size mismatch for {}: more than the expected {} bytes", expected_,
                *expected_size_);
  }
  hasher_.update(chunk);
  return {};
}

Status DigestVerifier::finish() {
  if (expected_size_ && seen_ != *expected_size_) {
    return fail(ErrorCode::kInvalidArgument, "size mismatch for {}: expected {} bytes, got {}",
                expected_, *expected_size_, seen_);
  }
  std::string actual = std::string(kSha256Prefix) + hasher_.finishHex();
  if (actual != expected_) {
    return fail(ErrorCode::kInvalidArgument, "digest mismatch: expected {}, got {}", expected_,
                actual);
  }
  return {};
}

Result<std::vector<std::string>> chainIds(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> chain;
  chain.reserve(diff_ids.size());
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    if (auto ok = validateDigest(diff_ids[i]); !ok) {
      return std::unexpected(ok.error().wrap("diff_ids[{}]", i));
    }
    if (i == 0) {
      chain.push_back(diff_ids[0]);
    } else {
      chain.push_back(digestOf(chain.back() + " " + diff_ids[i]));
    }
  }
  return chain;
}

}  // namespace fleetlet::oci
