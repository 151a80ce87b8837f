#include "remote/fetcher.h"

#include <fmt/ranges.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace fleetlet::remote {
namespace {

// After a holder failed, how long other answers to the same find may still take to arrive.
constexpr std::chrono::milliseconds kOtherHolderGrace{250};
// The head of a data answer and NATS' framing, within max_payload.
constexpr int64_t kHeadRoom = 256;

using Clock = std::chrono::steady_clock;

struct MsgDeleter {
  void operator()(natsMsg* msg) const { natsMsg_Destroy(msg); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

struct SubscriptionDeleter {
  void operator()(natsSubscription* sub) const {
    (void)natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
};
using SubscriptionPtr = std::unique_ptr<natsSubscription, SubscriptionDeleter>;

std::string_view body(natsMsg* msg) {
  return {natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
}

int64_t millisUntil(Clock::time_point deadline) {
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

}  // namespace

BlobFetcher::BlobFetcher(HubConnection& hub, store::BlobStore& store, MetadataLog& log,
                         FetchOptions options)
    : hub_(hub), store_(store), log_(log), options_(options) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

BlobFetcher::~BlobFetcher() { stop(); }

void BlobFetcher::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cancelled_ = true;
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  // Callers of fetches no worker took.
  std::map<std::string, std::vector<std::function<void(Status)>>, std::less<>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(flights_);
    queue_.clear();
  }
  for (auto& [handle, waiters] : left) {
    for (auto& done : waiters) {
      done(fail(ErrorCode::kUnavailable, "the blob service is stopping"));
    }
  }
}

void BlobFetcher::fetch(std::string handle, std::function<void(Status)> done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      auto [flight, first] = flights_.try_emplace(handle);
      flight->second.push_back(std::move(done));
      if (first) {
        queue_.push_back(std::move(handle));
        wake_.notify_one();
      }
      return;
    }
  }
  done(fail(ErrorCode::kUnavailable, "the blob service is stopping"));
}

void BlobFetcher::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::string handle = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Status result = run(handle);
    lock.lock();
    auto flight = flights_.find(handle);
    std::vector<std::function<void(Status)>> waiters = std::move(flight->second);
    flights_.erase(flight);
    lock.unlock();
    for (auto& done : waiters) done(result);
    lock.lock();
  }
}

Status BlobFetcher::run(const std::string& handle) {
  ++fetches_;
  if (!isHandle(handle)) return fail(ErrorCode::kNotFound, "no blob with handle \"{}\"", handle);
  // Stored meanwhile (a fetch that just completed, or an upload).
  if (store_.find(handle)) return Status();
  const HubOptions& hub = hub_.options();
  if (!hub_.connected()) {
    return fail(ErrorCode::kUnavailable,
                "blob {} is not stored here and the site hub ({}) is not connected", handle,
                fmt::join(hub.urls, ","));
  }
  // What this node's own log says the blob is: the only metadata a holder may answer with.
  auto logged = log_.find(handle);
  if (!logged) return std::unexpected(logged.error().wrap("blob {}", handle));
  std::optional<store::BlobMetadata> found = std::move(*logged);
  if (!found) {
    return fail(ErrorCode::kNotFound,
                "no blob with handle \"{}\": not stored here, and this node's event log holds "
                "no metadata event for it (not uploaded anywhere, or not replicated here yet)",
                handle);
  }
  const store::BlobMetadata& expected = *found;
  char* inbox = nullptr;
  if (natsStatus s = natsInbox_Create(&inbox); s != NATS_OK) {
    return fail(ErrorCode::kInternal, "inbox: {}", natsStatus_GetText(s));
  }
  std::unique_ptr<char, decltype(&natsInbox_Destroy)> inbox_owner(inbox, natsInbox_Destroy);
  natsSubscription* raw_sub = nullptr;
  if (natsStatus s = natsConnection_SubscribeSync(&raw_sub, hub_.get(), inbox); s != NATS_OK) {
    return fail(ErrorCode::kUnavailable, "subscribe to answers: {}", natsStatus_GetText(s));
  }
  SubscriptionPtr sub(raw_sub);
  std::string subject = findSubject(hub.site);
  if (natsStatus s = natsConnection_PublishRequest(hub_.get(), subject.c_str(), inbox,
                                                   handle.data(), static_cast<int>(handle.size()));
      s != NATS_OK) {
    return fail(ErrorCode::kUnavailable, "ask {}: {}", subject, natsStatus_GetText(s));
  }
  Clock::time_point deadline = Clock::now() + options_.find_timeout;
  std::set<std::string, std::less<>> tried;
  std::optional<Error> last_error;
  while (!cancelled_) {
    int64_t wait = millisUntil(deadline);
    if (wait == 0) break;
    natsMsg* raw = nullptr;
    natsStatus s = natsSubscription_NextMsg(&raw, sub.get(), wait);
    // No responders: no other node listens on the site at all.
    if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) break;
    if (s != NATS_OK) {
      return fail(ErrorCode::kUnavailable, "waiting for holders of blob {}: {}", handle,
                  natsStatus_GetText(s));
    }
    MsgPtr msg(raw);
    auto answer = parseHolderAnswer(body(msg.get()));
    if (answer && answer->metadata.handle != handle) {
      answer = fail(ErrorCode::kInvalidArgument, "answer for handle {}, asked for {}",
                    answer->metadata.handle, handle);
    }
    if (!answer) {
      ++rejected_;
      spdlog::warn("blobs: ignoring an answer to the find of blob {}: {}", handle,
                   answer.error().message());
      continue;
    }
    if (!tried.insert(answer->node).second) continue;
    if (Status same = checkHolderMetadata(answer->metadata, expected); !same) {
      ++rejected_;
      Error error = same.error().wrap("blob {} from node {}", handle, answer->node);
      spdlog::warn("blobs: refusing {}", error.message());
      last_error = std::move(error);
      deadline = std::max(deadline, Clock::now() + kOtherHolderGrace);
      continue;
    }
    spdlog::info("blobs: fetching blob {} ({} bytes) from node {}", handle, answer->metadata.bytes,
                 answer->node);
    Status fetched = fetchFrom(*answer);
    if (fetched) return fetched;
    Error error = fetched.error().wrap("fetching blob {} from node {}", handle, answer->node);
    if (error.code() == ErrorCode::kResourceExhausted) return std::unexpected(error);
    spdlog::warn("blobs: {}", error.message());
    last_error = std::move(error);
    deadline = Clock::now() + kOtherHolderGrace;
  }
  if (cancelled_) return fail(ErrorCode::kUnavailable, "the blob service is stopping");
  // The last holder's failure (kNotFound when it lost the blob meanwhile).
  if (last_error) return std::unexpected(*last_error);
  return fail(ErrorCode::kNotFound,
              "no blob with handle \"{}\": not stored here, and no node of site '{}' answered "
              "for it within {} ms",
              handle, hub.site, options_.find_timeout.count());
}

Status BlobFetcher::fetchFrom(const HolderAnswer& holder) {
  const store::BlobMetadata& meta = holder.metadata;
  if (options_.max_blob_size > 0 && meta.bytes > options_.max_blob_size) {
    return fail(ErrorCode::kResourceExhausted, "blob of {} bytes exceeds the maximum of {} bytes",
                meta.bytes, options_.max_blob_size);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto upload, store_.beginUpload(meta.bytes));
  int64_t payload = hub_.maxPayload();
  uint64_t chunk = options_.chunk_bytes;
  if (payload > kHeadRoom * 2) chunk = std::min(chunk, static_cast<uint64_t>(payload - kHeadRoom));
  std::string subject = getSubject(hub_.options().site, holder.node);
  uint64_t offset = 0;
  while (offset < meta.bytes) {
    if (cancelled_) return fail(ErrorCode::kUnavailable, "the blob service is stopping");
    ChunkRequest asked{
        .handle = meta.handle, .offset = offset, .length = std::min(chunk, meta.bytes - offset)};
    std::string request = encodeChunkRequest(asked);
    natsMsg* raw = nullptr;
    natsStatus s =
        natsConnection_Request(&raw, hub_.get(), subject.c_str(), request.data(),
                               static_cast<int>(request.size()), options_.chunk_timeout.count());
    if (s != NATS_OK) {
      return fail(ErrorCode::kUnavailable, "no answer for bytes {}.. of {} ({})", offset,
                  meta.bytes, natsStatus_GetText(s));
    }
    MsgPtr reply(raw);
    auto data = parseChunkReply(body(reply.get()), asked);
    if (!data) {
      return std::unexpected(data.error().wrap("bytes {}.. of {}", offset, meta.bytes));
    }
    FLEETLET_RETURN_IF_ERROR(upload->write(*data));
    offset += data->size();
  }
  auto stored = store_.commitReplica(*upload, meta);
  if (!stored) return std::unexpected(stored.error());
  spdlog::info("blobs: stored blob {} ({} bytes, sha256 {}) from node {}", meta.handle, meta.bytes,
               meta.sha256, holder.node);
  return Status();
}

}  // namespace fleetlet::remote
