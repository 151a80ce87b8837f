#pragma once
// Content digests ("sha256:<64 lowercase hex>"), verification of bytes against them, and the
// chain ids that name unpacked layer stacks.
//
// Only sha256 is supported; other algorithms are refused as kInvalidArgument. Everything here
// is pure and thread-safe except DigestVerifier, which one thread uses at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/sha256.h"
#include "error/error.h"

namespace fleetlet::oci {

// OK when `digest` is "sha256:" followed by 64 lowercase hex digits; otherwise
// kInvalidArgument saying what is wrong (without a field path: callers prefix one).
Status validateDigest(std::string_view digest);

// "sha256:<hex>" of `bytes`.
std::string digestOf(std::string_view bytes);

// OK when `bytes` hash to `digest`; kInvalidArgument "digest mismatch: expected X, got Y"
// otherwise (also when `digest` itself is malformed).
Status verify(std::string_view bytes, std::string_view digest);

// Checks a stream of bytes against a digest and, when given, an exact size. update() fails
// as soon as more than the expected size arrives, so a hostile server cannot make a reader
// swallow an endless body. finish() checks the total size and the digest.
class DigestVerifier {
 public:
  // `digest` must be valid (see validateDigest); construct through create().
  static Result<DigestVerifier> create(std::string_view digest,
                                       std::optional<uint64_t> expected_size);

  // kInvalidArgument when the stream grows past the expected size.
  Status update(std::string_view chunk);
  // kInvalidArgument on a size or digest mismatch. Call once.
  Status finish();

  uint64_t bytesSeen() const { return seen_; }

 private:
  DigestVerifier(std::string digest, std::optional<uint64_t> expected_size)
      : expected_(std::move(digest)), expected_size_(expected_size) {}

  std::string expected_;
  std::optional<uint64_t> expected_size_;
  uint64_t seen_ = 0;
  Sha256 hasher_;
};

// Chain ids of a layer stack from its diff ids (the uncompressed layer digests, bottom
// first): c0 = d0, ci = sha256(c(i-1) + " " + di), each "sha256:<hex>". Fails with
// kInvalidArgument naming the index when a diff id is malformed.
Result<std::vector<std::string>> chainIds(const std::vector<std::string>& diff_ids);

}  // namespace fleetlet::oci
