#pragma once
// SHA-256 through OpenSSL, incremental or one-shot. Digests print as lowercase hex.
// Uses OpenSSL's direct SHA256_* functions, not EVP: see sha256.cpp.

#include <memory>
#include <string>
#include <string_view>

#include "error/error.h"

struct SHA256state_st;  // NOLINT(readability-identifier-naming): OpenSSL's name

namespace fleetlet {

class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  ~Sha256();

  void update(std::string_view data);
  void update(const void* data, size_t size);
  // The hex digest of everything passed to update(). The hasher cannot be reused after.
  std::string finishHex();

 private:
  struct CtxDeleter {
    void operator()(SHA256state_st* ctx) const;
  };
  std::unique_ptr<SHA256state_st, CtxDeleter> ctx_;
};

std::string sha256Hex(std::string_view data);

// Hashes a file by streaming it. Fails with the errno of open/read.
Result<std::string> sha256File(const std::string& path);

}  // namespace fleetlet
