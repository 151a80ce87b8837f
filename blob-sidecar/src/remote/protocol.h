#pragma once
// The wire protocol of blobs between the nodes of a site, over core-NATS request/reply through
// the site hub (docs/replication.md, "Blobs from other nodes"). Pure functions: building and
// parsing every message. Everything parsed here comes from the network and is untrusted.
//
//   fl.<site>.blobs.find         request: a blob handle (32 lowercase hex digits).
//                                Each node holding a live blob of that handle answers with
//                                {"node":"<node>","metadata":{<metadata of blobs-v1.md>}};
//                                others stay silent.
//   fl.<site>.blobs.<node>.get   request: "<handle> <offset> <length>" (decimal).
//                                Answer: "FLBLOB1 data <offset> <length>\n" + the bytes, or
//                                "FLBLOB1 error <not_found|failed> <message>\n".
//
// The requester verifies the whole content against the metadata's sha256 and bytes before it
// stores anything (store::BlobStore::commitReplica).
//
// Concurrency: pure functions on values; safe from any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "error/error.h"
#include "json/json.h"
#include "store/blob_store.h"

namespace fleetlet::remote {

// Largest answer to a find request accepted (metadata with a long filename fits easily).
inline constexpr std::size_t kMaxHolderAnswerBytes = std::size_t{64} * 1024;
// The longest message of an error answer kept (the rest is cut off).
inline constexpr std::size_t kMaxErrorMessageBytes = 512;

// A site name: 1..64 of letters, digits and '-' (as fleetlet-streams' --site).
Status checkSite(std::string_view site);
// A node name (the blob service's --source): 1..64 of letters, digits, '-' and '_' (a subject
// token, as a fleetlet-streams source id).
Status checkNode(std::string_view node);
// A blob handle as the store makes them: 32 lowercase hex digits.
bool isHandle(std::string_view text);

std::string findSubject(std::string_view site);
std::string getSubject(std::string_view site, std::string_view node);

// A node's answer to a find request.
struct HolderAnswer {
  std::string node;
  store::BlobMetadata metadata;
};
std::string encodeHolderAnswer(const HolderAnswer& answer);
// Fails with kInvalidArgument naming the problem: too large, not JSON, a bad node name, or
// metadata that is incomplete or malformed (handle, sha256, bytes, retentionPolicy, ...).
Result<HolderAnswer> parseHolderAnswer(std::string_view body);

// The metadata object of blobs-v1.md, as store::toJson writes it. Fails with kInvalidArgument
// naming `path` and the field.
Result<store::BlobMetadata> parseBlobMetadata(const Json& value, std::string_view path);

// Whether a holder's metadata for a blob is the metadata of the blob's metadata event in this
// node's event log (remote/metadata_log.h): every field of blobs-v1.md must be equal. Fails
// with kInvalidArgument naming the first field that differs and both values.
Status checkHolderMetadata(const store::BlobMetadata& holder, const store::BlobMetadata& event);

struct ChunkRequest {
  std::string handle;
  uint64_t offset = 0;
  uint64_t length = 0;
};
std::string encodeChunkRequest(const ChunkRequest& request);
// Fails with kInvalidArgument: not "<handle> <offset> <length>", a bad handle, a length of 0.
Result<ChunkRequest> parseChunkRequest(std::string_view body);

// The head of a data answer; the bytes follow it.
std::string chunkDataHead(uint64_t offset, uint64_t length);
// A whole error answer. `not_found`: the holder has no live blob of that handle (any more).
std::string chunkError(bool not_found, std::string_view message);
// Parses the answer to `asked`: the data (a view into `body`) when it starts at asked.offset
// and holds 1..asked.length bytes exactly as its head says. An error answer gives kNotFound
// (not_found) or kUnavailable (failed) with the holder's message (cut to
// kMaxErrorMessageBytes, control characters replaced); anything else kInvalidArgument naming
// what is wrong.
Result<std::string_view> parseChunkReply(std::string_view body, const ChunkRequest& asked);

}  // namespace fleetlet::remote
