#pragma once
// BlobHolder: answers the site's requests for blobs this node holds (remote/protocol.h):
// find requests for a live blob with its metadata, chunk requests with its bytes, read from
// the content file (never more than the hub's max_payload in one answer). Blobs fetched from
// other nodes are held like uploaded ones, so they are served on too.
//
// Concurrency: nats.c calls the handlers on its delivery threads; they only read the store
// (thread-safe). The destructor unsubscribes and waits until no handler runs any more. The
// store and the connection must outlive the holder.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "error/error.h"
#include "remote/hub_connection.h"
#include "store/blob_store.h"

struct __natsSubscription;

namespace fleetlet::remote {

class BlobHolder {
 public:
  // Subscribes to fl.<site>.blobs.find and fl.<site>.blobs.<node>.get. Fails with
  // kUnavailable when nats.c refuses the subscription.
  static Result<std::unique_ptr<BlobHolder>> start(HubConnection& hub, store::BlobStore& store);
  ~BlobHolder();
  BlobHolder(const BlobHolder&) = delete;
  BlobHolder& operator=(const BlobHolder&) = delete;

  // Called by nats.c (holder.cpp); not for other callers.
  void onFind(std::string_view body, const char* reply);
  void onGet(std::string_view body, const char* reply);
  void onClosed();

  uint64_t findsAnswered() const { return finds_answered_.load(); }
  uint64_t chunksServed() const { return chunks_served_.load(); }

 private:
  BlobHolder(HubConnection& hub, store::BlobStore& store) : hub_(hub), store_(store) {}
  // The answer to one chunk request (data or error), at most `limit` bytes of data.
  std::string answerChunk(std::string_view body, uint64_t limit);

  HubConnection& hub_;
  store::BlobStore& store_;
  __natsSubscription* find_sub_ = nullptr;
  __natsSubscription* get_sub_ = nullptr;
  std::mutex mutex_;
  std::condition_variable closed_cv_;
  int open_subscriptions_ = 0;  // guarded by mutex_
  std::atomic<uint64_t> finds_answered_{0};
  std::atomic<uint64_t> chunks_served_{0};
};

}  // namespace fleetlet::remote
