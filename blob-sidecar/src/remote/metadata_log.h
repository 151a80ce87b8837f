#pragma once
// MetadataLog: what this node's own event log says about a blob. The metadata event of every
// blob (blobs-v1.md, published by the node that stored it) replicates to every node through
// the site hub (docs/replication.md), so before a node fetches a blob from a holder it checks
// the holder's metadata against that event: a node with hub credentials cannot serve other,
// self-consistent content under a handle (checkHolderMetadata, remote/protocol.h).
//
// EventLogMetadata asks the node's event service (fleetlet-streams, --events-url) over HTTP:
// GET /api/v1/events/offsets, then POST /api/v1/events/query for the metadata stream in
// lamport order, and takes the first event whose payload names the handle. The query reads
// every metadata event of the site: one query per remote fetch, linear in the site's blobs.
//
// Concurrency: find() is thread-safe and blocks (one HTTP exchange at a time per call).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"
#include "store/blob_store.h"

namespace fleetlet::remote {

class MetadataLog {
 public:
  virtual ~MetadataLog() = default;
  // The metadata of the first metadata event for `handle` in this node's log; nullopt when
  // the log holds none (not uploaded anywhere, or not replicated here yet). Fails with
  // kUnavailable when the log cannot be read.
  virtual Result<std::optional<store::BlobMetadata>> find(std::string_view handle) = 0;
};

class EventLogMetadata final : public MetadataLog {
 public:
  // `events_url`: the event service's base URL, "http://127.0.0.1:4454".
  explicit EventLogMetadata(std::string events_url,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Result<std::optional<store::BlobMetadata>> find(std::string_view handle) override;

 private:
  const std::string events_url_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace fleetlet::remote
