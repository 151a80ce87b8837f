#pragma once
// BlobFetcher: gets blobs this node lacks from the nodes of its site that hold them
// (remote/protocol.h). For a handle it first reads the blob's metadata event from this node's
// own event log (remote/metadata_log.h; none: kNotFound), asks fl.<site>.blobs.find, and
// takes the first node that answers with exactly that metadata (others are refused and
// counted), requests the content from fl.<site>.blobs.<node>.get chunk by chunk, streams the
// chunks into an upload of the local store (temporary file, the store's quota) and lets the
// store verify size and sha256 against the metadata before it makes the blob visible under the
// same handle and retention (BlobStore::commitReplica). When that holder fails (stops
// answering, sends malformed or wrong bytes) the next node that answered is tried; nothing
// that did not verify is stored.
//
// Memory: one chunk (chunk_bytes, at most the hub's max_payload) per fetch in flight plus the
// upload's buffers.
//
// Concurrency: fetch() may be called from any thread and never blocks. Fetches run on
// `threads` worker threads of the fetcher; concurrent fetches of one handle share one (single
// flight). stop() (or the destructor) ends the fetches in progress at their next chunk and
// completes every waiting caller; the store and the connection must outlive the fetcher.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "remote/blob_source.h"
#include "remote/hub_connection.h"
#include "remote/metadata_log.h"
#include "remote/protocol.h"
#include "store/blob_store.h"

namespace fleetlet::remote {

struct FetchOptions {
  // How long to wait for the first node to answer a find (then: 404).
  std::chrono::milliseconds find_timeout{2000};
  // How long to wait for the answer to one chunk request.
  std::chrono::milliseconds chunk_timeout{5000};
  // Bytes asked per chunk request (lowered to fit the hub's max_payload).
  uint64_t chunk_bytes = uint64_t{512} * 1024;
  // Largest blob fetched (kResourceExhausted beyond); 0: unlimited.
  uint64_t max_blob_size = 0;
  int threads = 2;
};

class BlobFetcher final : public RemoteBlobs {
 public:
  // `log` must outlive the fetcher.
  BlobFetcher(HubConnection& hub, store::BlobStore& store, MetadataLog& log, FetchOptions options);
  ~BlobFetcher() override;
  BlobFetcher(const BlobFetcher&) = delete;
  BlobFetcher& operator=(const BlobFetcher&) = delete;

  void fetch(std::string handle, std::function<void(Status)> done) override;
  // Idempotent; see the header comment.
  void stop();

  // Fetches run (one per single flight) and answers refused as malformed, so far.
  uint64_t fetches() const { return fetches_.load(); }
  uint64_t rejectedAnswers() const { return rejected_.load(); }

 private:
  void work();
  Status run(const std::string& handle);
  // Fetches the content from `holder` and stores it.
  Status fetchFrom(const HolderAnswer& holder);

  HubConnection& hub_;
  store::BlobStore& store_;
  MetadataLog& log_;
  const FetchOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  // Handle → callers waiting for it; a handle is in the map from its first fetch() until its
  // callers are completed. guarded by mutex_
  std::map<std::string, std::vector<std::function<void(Status)>>, std::less<>> flights_;
  std::deque<std::string> queue_;  // guarded by mutex_; handles no worker has taken yet
  std::atomic<bool> cancelled_{false};
  std::atomic<uint64_t> fetches_{0};
  std::atomic<uint64_t> rejected_{0};
  std::vector<std::thread> workers_;
};

}  // namespace fleetlet::remote
