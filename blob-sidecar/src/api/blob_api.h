#pragma once
// The HTTP API of the blob service (shared/api/blobs-v1.md) on fleetlet's HTTP server:
//   POST /api/v1/blobs                       multipart upload, streamed to disk
//   GET  /api/v1/blobs/{handle}              bytes (Range, conditional requests, sendfile)
//   GET  /api/v1/blobs/{handle}/metadata     metadata JSON
//   GET  /api/v1/blobs?<handle> | ?metadata-<handle> | ?semantics=S&limit=N&after=C
// HEAD works wherever GET does (the server runs the GET handler without sending the body).
//
// A blob this node does not hold is fetched from the site's other nodes first when a
// RemoteBlobs is given (remote/blob_source.h): download and metadata then answer like for a
// local blob, or 404 (no node has it), 507 (it does not fit), 502 (the hub or the holder failed,
// or its content did not verify).
//
// The app a blob comes from (sourceApp) is read from the tag of the listener its request
// arrived on: listeners handed over by the agent are tagged "app:<name>" (socket handoff,
// docs/socket-handoff.md); the service's own host listener gives sourceApp "".
//
// Concurrency: handlers run on the server's strands and put every store call (disk, SQLite)
// on the server's blocking pool; BlobApi's only mutable state is its counters (thread-safe).
// The store must
// outlive the server's last request.

#include <cstdint>

#include "api/upload_gate.h"
#include "error/error.h"
#include "http/server.h"
#include "metrics/instruments.h"
#include "remote/blob_source.h"
#include "store/blob_store.h"

namespace fleetlet::api {

struct ApiOptions {
  // Largest blob accepted (413 beyond); 0 = unlimited.
  uint64_t max_blob_size = 0;
  // Where blobs not stored here come from; null: nowhere (404). Must outlive the server's
  // last request.
  remote::RemoteBlobs* remote = nullptr;
  // Uploads that read their bodies at the same time; the rest wait their turn (upload_gate.h).
  std::size_t concurrent_uploads = 4;
};

class BlobApi {
 public:
  BlobApi(store::BlobStore& store, ApiOptions options);

  // Adds the routes above. Fails like Server::route (after start()).
  Status registerRoutes(http::Server& server);
  // Writes fleetlet_blobs_uploads_total, _downloads_total and _downloaded_bytes_total
  // (docs/observability.md).
  void writeMetrics(metrics::TextWriter& out) const;

 private:
  // upload() and download() counted by outcome.
  http::Task<http::Response> upload(http::Request& request);
  http::Task<http::Response> download(http::Request& request, std::string handle);
  http::Task<http::Response> serveUpload(http::Request& request);
  http::Task<http::Response> serveDownload(http::Request& request, std::string handle);
  http::Task<http::Response> metadata(http::Request& request, std::string handle);
  http::Task<http::Response> query(http::Request& request);
  // Fetches `handle` (not stored here) from options_.remote, waiting without a thread.
  http::Task<Status> fetchRemote(http::Request& request, const std::string& handle);

  store::BlobStore& store_;
  const ApiOptions options_;
  UploadGate upload_gate_;
  metrics::CounterVec uploads_{"fleetlet_blobs_uploads_total",
                               "Upload requests by result (ok: stored, error: refused or failed).",
                               {"result"}};
  metrics::CounterVec downloads_{
      "fleetlet_blobs_downloads_total",
      "Download requests by result (ok: 200/206 with content, not_modified, error).",
      {"result"}};
  metrics::CounterVec downloaded_bytes_{"fleetlet_blobs_downloaded_bytes_total",
                                        "Content bytes sent by downloads."};
};

}  // namespace fleetlet::api
