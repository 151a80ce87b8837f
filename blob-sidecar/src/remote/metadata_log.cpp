#include "remote/metadata_log.h"

#include "events/event_outbox.h"
#include "http/plain_client.h"
#include "json/json.h"
#include "remote/protocol.h"

namespace fleetlet::remote {

EventLogMetadata::EventLogMetadata(std::string events_url, std::chrono::milliseconds timeout)
    : events_url_(std::move(events_url)), timeout_(timeout) {}

Result<std::optional<store::BlobMetadata>> EventLogMetadata::find(std::string_view handle) {
  // A log of many blobs answers with many lines: allow 64 MiB of them.
  const http::PlainClientOptions options{.timeout = timeout_,
                                         .max_body = std::size_t{64} * 1024 * 1024};
  auto unavailable = [&](const Error& error) {
    return std::unexpected(Error(
        ErrorCode::kUnavailable,
        fmt::format("cannot read this node's event log at {}: {}", events_url_, error.message())));
  };
  auto offsets = http::sendPlain({.url = events_url_ + "/api/v1/events/offsets"}, options);
  if (!offsets) return unavailable(offsets.error());
  if (offsets->status != 200) {
    return unavailable(
        Error(ErrorCode::kUnavailable, fmt::format("offsets answered {}", offsets->status)));
  }
  auto upper = parseJson(offsets->body, "offsets");
  if (!upper) return unavailable(upper.error());
  Json query = {
      {"subscriptions",
       {{{"semantics", blobevents::kMetadataSemantics}, {"name", blobevents::kMetadataName}}}},
      {"order", "lamport"},
      {"upperBound", *upper}};
  http::ClientRequest request{.method = "POST", .url = events_url_ + "/api/v1/events/query"};
  request.headers.add("Content-Type", "application/json");
  request.body = query.dump();
  auto answer = http::sendPlain(request, options);
  if (!answer) return unavailable(answer.error());
  if (answer->status != 200) {
    return unavailable(
        Error(ErrorCode::kUnavailable, fmt::format("query answered {}", answer->status)));
  }
  std::string_view lines = answer->body;
  while (!lines.empty()) {
    std::size_t end = lines.find('\n');
    std::string_view line = lines.substr(0, end);
    lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 1);
    if (line.empty()) continue;
    Json event = Json::parse(line, nullptr, false);
    if (!event.is_object() || !event.contains("payload")) continue;
    const Json& payload = event["payload"];
    if (!payload.is_object() || payload.value("handle", "") != handle) continue;
    auto metadata = parseBlobMetadata(payload, "metadata event");
    if (!metadata) {
      return std::unexpected(
          metadata.error().wrap("the metadata event of blob {} in this "
                                "node's event log",
                                handle));
    }
    return std::optional<store::BlobMetadata>(std::move(*metadata));
  }
  return std::optional<store::BlobMetadata>();
}

}  // namespace fleetlet::remote
