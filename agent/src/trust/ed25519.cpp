#include "trust/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <fstream>
#include <sstream>

#include "crypto/sha256.h"

namespace fleetlet::trust {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// Encrypted keys are refused instead of OpenSSL prompting on the terminal.
int noPassword(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*user*/) { return 0; }

PkeyPtr wrap(EVP_PKEY* key) { return {key, PkeyDeleter()}; }

// The last OpenSSL error as text, and the error queue cleared.
std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no PEM key found";
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return {data, static_cast<size_t>(len)};
}

Result<std::string> keyId(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return fail(ErrorCode::kInternal, "encoding a public key: {}", opensslError());
  std::string id = sha256Hex(std::string_view(reinterpret_cast<const char*>(der), size_t(len)));
  OPENSSL_free(der);
  return id;
}

Result<std::string> readFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::unexpected(errnoError(errno, fmt::format("open {}", file.string())));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Status requireEd25519(EVP_PKEY* key, std::string_view what) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
    return fail(ErrorCode::kInvalidArgument, "{}: not an Ed25519 key (it is {})", what,
                OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
  }
  return {};
}

}  // namespace

void PkeyDeleter::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }

Result<PublicKey> PublicKey::fromPem(std::string_view pem, std::string_view what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, &noPassword, nullptr);
  if (raw == nullptr) {
    ERR_clear_error();
    // A private key file holds its public half too.
    auto priv = PrivateKey::fromPem(pem, what);
    if (priv) return priv->publicKey();
    return fail(ErrorCode::kInvalidArgument,
                "{}: not an Ed25519 PEM key (expected \"-----BEGIN PUBLIC KEY-----\")", what);
  }
  auto key = wrap(raw);
  FLEETLET_RETURN_IF_ERROR(requireEd25519(raw, what));
  FLEETLET_ASSIGN_OR_RETURN(auto id, keyId(raw));
  return PublicKey(std::move(key), std::move(id));
}

Result<PublicKey> PublicKey::load(const std::filesystem::path& file) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, readFile(file));
  return fromPem(text, file.string());
}

std::string PublicKey::pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key_.get());
  return bioText(bio.get());
}

bool PublicKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

Result<PrivateKey> PrivateKey::fromPem(std::string_view pem, std::string_view what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, &noPassword, nullptr);
  if (raw == nullptr) {
    ERR_clear_error();
    return fail(ErrorCode::kInvalidArgument,
                "{}: not an Ed25519 PEM private key (expected \"-----BEGIN PRIVATE KEY-----\"; "
                "make one with `openssl genpkey -algorithm ed25519`)",
                what);
  }
  auto key = wrap(raw);
  FLEETLET_RETURN_IF_ERROR(requireEd25519(raw, what));
  FLEETLET_ASSIGN_OR_RETURN(auto id, keyId(raw));
  return PrivateKey(key, PublicKey(key, std::move(id)));
}

Result<PrivateKey> PrivateKey::load(const std::filesystem::path& file) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, readFile(file));
  return fromPem(text, file.string());
}

Result<PrivateKey> PrivateKey::generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) return fail(ErrorCode::kInternal, "Ed25519 keygen: {}", opensslError());
  auto key = wrap(raw);
  FLEETLET_ASSIGN_OR_RETURN(auto id, keyId(raw));
  return PrivateKey(key, PublicKey(key, std::move(id)));
}

Result<std::string> PrivateKey::sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return fail(ErrorCode::kInternal, "Ed25519 sign: {}", opensslError());
  }
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return fail(ErrorCode::kInternal, "Ed25519 sign: {}", opensslError());
  }
  sig.resize(len);
  return sig;
}

PublicKey PrivateKey::publicKey() const { return public_; }

std::string PrivateKey::pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return bioText(bio.get());
}

}  // namespace fleetlet::trust
