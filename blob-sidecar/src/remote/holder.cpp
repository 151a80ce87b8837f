#include "remote/holder.h"

#include <fcntl.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "os/unique_fd.h"
#include "remote/protocol.h"

namespace fleetlet::remote {
namespace {

// Room for the head of a data answer and NATS' own framing within max_payload.
constexpr int64_t kHeadRoom = 256;
// The most one answer carries, whatever the hub allows.
constexpr uint64_t kMaxAnswerData = uint64_t{8} * 1024 * 1024;

std::string_view body(natsMsg* msg) {
  return {natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
}

void onFindMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<BlobHolder*>(closure)->onFind(body(msg), natsMsg_GetReply(msg));
  natsMsg_Destroy(msg);
}

void onGetMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<BlobHolder*>(closure)->onGet(body(msg), natsMsg_GetReply(msg));
  natsMsg_Destroy(msg);
}

void onSubscriptionClosed(void* closure) { static_cast<BlobHolder*>(closure)->onClosed(); }

}  // namespace

Result<std::unique_ptr<BlobHolder>> BlobHolder::start(HubConnection& hub, store::BlobStore& store) {
  std::unique_ptr<BlobHolder> holder(new BlobHolder(hub, store));
  const HubOptions& options = hub.options();
  auto subscribe = [&](natsSubscription** sub, const std::string& subject,
                       natsMsgHandler handler) -> Status {
    natsStatus s = natsConnection_Subscribe(sub, hub.get(), subject.c_str(), handler, holder.get());
    if (s == NATS_OK) {
      std::lock_guard lock(holder->mutex_);
      ++holder->open_subscriptions_;
      s = natsSubscription_SetOnCompleteCB(*sub, onSubscriptionClosed, holder.get());
    }
    if (s != NATS_OK) {
      return fail(ErrorCode::kUnavailable, "subscribe to {}: {}", subject, natsStatus_GetText(s));
    }
    return Status();
  };
  FLEETLET_RETURN_IF_ERROR(subscribe(&holder->find_sub_, findSubject(options.site), onFindMessage));
  FLEETLET_RETURN_IF_ERROR(
      subscribe(&holder->get_sub_, getSubject(options.site, options.node), onGetMessage));
  return holder;
}

BlobHolder::~BlobHolder() {
  for (natsSubscription* sub : {find_sub_, get_sub_}) {
    if (sub != nullptr) (void)natsSubscription_Unsubscribe(sub);
  }
  {
    // Handlers in progress finish first (bounded: each does one disk read).
    std::unique_lock lock(mutex_);
    if (!closed_cv_.wait_for(lock, std::chrono::seconds(10),
                             [this] { return open_subscriptions_ == 0; })) {
      spdlog::warn("blobs: site holder: a request handler did not finish within 10 s");
    }
  }
  for (natsSubscription* sub : {find_sub_, get_sub_}) {
    if (sub != nullptr) natsSubscription_Destroy(sub);
  }
}

void BlobHolder::onClosed() {
  std::lock_guard lock(mutex_);
  --open_subscriptions_;
  closed_cv_.notify_all();
}

void BlobHolder::onFind(std::string_view body, const char* reply) {
  if (reply == nullptr || !isHandle(body)) return;
  auto found = store_.find(body);
  if (!found) return;  // not here (or expired): others answer
  std::string answer = encodeHolderAnswer({.node = hub_.options().node, .metadata = *found});
  if (natsStatus s =
          natsConnection_Publish(hub_.get(), reply, answer.data(), static_cast<int>(answer.size()));
      s != NATS_OK) {
    spdlog::debug("blobs: answering a find for {}: {}", body, natsStatus_GetText(s));
    return;
  }
  ++finds_answered_;
}

void BlobHolder::onGet(std::string_view body, const char* reply) {
  if (reply == nullptr) return;
  int64_t payload = hub_.maxPayload();
  uint64_t limit = payload > kHeadRoom * 2 ? static_cast<uint64_t>(payload - kHeadRoom) : 0;
  std::string answer = answerChunk(body, std::min(limit, kMaxAnswerData));
  if (natsStatus s =
          natsConnection_Publish(hub_.get(), reply, answer.data(), static_cast<int>(answer.size()));
      s != NATS_OK) {
    spdlog::debug("blobs: answering a chunk request: {}", natsStatus_GetText(s));
  }
}

std::string BlobHolder::answerChunk(std::string_view body, uint64_t limit) {
  auto request = parseChunkRequest(body);
  if (!request) return chunkError(false, request.error().message());
  if (limit == 0) return chunkError(false, "not connected to the hub");
  auto found = store_.find(request->handle);
  if (!found) return chunkError(true, found.error().message());
  if (request->offset >= found->bytes) {
    return chunkError(false, fmt::format("offset {} is beyond the end of blob {} ({} bytes)",
                                         request->offset, request->handle, found->bytes));
  }
  uint64_t length = std::min({request->length, limit, found->bytes - request->offset});
  std::string path = store_.contentPath(found->sha256).string();
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    // Deleted by the collector meanwhile: the blob just expired.
    int err = errno;
    return chunkError(err == ENOENT,
                      fmt::format("content of blob {}: {}", request->handle, std::strerror(err)));
  }
  std::string answer = chunkDataHead(request->offset, length);
  std::size_t head = answer.size();
  answer.resize(head + length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd.get(), answer.data() + head + done, length - done,
                        static_cast<off_t>(request->offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return chunkError(
          false, fmt::format("reading blob {} at {}: {}", request->handle, request->offset + done,
                             n == 0 ? "unexpected end" : std::strerror(errno)));
    }
    done += static_cast<uint64_t>(n);
  }
  ++chunks_served_;
  return answer;
}

}  // namespace fleetlet::remote
