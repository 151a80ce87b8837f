#include "crypto/sha256.h"

// OpenSSL 3 marks the direct SHA256_* functions deprecated in favour of EVP, but EVP's first
// digest initialises the provider machinery and reads openssl.cnf: about 1.9 MiB of resident
// memory that fleetletd would otherwise carry from its first spec hash on (docs/fleetletd.md,
// Memory). The direct functions run the same assembly and touch only SHA-256's own code.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "os/unique_fd.h"

namespace fleetlet {

void Sha256::CtxDeleter::operator()(SHA256state_st* ctx) const {
  std::default_delete<SHA256state_st>{}(ctx);
}

Sha256::Sha256() : ctx_(new SHA256_CTX) {
  if (SHA256_Init(ctx_.get()) != 1) {
    fmt::print(stderr, "fatal: OpenSSL cannot initialise SHA-256\n");
    std::abort();
  }
}
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

void Sha256::update(std::string_view data) { update(data.data(), data.size()); }

void Sha256::update(const void* data, size_t size) { SHA256_Update(ctx_.get(), data, size); }

std::string Sha256::finishHex() {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> md{};
  const std::size_t len = md.size();
  SHA256_Final(md.data(), ctx_.get());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (std::size_t i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string sha256Hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finishHex();
}

Result<std::string> sha256File(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failErrno(errno, "open {}", path);
  Sha256 h;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "read {}", path);
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return h.finishHex();
}

}  // namespace fleetlet
