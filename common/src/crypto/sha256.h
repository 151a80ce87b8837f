#pragma once
// SHA-256 through OpenSSL, incremental or one-shot. Digests print as lowercase hex.

#include <memory>
#include <string>
#include <string_view>

#include "error/error.h"

struct evp_md_ctx_st;

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
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;
};

std::string sha256Hex(std::string_view data);

// Hashes a file by streaming it. Fails with the errno of open/read.
Result<std::string> sha256File(const std::string& path);

}  // namespace fleetlet
