#pragma once
// Ed25519 keys and signatures through OpenSSL 3 (EVP, no digest: Ed25519 is "pure").
//
// Key files are PEM: a public key as "PUBLIC KEY" (SubjectPublicKeyInfo), a private key as
// "PRIVATE KEY" (PKCS#8), which is what `openssl genpkey -algorithm ed25519` and
// `openssl pkey -pubout` write. A key's id is the lowercase hex SHA-256 of its public key's
// DER SubjectPublicKeyInfo, so `openssl pkey -pubin -outform DER < pub.pem | sha256sum` prints
// it too.
//
// Thread-safety: a key is immutable after loading; verify() and sign() may run concurrently.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "error/error.h"

struct evp_pkey_st;  // NOLINT(readability-identifier-naming): OpenSSL's EVP_PKEY

namespace fleetlet::trust {

class PrivateKey;

struct PkeyDeleter {
  void operator()(evp_pkey_st* key) const;
};
using PkeyPtr = std::shared_ptr<evp_pkey_st>;

class PublicKey {
 public:
  // From PEM text ("PUBLIC KEY"; a "PRIVATE KEY" is accepted too and its public half used).
  // kInvalidArgument "not an Ed25519 key (...)" for anything else; `what` names the input.
  static Result<PublicKey> fromPem(std::string_view pem, std::string_view what);
  static Result<PublicKey> load(const std::filesystem::path& file);

  const std::string& id() const { return id_; }
  // The public key as PEM ("-----BEGIN PUBLIC KEY-----...").
  std::string pem() const;
  // Whether `signature` is this key's Ed25519 signature of `message`.
  bool verify(std::string_view message, std::string_view signature) const;

 private:
  friend class PrivateKey;
  PublicKey(PkeyPtr key, std::string id) : key_(std::move(key)), id_(std::move(id)) {}
  PkeyPtr key_;
  std::string id_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> fromPem(std::string_view pem, std::string_view what);
  static Result<PrivateKey> load(const std::filesystem::path& file);
  // A new random key.
  static Result<PrivateKey> generate();

  // The 64-byte Ed25519 signature of `message`.
  Result<std::string> sign(std::string_view message) const;
  PublicKey publicKey() const;
  // PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----...").
  std::string pem() const;

 private:
  PrivateKey(PkeyPtr key, PublicKey pub) : key_(std::move(key)), public_(std::move(pub)) {}
  PkeyPtr key_;
  PublicKey public_;
};

}  // namespace fleetlet::trust
