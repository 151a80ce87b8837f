#pragma once
// BlobService: the whole fleetlet-blobs service assembled from its modules: the store, the
// HTTP API on fleetlet's server, the metadata-event publisher and the retention collector.
// main() parses flags into ServiceOptions and runs one; tests can run one in-process.
//
// Concurrency: start() and stop() from one controlling thread (not from a request handler).
// Inside, the HTTP server runs its own io and blocking threads, the publisher and the
// collector one thread each (see their headers).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error/error.h"
#include "http/server.h"
#include "remote/fetcher.h"
#include "remote/hub_connection.h"
#include "store/blob_store.h"

namespace fleetlet::service {

struct ServiceOptions {
  std::filesystem::path data_dir;
  // "127.0.0.1:4455", "[::1]:0"; port 0 picks a free port.
  std::string listen = "127.0.0.1:4455";
  // Base URL of the event service that receives metadata events.
  std::string events_url = "http://127.0.0.1:4454";
  uint64_t max_blob_size = 0;  // 0: unlimited
  // Uploads reading their bodies at once; more wait their turn (api/upload_gate.h).
  std::size_t concurrent_uploads = 4;
  uint64_t quota = 0;  // 0: unlimited
  // This node's id (`source` in blob metadata).
  std::string source = "local";
  std::chrono::milliseconds collect_interval{10000};
  // Write uploads with O_DIRECT where the filesystem supports it (see store::StoreOptions).
  bool direct_io = true;
  std::optional<std::string> cors_origin = "*";
  // Where the agent hands over each app's blob listener (socket handoff); none when unset.
  std::optional<std::filesystem::path> handoff_socket;
  // Blobs from other nodes (docs/replication.md): when set (hub URLs given), this node serves
  // its blobs to the site and fetches the ones it lacks. hub.node is set from `source`.
  std::optional<remote::HubOptions> hub;
  remote::FetchOptions fetch;
};

class BlobService {
 public:
  // Opens the store, binds the host listener (tag "host"), starts the handoff receiver when
  // a socket is configured, and starts every thread. Fails with the first error (bad
  // address, unusable data directory, port in use, handoff socket held by a live service).
  static Result<std::unique_ptr<BlobService>> start(ServiceOptions options,
                                                    std::unique_ptr<store::Clock> clock);
  ~BlobService();
  BlobService(const BlobService&) = delete;
  BlobService& operator=(const BlobService&) = delete;

  std::vector<http::ListenerInfo> listeners() const;
  // The HTTP server, e.g. to adopt listeners handed over by the agent.
  http::Server& server();
  store::BlobStore& store();
  // The fetcher of blobs from other nodes; null without a hub.
  remote::BlobFetcher* fetcher();
  // Graceful shutdown: fetches from other nodes, the handoff receiver, the server, the site
  // holder and hub connection, then the publisher and collector.
  // Idempotent.
  void stop();

  // The service's parts (blob_service.cpp).
  struct Parts;

 private:
  explicit BlobService(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// "4096", "64Ki", "512M", "2Gi", "1G" (K/M/G/T decimal, Ki/Mi/Gi/Ti binary, optional B).
// Fails with kInvalidArgument.
Result<uint64_t> parseByteSize(std::string_view text);
// "127.0.0.1:4455" or "[::1]:0" → (address, port). Fails with kInvalidArgument.
Result<std::pair<std::string, uint16_t>> parseListenAddress(std::string_view text);

}  // namespace fleetlet::service
