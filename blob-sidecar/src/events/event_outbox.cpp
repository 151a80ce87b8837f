#include "events/event_outbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "http/plain_client.h"

namespace fleetlet::blobevents {

Json metadataEvent(const Json& metadata) {
  return Json{{"semantics", kMetadataSemantics}, {"name", kMetadataName}, {"payload", metadata}};
}

Status enqueueEvent(sqlite::Database& db, const Json& event) {
  FLEETLET_ASSIGN_OR_RETURN(auto insert, db.prepare("INSERT INTO event_outbox (event) VALUES (?)"));
  FLEETLET_RETURN_IF_ERROR(insert.bind(1, event.dump()));
  return insert.run();
}

std::unique_ptr<EventPublisher> EventPublisher::create(sqlite::Database db,
                                                       PublisherOptions options) {
  return std::unique_ptr<EventPublisher>(new EventPublisher(std::move(db), std::move(options)));
}

EventPublisher::EventPublisher(sqlite::Database db, PublisherOptions options)
    : db_(std::move(db)), options_(std::move(options)) {}

EventPublisher::~EventPublisher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventPublisher::start() {
  thread_ = std::thread([this] { run(); });
}

void EventPublisher::notify() {
  {
    std::lock_guard lock(mutex_);
    pending_ = true;
  }
  wake_.notify_all();
}

int64_t EventPublisher::delivered() const {
  std::lock_guard lock(mutex_);
  return delivered_;
}

void EventPublisher::run() {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (!pending_) {
      wake_.wait(lock, [this] { return stop_ || pending_; });
      continue;
    }
    pending_ = false;
    lock.unlock();
    auto sent = publishBatch();
    lock.lock();
    if (sent && *sent > 0) {
      delivered_ += *sent;
      pending_ = true;  // there may be more
      backoff = options_.initial_backoff;
    } else if (!sent) {
      spdlog::warn("blob events: publishing failed, retrying in {} ms: {}", backoff.count(),
                   sent.error().describe());
      pending_ = true;
      // Only stop cuts the wait short: a notify() during an outage must not cause a storm.
      wake_.wait_for(lock, backoff, [this] { return stop_; });
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

Result<int64_t> EventPublisher::publishBatch() {
  FLEETLET_ASSIGN_OR_RETURN(auto select,
                            db_.prepare("SELECT id, event FROM event_outbox ORDER BY id LIMIT ?"));
  FLEETLET_RETURN_IF_ERROR(select.bind(1, options_.batch));
  Json data = Json::array();
  int64_t last_id = 0;
  int64_t count = 0;
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, select.step());
    if (!row) break;
    last_id = select.columnInt64(0);
    auto event = parseJson(select.columnText(1), "outbox event");
    if (!event) return std::unexpected(event.error());
    data.push_back(std::move(*event));
    ++count;
  }
  if (count == 0) return 0;

  // On Beast, not libcurl: a loopback POST is not worth libcurl's ~4 MiB (plain_client.h).
  http::PlainClientOptions client_options{.timeout = std::chrono::milliseconds(15000),
                                          .max_body = http::Client::kMaxErrorBody};
  http::ClientRequest request;
  request.method = "POST";
  request.url = options_.events_url + "/api/v1/events/publish";
  request.headers.add("Content-Type", "application/json");
  request.body = Json{{"data", std::move(data)}}.dump();
  auto response = http::sendPlain(request, client_options);
  if (!response) return std::unexpected(response.error().wrap("POST {}", request.url));
  bool permanent = response->status == 400 || response->status == 413;
  if (response->status / 100 != 2 && !permanent) {
    return fail(ErrorCode::kUnavailable, "POST {}: HTTP {}: {}", request.url, response->status,
                response->body.substr(0, 200));
  }
  if (permanent) {
    // The service will never take these events; keeping them would block the queue forever.
    spdlog::error("blob events: the event service refused {} event(s) with HTTP {}: {}", count,
                  response->status, response->body.substr(0, 200));
  }
  FLEETLET_ASSIGN_OR_RETURN(auto remove, db_.prepare("DELETE FROM event_outbox WHERE id <= ?"));
  FLEETLET_RETURN_IF_ERROR(remove.bind(1, last_id));
  FLEETLET_RETURN_IF_ERROR(remove.run());
  return count;
}

}  // namespace fleetlet::blobevents
