#pragma once
// The trust policy of a node: which keys may sign its desired state, how many must, whether
// unsigned manifests are accepted from local sources, and the checks that bind a manifest to
// this node (node id, revision, expiry). docs/cloud.md describes it for users.
//
// Thread-safety: immutable after construction; every method may run concurrently.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "manifest/types.h"
#include "trust/ed25519.h"
#include "trust/envelope.h"

namespace fleetlet::trust {

// Where a manifest came from.
enum class Origin : std::uint8_t {
  kLocal,  // fleetletctl apply, the --desired file
  kCloud,  // cloud.manifestUrl
};

struct PolicyConfig {
  std::vector<std::filesystem::path> key_files;  // trust.keys
  int threshold = 1;                             // trust.threshold
  bool allow_unsigned_local = false;             // trust.allowUnsigned: local
};

// What verification yields: the manifest bytes that were signed and who signed them.
struct Verified {
  std::string manifest;              // the payload: YAML or JSON manifest text
  std::vector<std::string> key_ids;  // distinct pinned keys whose signature verified
  bool is_signed = false;            // false: an unsigned local manifest let through
};

class Policy {
 public:
  // No keys: signing is not in use; unsigned manifests are accepted from local sources, and
  // cloud manifests cannot be verified (refused).
  Policy() = default;
  Policy(std::vector<PublicKey> keys, int threshold, bool allow_unsigned_local);
  // Loads every key file. kInvalidArgument naming the file for a bad key, or for a threshold
  // below 1 or above the number of distinct keys.
  static Result<Policy> load(const PolicyConfig& config);

  bool hasKeys() const { return !keys_.empty(); }
  int threshold() const { return threshold_; }

  // Admits manifest text from `origin`: a DSSE envelope is verified (payload type, at least
  // `threshold` distinct pinned keys) and its payload returned; bare manifest text passes only
  // from a local source and only when no keys are pinned or unsigned local manifests are
  // allowed. kFailedPrecondition naming the reason otherwise: "signature: no valid signature
  // by a trusted key (keyids: ab12…)", "signature: 1 of 2 required keys signed",
  // "unsigned manifest refused (trust.allowUnsigned does not include local)", ...
  Result<Verified> admit(std::string_view text, Origin origin) const;

  // Verifies a parsed envelope against the pinned keys (see admit()).
  Result<Verified> verify(const Envelope& envelope) const;
  // The same for another kind of signed document (a log request: logrequest/request.h): the
  // envelope's payloadType must be `payload_type` ("envelope: unsupported payloadType ..."),
  // and `threshold` distinct pinned keys must have signed it.
  Result<Verified> verifyAs(const Envelope& envelope, std::string_view payload_type) const;

 private:
  Result<Verified> verifySignatures(const Envelope& envelope) const;

  std::vector<PublicKey> keys_;
  int threshold_ = 1;
  bool allow_unsigned_local_ = true;
};

// Binds a manifest to this node, given what the node has already accepted. In order:
//   node: when the manifest names a node it must be `node_id` ("manifest is for node \"b\",
//         this node is \"a\""); a signed manifest (`require_node`) must name one;
//   revision: above `accepted_revision`, the newest the node accepted ("revision 3 is not
//             newer than the accepted revision 5");
//   expires: after `now` ("manifest expired at 2026-…Z").
// kFailedPrecondition for each.
Status checkBinding(const manifest::NodeState& state, std::string_view node_id, bool require_node,
                    int64_t accepted_revision, std::chrono::system_clock::time_point now);

}  // namespace fleetlet::trust
