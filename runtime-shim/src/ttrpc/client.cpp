#include "ttrpc/client.h"

#include <errno.h>
#include <sys/socket.h>

#include "ttrpc/socket.h"
#include "ttrpc/ttrpc.pb.h"

namespace fleetlet::ttrpc {

Result<std::unique_ptr<Client>> Client::connect(std::string_view address) {
  FLEETLET_ASSIGN_OR_RETURN(UniqueFd fd, connectUnix(address));
  return std::unique_ptr<Client>(new Client(std::move(fd)));
}

Client::Client(UniqueFd fd) : fd_(std::move(fd)) {
  reader_ = std::thread([this] { readLoop(); });
}

Client::~Client() {
  ::shutdown(fd_.get(), SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
}

void Client::failAll(const std::string& why) {
  std::lock_guard lock(mu_);
  if (!broken_) broken_ = why;
  for (auto& [stream, pending] : pending_) {
    pending->done = true;
    pending->result = std::unexpected(RpcStatus{StatusCode::kUnavailable, *broken_});
  }
  pending_.clear();
  cv_.notify_all();
}

void Client::readLoop() {
  FrameDecoder decoder;
  std::string buf(kReadChunk, '\0');
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failAll("ttrpc connection closed");
    decoder.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    while (auto frame = decoder.next()) {
      if (frame->header.type != static_cast<std::uint8_t>(MessageType::kResponse)) continue;
      RpcResult<std::string> result;
      wire::Response response;
      if (frame->oversized) {
        result = std::unexpected(
            RpcStatus{StatusCode::kResourceExhausted, "response exceeds the maximum message size"});
      } else if (!response.ParseFromString(frame->payload)) {
        result = std::unexpected(RpcStatus{StatusCode::kInternal, "unparsable ttrpc Response"});
      } else if (response.has_status() && response.status().code() != 0) {
        result = std::unexpected(RpcStatus{static_cast<StatusCode>(response.status().code()),
                                           response.status().message()});
      } else {
        result = std::move(*response.mutable_payload());
      }
      std::lock_guard lock(mu_);
      auto it = pending_.find(frame->header.stream_id);
      if (it == pending_.end()) continue;  // the caller gave up (timeout)
      it->second->done = true;
      it->second->result = std::move(result);
      pending_.erase(it);
      cv_.notify_all();
    }
  }
}

RpcResult<std::string> Client::call(std::string_view service, std::string_view method,
                                    std::string_view payload, const CallOptions& options) {
  wire::Request request;
  request.set_service(std::string(service));
  request.set_method(std::string(method));
  request.set_payload(std::string(payload));
  if (options.timeout) request.set_timeout_nano(options.timeout->count());
  for (const auto& [k, v] : options.metadata) {
    auto* kv = request.add_metadata();
    kv->set_key(k);
    kv->set_value(v);
  }
  std::string body;
  request.SerializeToString(&body);

  Pending pending;
  std::uint32_t stream = 0;
  {
    std::lock_guard lock(mu_);
    if (broken_) return std::unexpected(RpcStatus{StatusCode::kUnavailable, *broken_});
    stream = next_stream_;
    next_stream_ += 2;
    pending_[stream] = &pending;
  }
  auto frame = encodeFrame(stream, MessageType::kRequest, body);
  bool sent = false;
  if (frame) {
    std::lock_guard lock(write_mu_);
    sent = writeAll(fd_.get(), *frame);
  }
  std::unique_lock lock(mu_);
  if (!frame || !sent) {
    pending_.erase(stream);
    if (!frame) return std::unexpected(RpcStatus::fromError(frame.error()));
    return std::unexpected(RpcStatus{StatusCode::kUnavailable, "ttrpc connection closed"});
  }
  if (options.timeout) {
    if (!cv_.wait_for(lock, *options.timeout, [&] { return pending.done; })) {
      pending_.erase(stream);
      return std::unexpected(RpcStatus{StatusCode::kDeadlineExceeded,
                                       fmt::format("{}/{}: no answer in time", service, method)});
    }
  } else {
    cv_.wait(lock, [&] { return pending.done; });
  }
  return std::move(pending.result);
}

}  // namespace fleetlet::ttrpc
