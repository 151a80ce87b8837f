#pragma once
// Keys and envelopes for trust tests: fresh Ed25519 keys written as PEM into a temp dir.

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/temp_dir.h"
#include "trust/ed25519.h"
#include "trust/envelope.h"

namespace fleetlet::trust::testing {

inline PrivateKey newKey() {
  auto key = PrivateKey::generate();
  EXPECT_TRUE(key.has_value());
  return *key;
}

// Writes `key`'s public half to dir/name and returns the path.
inline std::filesystem::path writePublic(const std::filesystem::path& dir, const std::string& name,
                                         const PrivateKey& key) {
  auto path = dir / name;
  std::ofstream(path) << key.publicKey().pem();
  return path;
}

inline Envelope sign(std::string_view manifest, const std::vector<const PrivateKey*>& keys,
                     std::string_view type = kPayloadTypeYaml) {
  Envelope env{
      .payload_type = std::string(type), .payload = std::string(manifest), .signatures = {}};
  for (const auto* key : keys) {
    auto sig = key->sign(pae(env.payload_type, env.payload));
    EXPECT_TRUE(sig.has_value());
    env.signatures.push_back({.keyid = key->publicKey().id(), .sig = *sig});
  }
  return env;
}

inline std::string manifestFor(std::string_view node, int64_t revision,
                               std::string_view extra = "") {
  return fmt::format(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\nnode: {}\n{}apps:\n  web:\n"
      "    image: registry.local/web:1\n",
      revision, node, extra);
}

}  // namespace fleetlet::trust::testing
