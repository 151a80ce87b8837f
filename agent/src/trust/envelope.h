#pragma once
// DSSE envelopes (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse):
//
//   {"payloadType": "<media type>", "payload": "<base64>",
//    "signatures": [{"keyid": "<hex>", "sig": "<base64>"}, ...]}
//
// A signature covers PAE(payloadType, payload bytes), never a re-serialisation, so the bytes
// that were signed are exactly the bytes that are parsed after verification.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::trust {

// Payload types of a fleetlet node state (manifest v1) inside an envelope.
inline constexpr std::string_view kPayloadTypeYaml = "application/vnd.fleetlet.nodestate.v1+yaml";
inline constexpr std::string_view kPayloadTypeJson = "application/vnd.fleetlet.nodestate.v1+json";

// Envelopes larger than this are refused before parsing (a manifest is a few KiB).
inline constexpr size_t kMaxEnvelopeBytes = size_t{4} * 1024 * 1024;
// At most this many signatures are looked at (thresholds are small).
inline constexpr size_t kMaxSignatures = 16;

struct Signature {
  std::string keyid;  // may be empty: then every pinned key is tried
  std::string sig;    // raw signature bytes (decoded)
};

struct Envelope {
  std::string payload_type;
  std::string payload;  // decoded bytes
  std::vector<Signature> signatures;
};

// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths as ASCII decimal.
std::string pae(std::string_view payload_type, std::string_view payload);

// Whether `text` looks like an envelope rather than a bare manifest: a JSON object whose first
// key is one of "payloadType", "payload", "signatures" (after whitespace). Cheap; parse to be
// sure.
bool looksLikeEnvelope(std::string_view text);

// Parses an envelope. kInvalidArgument naming the problem: "envelope: not JSON (...)",
// "envelope: payload: not base64", "envelope: signatures: none", "envelope: unknown field
// \"x\"", "envelope: 5000000 bytes is more than 4194304", ... Unknown payload types are left
// to the caller.
Result<Envelope> parseEnvelope(std::string_view text);

// The envelope as compact JSON (payload and signatures base64 with padding).
std::string serializeEnvelope(const Envelope& envelope);

}  // namespace fleetlet::trust
