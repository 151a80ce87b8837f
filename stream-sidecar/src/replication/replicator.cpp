#include "replication/replicator.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <random>

#include "json/json.h"

namespace fleetlet::streams {

// One ingested source: its ordered consumer and where it stands. Its mutex guards the fields
// below it; nats.c calls onMessage for one feed on one thread at a time.
struct Replicator::Feed {
  Replicator* replicator = nullptr;
  std::string source;
  natsSubscription* sub = nullptr;  // owned by the maintainer (or start() for a restore)
  // Set by the subscription's completion callback: nats.c will call nothing more for it.
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = true;  // guarded by done_mutex

  std::mutex mutex;
  std::int64_t expected = 0;  // next offset to accept (queued for SQLite or stored)
  std::size_t in_flight = 0;  // events accepted (batched or with the store), not yet completed
  // Accepted events not yet handed to the store: while one ingest request of this feed is with
  // the store (`storing`), the events delivered meanwhile gather here and go as the next
  // request, so a catch-up costs one request (and one group commit) per delivery batch.
  std::vector<Event> batch;
  std::size_t batch_bytes = 0;
  bool storing = false;
  std::uint64_t consumer_seq = 0;   // delivery sequence of the last message (consumer restarts)
  bool broken = false;              // rebuild the consumer from the SQLite cursor
  std::uint64_t last_rejected = 0;  // stream sequence of the last message rejected
  std::string blocked;              // why the feed cannot advance ("" when it can)
  std::uint64_t hub_last = 0;       // the stream's last sequence when last read
  std::uint64_t rejected = 0;
};

namespace {

// How long a publish waits for the hub's ack (and a flush for the socket) before the round
// fails and the pump re-reads the stream.
constexpr std::int64_t kAckWaitMs = 10000;
// After a failed round, the messages behind the last one known to be ours that are checked
// one by one (a round publishes at most 1024 events).
constexpr std::uint64_t kMaxRecheck = 4096;

// `code`: a jsErrCode, 0 for none.
std::string natsError(natsStatus s, int code = 0) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = natsStatus_GetText(s);
  if (last != nullptr && *last != '\0' && text != last) text += fmt::format(" ({})", last);
  if (code != 0) text += fmt::format(" [jetstream error {}]", code);
  return text;
}

std::unexpected<Error> natsFail(ErrorCode code, std::string_view what, natsStatus s, int js = 0) {
  return std::unexpected(Error(code, fmt::format("{}: {}", what, natsError(s, js))));
}

std::string randomInstance() {
  std::random_device random;
  return fmt::format("{:08x}{:08x}", random(), random());
}

// The last sequence of stream `name`, or nullopt when it does not exist.
Result<std::optional<std::uint64_t>> streamLastSeq(jsCtx* js, const std::string& name) {
  jsStreamInfo* info = nullptr;
  jsErrCode code{};  // 0 until the server names an error
  natsStatus s = js_GetStreamInfo(&info, js, name.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND) return std::optional<std::uint64_t>();
  if (s != NATS_OK) {
    return natsFail(ErrorCode::kUnavailable, "stream info " + name, s, code);
  }
  std::uint64_t last = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  return std::optional<std::uint64_t>(last);
}

void onNatsMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* feed = static_cast<Replicator::Feed*>(closure);
  jsMsgMetaData* meta = nullptr;
  std::uint64_t seq = 0;
  std::uint64_t consumer_seq = 0;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
    seq = meta->Sequence.Stream;
    consumer_seq = meta->Sequence.Consumer;
    jsMsgMetaData_Destroy(meta);
  }
  if (seq != 0) {
    feed->replicator->onMessage(
        *feed,
        std::string_view(natsMsg_GetData(msg),
                         static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
        seq, consumer_seq);
  }
  natsMsg_Destroy(msg);
}

void onSubscriptionDone(void* closure) {
  auto* feed = static_cast<Replicator::Feed*>(closure);
  {
    std::lock_guard lock(feed->done_mutex);
    feed->done = true;
  }
  feed->done_cv.notify_all();
}

void onDisconnected(natsConnection*, void* closure) {
  static_cast<Replicator*>(closure)->onConnection(false);
}
void onConnected(natsConnection*, void* closure) {
  static_cast<Replicator*>(closure)->onConnection(true);
}

void onPublishAckError(jsCtx*, jsPubAckErr* pae, void* closure) {
  std::string text = pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
  static_cast<Replicator*>(closure)->onPublishError(std::move(text),
                                                    static_cast<int>(pae->ErrCode));
}

void onNatsAsyncError(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
  static_cast<Replicator*>(closure)->onAsyncError(err);
}

void onIdentityRequest(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
  const auto* instance = static_cast<const std::string*>(closure);
  if (const char* reply = natsMsg_GetReply(msg); reply != nullptr) {
    (void)natsConnection_PublishString(nc, reply, instance->c_str());
  }
  natsMsg_Destroy(msg);
}

}  // namespace

Result<std::vector<std::string>> splitHubUrls(std::string_view text) {
  std::vector<std::string> urls;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view url = text.substr(start, comma - start);
    if (url.empty()) {
      return fail(ErrorCode::kInvalidArgument, "--nats '{}': empty URL in the list", text);
    }
    urls.emplace_back(url);
    start = comma + 1;
  }
  return urls;
}

void PumpWake::notify() {
  {
    std::lock_guard lock(mutex);
    pending = true;
  }
  cv.notify_all();
}

Replicator::Replicator(ReplicationOptions options, EventStore& store,
                       std::shared_ptr<PumpWake> wake)
    : options_(std::move(options)),
      store_(store),
      source_(store.sourceId()),
      subject_(sourceSubject(options_.site, source_)),
      stream_(sourceStream(options_.site, source_)),
      instance_(randomInstance()),
      wake_(std::move(wake)) {}

void PumpWake::committed(const std::vector<std::shared_ptr<const Event>>& events,
                         std::string_view own_source) {
  for (const auto& e : events) {
    if (e->source == own_source) {
      notify();
      return;
    }
  }
}

Result<std::unique_ptr<Replicator>> Replicator::start(ReplicationOptions options, EventStore& store,
                                                      std::shared_ptr<PumpWake> wake) {
  FLEETLET_RETURN_IF_ERROR(checkSiteName(options.site));
  FLEETLET_RETURN_IF_ERROR(checkReplicatedSource(store.sourceId()));
  if (options.urls.empty()) return fail(ErrorCode::kInvalidArgument, "no hub URL");
  if (options.stream_replicas != 1 && options.stream_replicas != 3) {
    return fail(ErrorCode::kInvalidArgument, "--stream-replicas must be 1 or 3");
  }
  std::unique_ptr<Replicator> r(new Replicator(std::move(options), store, std::move(wake)));
  FLEETLET_RETURN_IF_ERROR(r->connect());
  auto deadline = std::chrono::steady_clock::now() + r->options_.connect_timeout;
  while (!r->connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (r->connected()) {
    r->onConnection(true);  // nats.c calls back only for a connection made in the background
    FLEETLET_RETURN_IF_ERROR(r->checkIdentity());
    // A stream the hub will not create (limits, permissions) is the pump's to report; the
    // node serves regardless.
    if (auto last = r->ownStreamLastSeq(); !last) {
      spdlog::warn("[replication] {}", last.error().message());
    } else {
      FLEETLET_RETURN_IF_ERROR(r->restoreOwnLog(*last));
    }
  } else {
    spdlog::warn(
        "[replication] hub {} not reachable within {} ms; serving without it, "
        "replicating once it is",
        fmt::join(r->options_.urls, ","), r->options_.connect_timeout.count());
  }
  r->wake_->notify();  // the pump's first round at once
  r->pump_ = std::thread([p = r.get()] { p->pumpLoop(); });
  r->maintainer_ = std::thread([p = r.get()] { p->maintainLoop(); });
  return r;
}

Status Replicator::connect() {
  natsOptions* opts = nullptr;
  if (natsStatus s = natsOptions_Create(&opts); s != NATS_OK) {
    return natsFail(ErrorCode::kInternal, "nats options", s);
  }
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard(opts, natsOptions_Destroy);
  std::vector<const char*> urls;
  urls.reserve(options_.urls.size());
  for (const auto& u : options_.urls) urls.push_back(u.c_str());
  std::string name = fmt::format("fleetlet-streams {} {}", options_.site, source_);
  auto check = [](natsStatus s, std::string_view what) -> Status {
    if (s != NATS_OK) return natsFail(ErrorCode::kInvalidArgument, what, s);
    return {};
  };
  FLEETLET_RETURN_IF_ERROR(
      check(natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "--nats"));
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetName(opts, name.c_str()), "name"));
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetMaxReconnect(opts, -1), "reconnect"));
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetReconnectWait(opts, 250), "reconnect wait"));
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetTimeout(opts, 2000), "timeout"));
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetPingInterval(opts, 5000), "ping"));
  // One delivery thread for every consumer: order per consumer is kept.
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_UseGlobalMessageDelivery(opts, true), "delivery"));
  // Our own identity requests must not reach our own responder.
  FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetNoEcho(opts, true), "no echo"));
  // Slow consumers (messages dropped past the pending limits), missed heartbeats and failed
  // consumer re-creations are otherwise silent.
  FLEETLET_RETURN_IF_ERROR(
      check(natsOptions_SetErrorHandler(opts, onNatsAsyncError, this), "errors"));
  FLEETLET_RETURN_IF_ERROR(
      check(natsOptions_SetDisconnectedCB(opts, onDisconnected, this), "callbacks"));
  FLEETLET_RETURN_IF_ERROR(
      check(natsOptions_SetReconnectedCB(opts, onConnected, this), "callbacks"));
  FLEETLET_RETURN_IF_ERROR(
      check(natsOptions_SetRetryOnFailedConnect(opts, true, onConnected, this), "retry"));
  if (!options_.user.empty()) {
    FLEETLET_RETURN_IF_ERROR(
        check(natsOptions_SetUserInfo(opts, options_.user.c_str(), options_.password.c_str()),
              "--nats-user"));
  }
  if (!options_.credentials_file.empty()) {
    FLEETLET_RETURN_IF_ERROR(check(
        natsOptions_SetUserCredentialsFromFiles(opts, options_.credentials_file.c_str(), nullptr),
        "--nats-creds"));
  }
  if (!options_.tls_ca.empty()) {
    FLEETLET_RETURN_IF_ERROR(check(natsOptions_SetSecure(opts, true), "--nats-tls-ca"));
    FLEETLET_RETURN_IF_ERROR(check(
        natsOptions_LoadCATrustedCertificates(opts, options_.tls_ca.c_str()), "--nats-tls-ca"));
  }
  if (!options_.tls_cert.empty()) {
    FLEETLET_RETURN_IF_ERROR(check(natsOptions_LoadCertificatesChain(
                                       opts, options_.tls_cert.c_str(), options_.tls_key.c_str()),
                                   "--nats-tls-cert/--nats-tls-key"));
  }
  natsStatus s = natsConnection_Connect(&nc_, opts);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return natsFail(ErrorCode::kUnavailable, "connect to the hub", s);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  jo.PublishAsync.MaxPending = 4096;
  jo.PublishAsync.ErrHandler = onPublishAckError;
  jo.PublishAsync.ErrHandlerClosure = this;
  if (s = natsConnection_JetStream(&js_, nc_, &jo); s != NATS_OK) {
    return natsFail(ErrorCode::kInternal, "jetstream context", s);
  }
  return {};
}

bool Replicator::connected() const {
  return nc_ != nullptr && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

void Replicator::onConnection(bool up) {
  {
    std::lock_guard lock(mutex_);
    if (up) {
      char url[256] = {0};
      if (natsConnection_GetConnectedUrl(nc_, url, sizeof url) == NATS_OK) hub_url_ = url;
      if (hub_connected_) return;
      hub_connected_ = true;
      ++connects_;
      // Consumers on the hub may be gone (a restarted server): rebuild them from SQLite.
      for (auto& [source, feed] : feeds_) {
        std::lock_guard feed_lock(feed->mutex);
        feed->broken = true;
      }
      identity_checked_ = false;
    } else {
      if (!hub_connected_) return;
      hub_connected_ = false;
      ++disconnects_;
    }
  }
  spdlog::info("[replication] hub {}", up ? "connected" : "disconnected");
  resync_ = true;
  wake_->notify();
  cv_.notify_all();
}

Status Replicator::checkIdentity() {
  natsMsg* reply = nullptr;
  std::string subject = whoSubject(options_.site, source_);
  natsStatus s = natsConnection_RequestString(&reply, nc_, subject.c_str(), instance_.c_str(), 500);
  if (s == NATS_OK) {
    std::string holder(natsMsg_GetData(reply),
                       static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    if (holder != instance_) {
      return fail(ErrorCode::kAlreadyExists,
                  "source id '{}' is in use by another node on site '{}' (instance {}); give "
                  "this node its own --source-id",
                  source_, options_.site, holder);
    }
  }
  // No responders or a timeout: nobody else holds it now. Answer for it from now on.
  FLEETLET_RETURN_IF_ERROR(answerIdentity());
  std::lock_guard lock(mutex_);
  identity_checked_ = true;
  return {};
}

Status Replicator::answerIdentity() {
  if (identity_sub_ != nullptr) return {};
  natsSubscription* sub = nullptr;
  std::string subject = whoSubject(options_.site, source_);
  natsStatus s = natsConnection_Subscribe(&sub, nc_, subject.c_str(), onIdentityRequest,
                                          const_cast<std::string*>(&instance_));
  if (s != NATS_OK) return natsFail(ErrorCode::kUnavailable, "subscribe " + subject, s);
  identity_sub_ = sub;
  return {};
}

Result<std::uint64_t> Replicator::ownStreamLastSeq() {
  FLEETLET_ASSIGN_OR_RETURN(auto last, streamLastSeq(js_, stream_));
  if (last) return *last;
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {subject_.c_str()};
  cfg.Name = stream_.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Discard = js_DiscardNew;
  cfg.MaxBytes = options_.stream_max_bytes;
  cfg.MaxMsgs = options_.stream_max_msgs;
  cfg.MaxMsgSize = static_cast<std::int32_t>(options_.max_event_bytes);
  cfg.Replicas = options_.stream_replicas;
  cfg.DenyDelete = true;
  cfg.DenyPurge = true;
  cfg.AllowDirect = true;
  cfg.Duplicates = 1000LL * 1000 * 1000;  // 1 s: no message ids are used
  jsStreamInfo* info = nullptr;
  jsErrCode code{};  // 0 until the server names an error
  natsStatus s = js_AddStream(&info, js_, &cfg, nullptr, &code);
  if (s != NATS_OK) {
    return natsFail(ErrorCode::kUnavailable, "create stream " + stream_, s, code);
  }
  std::uint64_t seq = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  spdlog::info("[replication] created stream {} on {}", stream_, subject_);
  return seq;
}

Result<std::string> Replicator::checkOwnStreamTail(std::uint64_t last) {
  natsMsg* msg = nullptr;
  jsErrCode code{};  // 0 until the server names an error
  natsStatus s = js_GetMsg(&msg, js_, stream_.c_str(), last, nullptr, &code);
  if (s != NATS_OK) {
    return natsFail(ErrorCode::kUnavailable, fmt::format("read message {} of {}", last, stream_), s,
                    code);
  }
  std::string body(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  natsMsg_Destroy(msg);
  const auto offset = static_cast<std::int64_t>(last) - 1;
  QuerySpec spec{{Filter{}}, Order::kSourceOrdered, {{source_, offset - 1}}, {{source_, offset}}};
  Cursor cursor;
  FLEETLET_ASSIGN_OR_RETURN(auto page, store_.readPage(spec, cursor, PageLimit{.events = 1}));
  if (page.events.size() != 1 || page.events[0].offset != offset) {
    return fail(ErrorCode::kInternal, "local log has no event at offset {} of {}", offset, source_);
  }
  const Event& mine = page.events[0];
  auto theirs = parseReplicatedEvent(body, source_, last, options_.max_event_bytes);
  if (!theirs) {
    return fmt::format("message {} of stream {} is not this node's event at offset {} ({}: {})",
                       last, stream_, offset, toString(theirs.error().reason),
                       theirs.error().message);
  }
  auto samePayload = [](const std::string& x, const std::string& y) {
    if (x == y) return true;
    auto px = Json::parse(x, nullptr, false);
    return !px.is_discarded() && px == Json::parse(y, nullptr, false);
  };
  if (theirs->semantics != mine.semantics || theirs->name != mine.name ||
      theirs->timestamp != mine.timestamp || theirs->lamport != mine.lamport ||
      theirs->app != mine.app || !samePayload(theirs->payload, mine.payload)) {
    return fmt::format(
        "message {} of stream {} differs from this node's event at offset {} (lamport {} vs "
        "{}, timestamp {} vs {})",
        last, stream_, offset, theirs->lamport, mine.lamport, theirs->timestamp, mine.timestamp);
  }
  return std::string();
}

Status Replicator::restoreOwnLog(std::uint64_t hub_last) {
  auto localNext = [this] {
    auto offsets = store_.offsets();
    auto it = offsets.find(source_);
    return it == offsets.end() ? std::int64_t{0} : it->second + 1;
  };
  std::int64_t local = localNext();
  if (static_cast<std::int64_t>(hub_last) <= local) return {};
  spdlog::info(
      "[replication] the hub holds offsets {}..{} of this node's source {}; restoring "
      "them before publishing",
      local, hub_last - 1, source_);
  Feed feed;
  feed.replicator = this;
  feed.source = source_;
  feed.expected = local;
  FLEETLET_RETURN_IF_ERROR(subscribe(feed));
  auto last_progress = std::chrono::steady_clock::now();
  std::int64_t seen = local;
  Status result;
  while (true) {
    std::int64_t now = localNext();
    if (now >= static_cast<std::int64_t>(hub_last)) break;
    if (now > seen) {
      seen = now;
      last_progress = std::chrono::steady_clock::now();
    }
    std::string blocked;
    {
      std::lock_guard lock(feed.mutex);
      blocked = feed.blocked;
    }
    if (!blocked.empty()) {
      result = fail(ErrorCode::kFailedPrecondition, "restore of {} stopped at offset {}: {}",
                    source_, now, blocked);
      break;
    }
    if (std::chrono::steady_clock::now() - last_progress > options_.restore_stall_timeout) {
      result =
          fail(ErrorCode::kUnavailable, "restore of {} made no progress at offset {} for {} ms",
               source_, now, options_.restore_stall_timeout.count());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  unsubscribe(feed);
  if (result) spdlog::info("[replication] restored {} events of {}", hub_last - local, source_);
  return result;
}

Status Replicator::subscribe(Feed& feed) {
  std::string subject = sourceSubject(options_.site, feed.source);
  std::string stream = sourceStream(options_.site, feed.source);
  std::int64_t start;
  {
    std::lock_guard lock(feed.mutex);
    start = feed.expected + 1;
    feed.broken = false;
    feed.consumer_seq = 0;
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = static_cast<std::uint64_t>(start);
  {
    std::lock_guard lock(feed.done_mutex);
    feed.done = false;
  }
  jsErrCode code{};  // 0 until the server names an error
  natsSubscription* sub = nullptr;
  natsStatus s =
      js_Subscribe(&sub, js_, subject.c_str(), onNatsMessage, &feed, nullptr, &so, &code);
  if (s != NATS_OK) {
    std::lock_guard lock(feed.done_mutex);
    feed.done = true;
    return natsFail(ErrorCode::kUnavailable, "consume " + stream, s, code);
  }
  (void)natsSubscription_SetOnCompleteCB(sub, onSubscriptionDone, &feed);
  (void)natsSubscription_SetPendingLimits(sub, 65536, 64 * 1024 * 1024);
  feed.sub = sub;
  spdlog::debug("[replication] consuming {} from sequence {}", stream, start);
  return {};
}

void Replicator::unsubscribe(Feed& feed) {
  if (feed.sub == nullptr) return;
  (void)natsSubscription_Unsubscribe(feed.sub);
  {
    // nats.c calls the completion callback after the last message callback; with the
    // connection closed it may never come, hence the bound.
    std::unique_lock lock(feed.done_mutex);
    feed.done_cv.wait_for(lock, std::chrono::seconds(5), [&] { return feed.done; });
  }
  natsSubscription_Destroy(feed.sub);
  feed.sub = nullptr;
  // Wait for the store to complete what this feed handed it.
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] {
    std::lock_guard feed_lock(feed.mutex);
    return feed.in_flight == 0;
  });
}

void Replicator::onMessage(Feed& feed, std::string_view body, std::uint64_t seq,
                           std::uint64_t consumer_seq) {
  std::optional<Event> event;
  std::optional<Rejection> rejection;
  bool restarted = false;
  {
    std::lock_guard lock(feed.mutex);
    // nats.c re-creates an ordered consumer (delivery sequence back to 1) after a gap it saw.
    restarted = consumer_seq != 0 && consumer_seq <= feed.consumer_seq;
    feed.consumer_seq = consumer_seq;
    const std::int64_t offset = static_cast<std::int64_t>(seq) - 1;
    if (offset < feed.expected) {
      // already stored or accepted (a rebuilt consumer's overlap)
    } else if (offset > feed.expected) {
      // After a rejected message nothing can follow; otherwise the consumer skipped.
      if (feed.blocked.empty()) feed.broken = true;
    } else if (auto parsed = parseReplicatedEvent(body, feed.source, seq, options_.max_event_bytes);
               !parsed) {
      if (seq > feed.last_rejected) {
        feed.last_rejected = seq;
        feed.rejected++;
        feed.blocked = fmt::format("message {} rejected ({}): {}", seq,
                                   toString(parsed.error().reason), parsed.error().message);
        spdlog::warn("[replication] {}: {}", sourceStream(options_.site, feed.source),
                     feed.blocked);
        rejection = parsed.error().reason;
      }
    } else {
      event = std::move(*parsed);
      feed.expected++;
      feed.in_flight++;
    }
  }
  if (rejection || restarted) {
    std::lock_guard lock(mutex_);  // after the feed's mutex is released (lock order)
    if (rejection) rejected_[static_cast<std::size_t>(*rejection)]++;
    if (restarted) consumer_restarts_++;
  }
  if (!event) return;
  const std::size_t bytes = eventBytes(*event);
  {
    // Bounded memory: wait while a window of ingested events (or bytes) is not committed yet;
    // an empty window always takes one event, however large.
    std::unique_lock lock(mutex_);
    auto fits = [&] {
      return stopping_ || in_flight_ == 0 ||
             (in_flight_ < options_.ingest_window &&
              in_flight_bytes_ + bytes <= options_.ingest_window_bytes);
    };
    if (!fits()) {
      auto waited = std::chrono::steady_clock::now();
      cv_.wait(lock, fits);
      ingest_window_waits_++;
      ingest_window_wait_us_ +=
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now() - waited)
                                         .count());
    }
    in_flight_++;
    in_flight_bytes_ += bytes;
  }
  std::vector<Event> submit;
  std::size_t submit_bytes = 0;
  {
    std::lock_guard lock(feed.mutex);
    feed.batch.push_back(std::move(*event));
    feed.batch_bytes += bytes;
    if (!feed.storing) {
      feed.storing = true;
      submit.swap(feed.batch);
      submit_bytes = std::exchange(feed.batch_bytes, 0);
    }
  }
  if (!submit.empty()) ingestBatch(feed, std::move(submit), submit_bytes);
}

void Replicator::ingestBatch(Feed& feed, std::vector<Event> events, std::size_t bytes) {
  const std::size_t count = events.size();
  {
    std::lock_guard lock(mutex_);
    ingest_requests_++;
  }
  store_.ingest(std::move(events),
                [this, &feed, count, bytes](Status s) { ingestDone(feed, count, bytes, s); });
}

void Replicator::ingestDone(Feed& feed, std::size_t events, std::size_t bytes,
                            const Status& status) {
  std::vector<Event> next;
  std::size_t next_bytes = 0;
  {
    std::lock_guard lock(mutex_);
    in_flight_ -= events;
    in_flight_bytes_ -= bytes;
    std::lock_guard feed_lock(feed.mutex);
    feed.in_flight -= events;
    feed.storing = false;
    if (!status) {
      spdlog::warn("[replication] ingest of {}: {}", feed.source, status.error().describe());
      feed.broken = true;
      // What gathered behind the failed request cannot follow on: drop it; the rebuilt
      // consumer starts again from the SQLite cursor.
      in_flight_ -= feed.batch.size();
      in_flight_bytes_ -= feed.batch_bytes;
      feed.in_flight -= feed.batch.size();
      feed.batch.clear();
      feed.batch_bytes = 0;
    } else if (!feed.batch.empty()) {
      feed.storing = true;
      next.swap(feed.batch);
      next_bytes = std::exchange(feed.batch_bytes, 0);
    }
  }
  cv_.notify_all();
  if (!next.empty()) ingestBatch(feed, std::move(next), next_bytes);
}

void Replicator::onAsyncError(int status) {
  const auto s = static_cast<natsStatus>(status);
  {
    std::lock_guard lock(mutex_);
    if (s == NATS_SLOW_CONSUMER) {
      slow_consumers_++;
    } else if (s == NATS_MISSED_HEARTBEAT) {
      missed_heartbeats_++;
    } else {
      async_errors_++;
    }
  }
  spdlog::warn("[replication] hub connection: {}", natsError(s));
}

void Replicator::onPublishError(std::string error, int code) {
  // The first failure of a round is its cause: the publishes after it, already in flight, then
  // fail on their expected last sequence (10071), which would hide e.g. a full stream.
  if (publish_failed_.exchange(true)) return;
  std::lock_guard lock(mutex_);
  pump_error_ = code != 0 ? fmt::format("{} [jetstream error {}]", error, code) : error;
}

void Replicator::setPumpState(std::string state, std::string error) {
  std::lock_guard lock(mutex_);
  if (pump_state_ != state) {
    bool notable = state == "conflict" || state == "error" || state == "disconnected";
    spdlog::log(notable ? spdlog::level::warn : spdlog::level::debug, "[replication] pump {}{}{}",
                state, error.empty() ? "" : ": ", error);
  }
  pump_state_ = std::move(state);
  if (!error.empty()) pump_error_ = std::move(error);
}

void Replicator::pumpLoop() {
  while (!stopping_) {
    {
      std::unique_lock lock(wake_->mutex);
      wake_->cv.wait_for(lock, std::chrono::seconds(1),
                         [&] { return stopping_ || wake_->pending; });
      wake_->pending = false;
    }
    if (stopping_) break;
    if (!connected()) {
      setPumpState("disconnected");
      continue;
    }
    bool identity;
    {
      std::lock_guard lock(mutex_);
      identity = identity_checked_;
    }
    if (!identity) {
      if (auto s = checkIdentity(); !s) {
        setPumpState("conflict", s.error().message());
        continue;
      }
    }
    if (resync_.exchange(false)) {
      // A round that cannot start: re-read the stream at the next wake (a second later, or at
      // the next commit or reconnect); an error counts, a conflict waits for a person.
      auto stopRound = [this](std::string state, std::string why) {
        resync_ = true;
        const bool error = state == "error";
        setPumpState(std::move(state), std::move(why));
        if (error) {
          std::lock_guard lock(mutex_);
          pump_errors_++;
        }
      };
      auto last = ownStreamLastSeq();
      if (!last) {
        stopRound("error", last.error().message());
        continue;
      }
      auto offsets = store_.offsets();
      auto own = offsets.find(source_);
      std::int64_t local = own == offsets.end() ? 0 : own->second + 1;
      if (static_cast<std::int64_t>(*last) > local) {
        // The hub has more of our source than we do: another node wrote it, or this node
        // lost data it had published. Never overwrite; report and check again later.
        stopRound("conflict",
                  fmt::format("stream {} holds {} events but this node's log has {}: another "
                              "node uses source id '{}', or this node lost its data (restart "
                              "it to restore from the hub); not publishing",
                              stream_, *last, local, source_));
        continue;
      }
      // The count alone does not prove the stream is ours: a message another client wrote
      // (admin credentials, a hub without per-node permissions) may have taken a sequence.
      // Every message after the last one known to be ours is checked: a round whose first
      // publish failed on such a message can still have had a later one of its publishes
      // accepted behind it (its expected sequence matched again, one further on). With
      // nothing known yet (start), or more than a few rounds' worth, only the last one is.
      std::uint64_t verified;
      {
        std::lock_guard lock(mutex_);
        verified = static_cast<std::uint64_t>(std::max<std::int64_t>(published_, 0));
      }
      std::uint64_t first = *last;
      if (verified > 0 && verified < *last && *last - verified <= kMaxRecheck) first = verified + 1;
      bool stopped = false;
      for (std::uint64_t seq = first; seq > 0 && seq <= *last && !stopped; ++seq) {
        auto tail = checkOwnStreamTail(seq);
        if (!tail) {
          stopRound("error", tail.error().message());
          stopped = true;
        } else if (!tail->empty()) {
          stopRound("conflict",
                    *tail + "; another client wrote to this node's stream; not publishing");
          stopped = true;
        }
      }
      if (stopped) continue;
      std::lock_guard lock(mutex_);
      published_ = static_cast<std::int64_t>(*last);
    }
    if (!publishBacklog()) {
      // Re-read the stream and resume on the next round: a second later, or at the next
      // commit or reconnect.
      resync_ = true;
      std::lock_guard lock(mutex_);
      pump_errors_++;
    }
  }
}

bool Replicator::publishBacklog() {
  while (!stopping_) {
    std::int64_t from;
    {
      std::lock_guard lock(mutex_);
      from = published_;
    }
    auto offsets = store_.offsets();
    auto own = offsets.find(source_);
    if (own == offsets.end() || own->second < from) {
      setPumpState("idle");
      return true;
    }
    setPumpState("publishing");
    QuerySpec spec{
        {Filter{}}, Order::kSourceOrdered, {{source_, from - 1}}, {{source_, own->second}}};
    Cursor cursor;
    auto page = store_.readPage(spec, cursor, PageLimit{.events = 1024});
    if (!page) {
      setPumpState("error", page.error().message());
      return false;
    }
    publish_failed_ = false;
    std::int64_t next = from;
    for (const auto& e : page->events) {
      if (e.offset != next) {
        setPumpState("error", fmt::format("local log read offset {} for {}", e.offset, next));
        return false;
      }
      std::string body = replicatedEventJson(e);
      natsMsg* msg = nullptr;
      natsStatus s = natsMsg_Create(&msg, subject_.c_str(), nullptr, body.data(),
                                    static_cast<int>(body.size()));
      if (s != NATS_OK) {
        setPumpState("error", natsError(s));
        return false;
      }
      jsPubOptions po;
      jsPubOptions_Init(&po);
      // An ack the hub never sends (its server died with the publish in flight) fails through
      // onPublishAckError after this long instead of being waited for forever.
      po.MaxWait = kAckWaitMs;
      if (e.offset == 0) {
        po.ExpectNoMessage = true;  // 0 in ExpectLastSeq means "unset"
      } else {
        po.ExpectLastSeq = static_cast<std::uint64_t>(e.offset);
      }
      s = js_PublishMsgAsync(js_, &msg, &po);
      if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        setPumpState("error", fmt::format("publish offset {} ({} bytes): {}", e.offset, body.size(),
                                          natsError(s)));
        abandonRound();
        return false;
      }
      ++next;
    }
    // nats.c buffers publishes and its flusher thread writes them out after a 1 ms pause
    // (to gather more); a flush sends the round at once, which took ~1 ms off every event's
    // replication latency (docs/replication.md, "Latency").
    natsStatus flushed = natsConnection_FlushTimeout(nc_, kAckWaitMs);
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = kAckWaitMs;
    natsStatus s = js_PublishAsyncComplete(js_, &wait);
    if (s == NATS_OK && flushed != NATS_OK) s = flushed;
    if (s != NATS_OK || publish_failed_) {
      std::string error;
      {
        std::lock_guard lock(mutex_);
        error = pump_error_;
      }
      setPumpState("error", s != NATS_OK ? natsError(s) : error);
      abandonRound();
      return false;
    }
    std::lock_guard lock(mutex_);
    published_events_ += static_cast<std::uint64_t>(next - from);
    published_ = next;
  }
  return true;
}

void Replicator::abandonRound() {
  // Each publish carries MaxWait, so the library fails its unanswered acks by then; the bound
  // here only guards against a library that does not.
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = kAckWaitMs + 1000;
  if (js_PublishAsyncComplete(js_, &wait) == NATS_OK) return;
  // Still pending: take them back so no late ack or failure of this round reaches the next.
  natsMsgList pending{};
  if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) {
    spdlog::warn("[replication] dropped {} publishes the hub never answered", pending.Count);
    natsMsgList_Destroy(&pending);
  }
}

void Replicator::maintainLoop() {
  while (!stopping_) {
    if (connected()) discover();
    std::vector<Feed*> rebuild;
    {
      std::lock_guard lock(mutex_);
      for (auto& [source, feed] : feeds_) {
        std::lock_guard feed_lock(feed->mutex);
        if (feed->sub == nullptr || feed->broken) rebuild.push_back(feed.get());
      }
    }
    if (connected()) {
      for (Feed* feed : rebuild) {
        unsubscribe(*feed);
        // Every ingest of this feed completed: SQLite is the cursor.
        auto stored = store_.offsets();
        auto it = stored.find(feed->source);
        {
          std::lock_guard lock(feed->mutex);
          feed->expected = it == stored.end() ? 0 : it->second + 1;
        }
        if (auto s = subscribe(*feed); !s) {
          spdlog::warn("[replication] {}", s.error().message());
        }
      }
    }
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, options_.discovery_interval, [&] {
      if (stopping_) return true;
      for (auto& [source, feed] : feeds_) {
        std::lock_guard feed_lock(feed->mutex);
        if (feed->broken && hub_connected_) return true;
      }
      return false;
    });
  }
}

void Replicator::discover() {
  // Every stream of the account; ours are told by their one subject below. (No subjects
  // filter: with one, the server also computes each stream's per-subject state, every
  // second, for every node.)
  jsStreamInfoList* list = nullptr;
  jsErrCode code{};  // 0 until the server names an error
  natsStatus s = js_Streams(&list, js_, nullptr, &code);
  if (s == NATS_NOT_FOUND) return;  // no streams yet
  if (s != NATS_OK) {
    spdlog::debug("[replication] list streams: {}", natsError(s, code));
    return;
  }
  std::lock_guard lock(mutex_);
  for (int i = 0; i < list->Count; ++i) {
    const jsStreamInfo* info = list->List[i];
    if (info->Config == nullptr || info->Config->SubjectsLen != 1) continue;
    auto source = sourceOfSubject(options_.site, info->Config->Subjects[0]);
    if (!source || info->Config->Name != sourceStream(options_.site, *source)) continue;
    if (*source == source_) continue;
    auto& feed = feeds_[*source];
    if (!feed) {
      feed = std::make_unique<Feed>();
      feed->replicator = this;
      feed->source = *source;
      spdlog::info("[replication] following source {}", *source);
    }
    std::lock_guard feed_lock(feed->mutex);
    feed->hub_last = info->State.LastSeq;
  }
  jsStreamInfoList_Destroy(list);
}

Replicator::~Replicator() {
  stopping_ = true;
  wake_->notify();
  cv_.notify_all();
  if (pump_.joinable()) pump_.join();
  if (maintainer_.joinable()) maintainer_.join();
  if (js_ != nullptr) abandonRound();
  std::vector<Feed*> feeds;
  {
    std::lock_guard lock(mutex_);
    for (auto& [source, feed] : feeds_) feeds.push_back(feed.get());
  }
  for (Feed* feed : feeds) unsubscribe(*feed);
  if (identity_sub_ != nullptr) {
    auto* sub = static_cast<natsSubscription*>(identity_sub_);
    (void)natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

std::string Replicator::statusJson() const {
  auto offsets = store_.offsets();
  auto localNext = [&](const std::string& source) {
    auto it = offsets.find(source);
    return it == offsets.end() ? std::int64_t{0} : it->second + 1;
  };
  std::lock_guard lock(mutex_);
  Json sources = Json::object();
  for (const auto& [source, feed] : feeds_) {
    std::lock_guard feed_lock(feed->mutex);
    std::int64_t local = localNext(source);
    std::int64_t hub = static_cast<std::int64_t>(feed->hub_last);
    Json s = {{"hub", hub},
              {"local", local},
              {"lag", std::max<std::int64_t>(0, hub - local)},
              {"state", !feed->blocked.empty() ? "blocked"
                        : feed->sub == nullptr ? "waiting"
                                               : "following"},
              {"rejected", feed->rejected}};
    if (!feed->blocked.empty()) s["reason"] = feed->blocked;
    sources[source] = std::move(s);
  }
  Json rejected = Json::object();
  for (std::size_t i = 0; i < kRejectionCount; ++i) {
    rejected[std::string(toString(static_cast<Rejection>(i)))] = rejected_[i];
  }
  std::int64_t local = localNext(source_);
  Json pump = {{"state", pump_state_},
               {"local", local},
               {"published", published_ < 0 ? Json(nullptr) : Json(published_)},
               {"backlog", published_ < 0 ? Json(nullptr)
                                          : Json(std::max<std::int64_t>(0, local - published_))},
               {"events", published_events_},
               {"errors", pump_errors_}};
  if (!pump_error_.empty()) pump["lastError"] = pump_error_;
  Json status = {{"enabled", true},
                 {"site", options_.site},
                 {"source", source_},
                 {"stream", stream_},
                 {"subject", subject_},
                 {"hub",
                  {{"connected", hub_connected_},
                   {"url", hub_url_},
                   {"disconnects", disconnects_},
                   {"connects", connects_},
                   {"slowConsumers", slow_consumers_},
                   {"missedHeartbeats", missed_heartbeats_},
                   {"errors", async_errors_}}},
                 {"ingest",
                  {{"requests", ingest_requests_},
                   {"inFlight", in_flight_},
                   {"windowWaits", ingest_window_waits_},
                   {"windowWaitMs", ingest_window_wait_us_ / 1000},
                   {"consumerRestarts", consumer_restarts_}}},
                 {"pump", std::move(pump)},
                 {"sources", std::move(sources)},
                 {"rejected", std::move(rejected)}};
  return status.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void Replicator::writeMetrics(metrics::TextWriter& out) const {
  using metrics::Type;
  auto status = Json::parse(statusJson());
  auto one = [&out](const char* name, Type type, const char* help, double value) {
    if (out.family(name, type, help)) out.sample({}, value);
  };
  auto number = [](const Json& j) { return j.is_number() ? j.get<double>() : -1.0; };
  one("fleetlet_streams_replication_hub_connected", Type::kGauge,
      "1 while the site hub (NATS JetStream) is connected.",
      status["hub"]["connected"].get<bool>() ? 1 : 0);
  one("fleetlet_streams_replication_hub_disconnects_total", Type::kCounter,
      "Times the hub connection was lost.", number(status["hub"]["disconnects"]));
  one("fleetlet_streams_replication_slow_consumers_total", Type::kCounter,
      "Times the hub client fell behind (NATS slow consumer).",
      number(status["hub"]["slowConsumers"]));
  one("fleetlet_streams_replication_consumer_restarts_total", Type::kCounter,
      "Ordered consumers restarted.", number(status["ingest"]["consumerRestarts"]));
  one("fleetlet_streams_replication_ingest_requests_total", Type::kCounter,
      "Batches of other sources' events handed to the store.",
      number(status["ingest"]["requests"]));
  one("fleetlet_streams_replication_pump_backlog", Type::kGauge,
      "Local events not yet on the hub (-1: unknown while disconnected).",
      number(status["pump"]["backlog"]));
  if (out.family("fleetlet_streams_replication_pump_state", Type::kGauge,
                 "1 for the publishing pump's current state.")) {
    for (std::string_view state : {"idle", "publishing", "disconnected", "error", "conflict"}) {
      out.sample({{"state", std::string(state)}}, status["pump"]["state"] == state ? 1 : 0);
    }
  }
  one("fleetlet_streams_replication_pump_errors_total", Type::kCounter,
      "Failed publishes to the hub.", number(status["pump"]["errors"]));
  one("fleetlet_streams_replication_published_events_total", Type::kCounter,
      "Local events published to the hub.", number(status["pump"]["events"]));
  if (out.family("fleetlet_streams_replication_source_lag", Type::kGauge,
                 "Events of a source on the hub not yet stored here (replication lag).")) {
    for (const auto& [source, st] : status["sources"].items()) {
      out.sample({{"source", source}}, number(st["lag"]));
    }
  }
  if (out.family("fleetlet_streams_replication_rejected_total", Type::kCounter,
                 "Replicated messages refused, by reason.")) {
    for (const auto& [reason, n] : status["rejected"].items()) {
      out.sample({{"reason", reason}}, number(n));
    }
  }
}

}  // namespace fleetlet::streams
