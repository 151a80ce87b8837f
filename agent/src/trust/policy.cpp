#include "trust/policy.h"

#include <fmt/chrono.h>

#include <algorithm>
#include <set>

namespace fleetlet::trust {
namespace {

std::string shortIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    out += out.empty() ? "" : ", ";
    out += id.empty() ? std::string("(none)") : id.substr(0, 16);
  }
  return out;
}

}  // namespace

Policy::Policy(std::vector<PublicKey> keys, int threshold, bool allow_unsigned_local)
    : keys_(std::move(keys)), threshold_(threshold), allow_unsigned_local_(allow_unsigned_local) {}

Result<Policy> Policy::load(const PolicyConfig& config) {
  std::vector<PublicKey> keys;
  std::set<std::string> ids;
  for (const auto& file : config.key_files) {
    FLEETLET_ASSIGN_OR_RETURN(auto key, PublicKey::load(file));
    if (ids.insert(key.id()).second) keys.push_back(std::move(key));
  }
  if (config.threshold < 1) {
    return fail(ErrorCode::kInvalidArgument, "trust.threshold: {} is below 1", config.threshold);
  }
  if (!keys.empty() && static_cast<size_t>(config.threshold) > keys.size()) {
    return fail(ErrorCode::kInvalidArgument,
                "trust.threshold: {} is more than the {} distinct keys in trust.keys",
                config.threshold, keys.size());
  }
  // Without keys nothing can be verified: local manifests stay accepted as before signing.
  return Policy(std::move(keys), config.threshold,
                config.allow_unsigned_local || config.key_files.empty());
}

Result<Verified> Policy::verify(const Envelope& envelope) const {
  if (envelope.payload_type != kPayloadTypeYaml && envelope.payload_type != kPayloadTypeJson) {
    return fail(ErrorCode::kFailedPrecondition,
                "envelope: unsupported payloadType \"{}\" (expected {} or {})",
                envelope.payload_type.substr(0, 100), kPayloadTypeYaml, kPayloadTypeJson);
  }
  return verifySignatures(envelope);
}

Result<Verified> Policy::verifyAs(const Envelope& envelope, std::string_view payload_type) const {
  if (envelope.payload_type != payload_type) {
    return fail(ErrorCode::kFailedPrecondition,
                "envelope: unsupported payloadType \"{}\" (expected {})",
                envelope.payload_type.substr(0, 100), payload_type);
  }
  return verifySignatures(envelope);
}

Result<Verified> Policy::verifySignatures(const Envelope& envelope) const {
  if (keys_.empty()) {
    return fail(ErrorCode::kFailedPrecondition,
                "signature: this node trusts no keys (set trust.keys in the config)");
  }
  const std::string message = pae(envelope.payload_type, envelope.payload);
  std::set<std::string> signers;
  std::vector<std::string> offered;
  for (const auto& sig : envelope.signatures) {
    offered.push_back(sig.keyid);
    for (const auto& key : keys_) {
      // A keyid is a hint: when given, only the key it names is tried.
      if (!sig.keyid.empty() && sig.keyid != key.id()) continue;
      if (signers.contains(key.id())) continue;
      if (key.verify(message, sig.sig)) {
        signers.insert(key.id());
        break;
      }
    }
  }
  if (signers.empty()) {
    return fail(ErrorCode::kFailedPrecondition,
                "signature: no valid signature by a trusted key (envelope keyids: {})",
                shortIds(offered));
  }
  if (signers.size() < static_cast<size_t>(threshold_)) {
    return fail(ErrorCode::kFailedPrecondition,
                "signature: {} of the {} required trusted keys signed", signers.size(), threshold_);
  }
  return Verified{
      .manifest = envelope.payload, .key_ids = {signers.begin(), signers.end()}, .is_signed = true};
}

Result<Verified> Policy::admit(std::string_view text, Origin origin) const {
  if (looksLikeEnvelope(text)) {
    auto envelope = parseEnvelope(text);
    if (!envelope) {
      return std::unexpected(Error(ErrorCode::kFailedPrecondition, envelope.error().message()));
    }
    return verify(*envelope);
  }
  if (origin == Origin::kCloud) {
    return fail(ErrorCode::kFailedPrecondition,
                "unsigned manifest refused: the cloud must serve a DSSE envelope (got {} bytes "
                "starting \"{}\")",
                text.size(), std::string(text.substr(0, std::min<size_t>(text.size(), 24))));
  }
  if (!allow_unsigned_local_) {
    return fail(ErrorCode::kFailedPrecondition,
                "unsigned manifest refused: this node trusts signed manifests only (sign it "
                "with `fleetletctl manifest sign`, or set trust.allowUnsigned: local)");
  }
  return Verified{.manifest = std::string(text), .key_ids = {}, .is_signed = false};
}

Status checkBinding(const manifest::NodeState& state, std::string_view node_id, bool require_node,
                    int64_t accepted_revision, std::chrono::system_clock::time_point now) {
  if (state.node.empty() && require_node) {
    return fail(ErrorCode::kFailedPrecondition,
                "node: a signed manifest must name the node it is for (this node is \"{}\")",
                node_id);
  }
  if (!state.node.empty() && state.node != node_id) {
    return fail(ErrorCode::kFailedPrecondition,
                "node: manifest is for node \"{}\", this node is \"{}\"", state.node, node_id);
  }
  if (state.revision <= accepted_revision) {
    return fail(ErrorCode::kFailedPrecondition,
                "revision {} is not newer than the accepted revision {}", state.revision,
                accepted_revision);
  }
  if (state.expires && *state.expires <= now) {
    return fail(ErrorCode::kFailedPrecondition, "expires: manifest expired at {:%FT%T}Z",
                std::chrono::floor<std::chrono::seconds>(*state.expires));
  }
  return {};
}

}  // namespace fleetlet::trust
