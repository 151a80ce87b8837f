#include "cli/manifest_commands.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "manifest/parse.h"
#include "os/unique_fd.h"
#include "trust/envelope.h"
#include "trust/policy.h"

namespace fleetlet::cli {
namespace {

// Writes `text` to `path` (created with `mode`, replaced when it exists).
Status writeFile(const std::string& path, std::string_view text, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return std::unexpected(errnoError(errno, fmt::format("create {}", path)));
  while (!text.empty()) {
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(errnoError(errno, fmt::format("write {}", path)));
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

int runKeygen(const std::string& out) {
  auto key = trust::PrivateKey::generate();
  if (!key) return reportFailure(key.error());
  if (auto st = writeFile(out, key->pem(), 0600); !st) return reportFailure(st.error());
  const std::string pub = out + ".pub";
  if (auto st = writeFile(pub, key->publicKey().pem(), 0644); !st) {
    return reportFailure(st.error());
  }
  fmt::print("{}  {} (public key: {})\n", key->publicKey().id(), out, pub);
  return kExitOk;
}

int runKeyid(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    auto key = trust::PublicKey::load(f);
    if (!key) return reportFailure(key.error());
    fmt::print("{}  {}\n", key->id(), f);
  }
  return kExitOk;
}

int runSign(const std::string& file, const std::vector<std::string>& key_files,
            const std::string& out) {
  auto text = readInput(file);
  if (!text) return reportFailure(text.error());
  if (trust::looksLikeEnvelope(*text)) {
    return reportFailure(Error(ErrorCode::kInvalidArgument,
                               fmt::format("{} is already an envelope; sign the manifest", file)));
  }
  // Only a valid manifest is worth signing.
  auto state = manifest::parseNodeState(*text, file == "-" ? "stdin" : file);
  if (!state) return reportFailure(state.error());
  auto start = text->find_first_not_of(" \t\r\n");
  trust::Envelope env{
      .payload_type = std::string(start != std::string::npos && (*text)[start] == '{'
                                      ? trust::kPayloadTypeJson
                                      : trust::kPayloadTypeYaml),
      .payload = std::move(*text),
      .signatures = {}};
  const std::string message = trust::pae(env.payload_type, env.payload);
  for (const auto& kf : key_files) {
    auto key = trust::PrivateKey::load(kf);
    if (!key) return reportFailure(key.error());
    auto sig = key->sign(message);
    if (!sig) return reportFailure(sig.error());
    env.signatures.push_back({.keyid = key->publicKey().id(), .sig = std::move(*sig)});
  }
  std::string envelope = trust::serializeEnvelope(env) + "\n";
  if (out.empty() || out == "-") {
    fmt::print("{}", envelope);
  } else if (auto st = writeFile(out, envelope, 0644); !st) {
    return reportFailure(st.error());
  }
  if (state->node.empty()) {
    fmt::print(stderr, "fleetletctl: warning: the manifest names no node; nodes refuse it\n");
  }
  return kExitOk;
}

int runVerify(const std::string& file, const std::vector<std::string>& key_files, int threshold,
              const std::string& node) {
  auto text = readInput(file);
  if (!text) return reportFailure(text.error());
  std::vector<std::filesystem::path> paths(key_files.begin(), key_files.end());
  auto policy = trust::Policy::load(
      {.key_files = paths, .threshold = threshold, .allow_unsigned_local = false});
  if (!policy) return reportFailure(policy.error());
  auto verified = policy->admit(*text, trust::Origin::kCloud);
  if (!verified) return reportFailure(verified.error());
  auto state = manifest::parseNodeState(verified->manifest, "payload");
  if (!state) return reportFailure(state.error());
  if (!node.empty()) {
    auto st = trust::checkBinding(*state, node, true, 0, std::chrono::system_clock::now());
    if (!st) return reportFailure(st.error());
  }
  std::string signers;
  for (const auto& id : verified->key_ids) signers += (signers.empty() ? "" : ", ") + id;
  fmt::print("verified: revision {} for node {}, signed by {}\n", state->revision,
             state->node.empty() ? "(none)" : state->node, signers);
  return kExitOk;
}

}  // namespace

void addManifestCommands(CLI::App& app, Action& action) {
  auto* manifest =
      app.add_subcommand("manifest", "Sign and verify manifests (no fleetletd needed)");
  manifest->require_subcommand(1);

  auto out = std::make_shared<std::string>();
  auto* keygen = manifest->add_subcommand("keygen", "Write a new Ed25519 key and its .pub");
  keygen->add_option("-o,--out", *out, "The private key file to write (0600)")->required();
  keygen->callback([out, &action] { action = [=] { return runKeygen(*out); }; });

  auto key_list = std::make_shared<std::vector<std::string>>();
  auto* keyid = manifest->add_subcommand("keyid", "Print the id of each key (public or private)");
  keyid->add_option("keys", *key_list, "PEM key files")->required();
  keyid->callback([key_list, &action] { action = [=] { return runKeyid(*key_list); }; });

  auto file = std::make_shared<std::string>();
  auto keys = std::make_shared<std::vector<std::string>>();
  auto* sign = manifest->add_subcommand("sign", "Sign a manifest into a DSSE envelope");
  sign->add_option("-f,--filename", *file, "The manifest, - for stdin")
      ->required()
      ->check(manifestFile());
  sign->add_option("-k,--key", *keys, "Ed25519 private key (PEM); repeat for more signatures")
      ->required();
  sign->add_option("-o,--out", *out, "Write the envelope here instead of stdout");
  sign->callback([=, &action] { action = [=] { return runSign(*file, *keys, *out); }; });

  auto threshold = std::make_shared<int>(1);
  auto node = std::make_shared<std::string>();
  auto* verify = manifest->add_subcommand("verify", "Verify an envelope against public keys");
  verify->add_option("-f,--filename", *file, "The envelope, - for stdin")
      ->required()
      ->check(manifestFile());
  verify->add_option("-k,--key", *keys, "Trusted public key (PEM); repeatable")->required();
  verify->add_option("--threshold", *threshold, "How many of the keys must have signed")
      ->check(CLI::PositiveNumber);
  verify->add_option("--node", *node, "Also check that the manifest is for this node");
  verify->callback(
      [=, &action] { action = [=] { return runVerify(*file, *keys, *threshold, *node); }; });
}

}  // namespace fleetlet::cli
