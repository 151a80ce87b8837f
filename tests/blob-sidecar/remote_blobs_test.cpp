// Blobs from other nodes (docs/replication.md): a real nats-server hub started by
// hack/site-hub.sh (per-node credentials) and two fleetlet-blobs processes on loopback.
// - RemoteBlobsTest: each node's event service is a stand-in (RecordingEventService) whose log
//   the test fills with what replication would have brought: the metadata events of the blobs
//   uploaded elsewhere. A test holder (a plain nats.c client, node h) answers with wrong or
//   malformed bytes or stops answering.
// - SiteBlobsTest: the real thing end to end: beside each fleetlet-blobs runs a real
//   fleetlet-streams (its own source) replicating through the same hub, and each blob service
//   uses its own node's event service.
// A blob uploaded on node a is downloaded on node b by its handle; an admin client counts the
// requests on the hub.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "crypto/sha256.h"
#include "http/client.h"
#include "json/json.h"
#include "os/child_process.h"
#include "service_process.h"
#include "support/blob_client.h"
#include "support/system_state.h"
#include "support/temp_dir.h"

namespace fleetlet::blobtest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kSite = "t";
constexpr auto kPatience = 20s;
constexpr int64_t kFindTimeoutMs = 1500;
constexpr uint64_t kChunk = uint64_t{512} * 1024;

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::size_t countFiles(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

std::string patternBytes(uint64_t bytes, uint32_t seed) {
  std::string out(bytes, '\0');
  fillPattern(0, out.data(), out.size(), seed);
  return out;
}

// The hub, from hack/site-hub.sh in a directory of the test; stopped (only what it started)
// at the end.
class SiteHub {
 public:
  explicit SiteHub(fs::path dir) : dir_(std::move(dir)) {
    run({"start", dir_.string(), "--site", kSite, "--nodes", "a,b,h"});
    for (const std::string& line : split(readText(dir_ / "hub.env"))) {
      if (line.starts_with("NATS_URLS=")) urls_ = line.substr(10);
    }
  }
  ~SiteHub() { run({"stop", dir_.string()}); }
  SiteHub(const SiteHub&) = delete;
  void start() { run({"start", dir_.string()}); }
  void stop() { run({"stop", dir_.string()}); }
  SiteHub& operator=(const SiteHub&) = delete;

  const std::string& urls() const { return urls_; }
  std::string password(const std::string& user) const {
    std::string text = readText(dir_ / (user + ".password"));
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }
  std::vector<std::string> nodeArgs(const std::string& node) const {
    return {"--nats",
            urls_,
            "--site",
            kSite,
            "--source",
            node,
            "--nats-user",
            node,
            "--nats-password-file",
            (dir_ / (node + ".password")).string(),
            "--remote-find-timeout-ms",
            std::to_string(kFindTimeoutMs),
            "--remote-chunk-timeout-ms",
            "1000"};
  }
  // fleetlet-streams' flags for node `node` of this hub (its source id is the node's name).
  std::vector<std::string> streamsArgs(const std::string& node) const {
    return {"--nats",
            urls_,
            "--site",
            kSite,
            "--nats-user",
            node,
            "--nats-password-file",
            (dir_ / (node + ".password")).string()};
  }

 private:
  static std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  void run(std::vector<std::string> args) {
    const char* source_dir = std::getenv("FLEETLET_SOURCE_DIR");
    ASSERT_NE(source_dir, nullptr) << "FLEETLET_SOURCE_DIR is not set (run through ctest)";
    args.insert(args.begin(), std::string(source_dir) + "/hack/site-hub.sh");
    auto out = runCommand({.argv = args, .timeout = 30s});
    ASSERT_TRUE(out) << out.error().message();
    ASSERT_TRUE(out->status.success()) << out->err << out->out;
  }

  fs::path dir_;
  std::string urls_;
};

// A nats.c connection of the test as `user`.
class NatsClient {
 public:
  NatsClient(const SiteHub& hub, const std::string& user) {
    natsOptions* opts = nullptr;
    EXPECT_EQ(natsOptions_Create(&opts), NATS_OK);
    std::string password = hub.password(user);
    natsOptions_SetURL(opts, hub.urls().c_str());
    natsOptions_SetUserInfo(opts, user.c_str(), password.c_str());
    EXPECT_EQ(natsConnection_Connect(&nc_, opts), NATS_OK);
    natsOptions_Destroy(opts);
  }
  ~NatsClient() {
    for (natsSubscription* sub : subs_) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
    natsConnection_Destroy(nc_);
  }
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  using Handler =
      std::function<void(std::string_view subject, std::string_view body, const char* reply)>;
  // Calls `handler` for every message on `subject` (on nats.c's thread).
  void subscribe(const std::string& subject, Handler handler) {
    handlers_.push_back(std::make_unique<Handler>(std::move(handler)));
    natsSubscription* sub = nullptr;
    ASSERT_EQ(natsConnection_Subscribe(
                  &sub, nc_, subject.c_str(),
                  [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
                    (*static_cast<Handler*>(closure))(
                        natsMsg_GetSubject(msg),
                        std::string_view(natsMsg_GetData(msg),
                                         static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
                        natsMsg_GetReply(msg));
                    natsMsg_Destroy(msg);
                  },
                  handlers_.back().get()),
              NATS_OK);
    subs_.push_back(sub);
    ASSERT_EQ(natsConnection_Flush(nc_), NATS_OK);
  }
  void publish(const char* subject, std::string_view body) {
    natsConnection_Publish(nc_, subject, body.data(), static_cast<int>(body.size()));
  }
  // A core-NATS request; the answer, or nullopt when none came within `timeout`.
  std::optional<std::string> request(const std::string& subject, std::string_view body,
                                     std::chrono::milliseconds timeout) {
    natsMsg* reply = nullptr;
    if (natsConnection_Request(&reply, nc_, subject.c_str(), body.data(),
                               static_cast<int>(body.size()),
                               static_cast<int64_t>(timeout.count())) != NATS_OK) {
      return std::nullopt;
    }
    std::string answer(natsMsg_GetData(reply),
                       static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    return answer;
  }

 private:
  natsConnection* nc_ = nullptr;
  std::vector<std::unique_ptr<Handler>> handlers_;
  std::vector<natsSubscription*> subs_;
};

// Counts the requests that cross the hub per subject (as admin: a listener, never an answer).
class RequestCounter {
 public:
  explicit RequestCounter(const SiteHub& hub) : client_(hub, "admin") {
    client_.subscribe(fmt::format("fl.{}.blobs.>", kSite),
                      [this](std::string_view subject, std::string_view, const char*) {
                        std::lock_guard lock(mutex_);
                        ++counts_[std::string(subject)];
                      });
  }
  int count(const std::string& subject) {
    std::lock_guard lock(mutex_);
    return counts_[subject];
  }

 private:
  NatsClient client_;
  std::mutex mutex_;
  std::map<std::string, int> counts_;
};

// Node h as a hand-made holder of one pattern blob: answers finds with its metadata and
// chunk requests in the mode set, with the wire format of docs/replication.md written here
// independently of the service's encoder.
class TestHolder {
 public:
  enum class Mode : std::uint8_t {
    kGood,
    kFlipAByteInTheSecondChunk,
    kMalformedHead,
    kOnlyTheFirstChunk
  };

  TestHolder(const SiteHub& hub, std::string handle, uint64_t bytes, uint32_t seed)
      : client_(hub, "h"), handle_(std::move(handle)), bytes_(bytes), seed_(seed) {
    Json meta = {{"handle", handle_},
                 {"semantics", "photos"},
                 {"bytes", bytes_},
                 {"contentType", "application/octet-stream"},
                 {"sha256", patternSha256(bytes_, seed_)},
                 {"createdOn", 1700000000000000},
                 {"source", "h"},
                 {"sourceApp", "camera"},
                 {"retentionPolicy", {{"policy", "keepForever"}}}};
    metadata_ = meta;
    answer_ = Json{{"node", "h"}, {"metadata", meta}}.dump();
    client_.subscribe(fmt::format("fl.{}.blobs.find", kSite),
                      [this](std::string_view, std::string_view body, const char* reply) {
                        if (body == handle_ && reply != nullptr) client_.publish(reply, answer_);
                      });
    client_.subscribe(
        fmt::format("fl.{}.blobs.h.get", kSite),
        [this](std::string_view, std::string_view body, const char* reply) { onGet(body, reply); });
  }
  void setMode(Mode mode) { mode_ = mode; }
  // The metadata it answers with, and its metadata event as h would have published it.
  const Json& metadata() const { return metadata_; }
  Json metadataEvent() const {
    return {{"semantics", "com.actyx.os.blobs.metadata"},
            {"name", "ActyxOS-BlobService-Metadata"},
            {"payload", metadata_}};
  }
  int served() const { return served_.load(); }

 private:
  void onGet(std::string_view body, const char* reply) {
    unsigned long long offset = 0;
    unsigned long long length = 0;
    std::string text(body);
    char handle[64] = {0};
    if (std::sscanf(text.c_str(), "%40s %llu %llu", handle, &offset, &length) != 3) return;
    if (mode_ == Mode::kOnlyTheFirstChunk && offset > 0) return;  // silence: the request times out
    ++served_;
    length = std::min<unsigned long long>(length, bytes_ - offset);
    std::string data(length, '\0');
    fillPattern(offset, data.data(), data.size(), seed_);
    std::string head = fmt::format("FLBLOB1 data {} {}\n", offset, length);
    if (mode_ == Mode::kFlipAByteInTheSecondChunk && offset == kChunk) data[100] ^= 0x01;
    if (mode_ == Mode::kMalformedHead) head = fmt::format("FLBLOB1 data {}\n", offset);
    client_.publish(reply, head + data);
  }

  NatsClient client_;
  std::string handle_;
  uint64_t bytes_;
  uint32_t seed_;
  Json metadata_;
  std::string answer_;
  std::atomic<Mode> mode_{Mode::kGood};
  std::atomic<int> served_{0};
};

http::ClientResponse get(const BlobProcess& node, const std::string& path) {
  http::Client client;
  auto response = client.send({.url = node.baseUrl() + path});
  EXPECT_TRUE(response) << response.error().message();
  return response ? *response : http::ClientResponse{};
}

// Uploads `bytes` of pattern `seed` as a keepForever photo; returns its handle ("" on failure).
std::string uploadPattern(const BlobProcess& node, uint64_t bytes, uint32_t seed) {
  auto response =
      upload(node.port(), {.blob_bytes = bytes,
                           .seed = seed,
                           .content_type = "image/jpeg",
                           .filename = "photo.jpg",
                           .metadata_json = R"({"semantics":"photos",)"
                                            R"("retentionPolicy":{"policy":"keepForever"}})"});
  EXPECT_TRUE(response) << response.error().message();
  if (!response) return "";
  EXPECT_EQ(response->status, 201) << response->body;
  auto json = parseJson(response->body, "upload answer");
  return json ? json->value("handle", "") : "";
}

// `clients` requests for blob `handle` on `node` at once: even ones for the content, odd ones
// for its metadata.
std::vector<http::ClientResponse> concurrentGets(const BlobProcess& node, const std::string& handle,
                                                 int clients) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  std::vector<http::ClientResponse> responses(static_cast<std::size_t>(clients));
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      responses[static_cast<std::size_t>(i)] = get(
          node, i % 2 == 0 ? "/api/v1/blobs/" + handle : "/api/v1/blobs/" + handle + "/metadata");
    });
  }
  for (std::thread& t : threads) t.join();
  return responses;
}

class RemoteBlobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-remote-blobs");
    ASSERT_TRUE(dir);
    root_ = dir->path();
    dir_.emplace(std::move(*dir));
    hub_ = std::make_unique<SiteHub>(root_ / "hub");
    for (const char* node : {"a", "b"}) {
      auto events = RecordingEventService::start();
      ASSERT_TRUE(events) << events.error().message();
      events_[node] = std::move(*events);
    }
  }

  // Starts fleetlet-blobs as node `node` of the hub.
  BlobProcess startNode(const std::string& node) {
    std::vector<std::string> args = {"--data-dir",   dataDir(node).string(),
                                     "--events-url", events_[node]->baseUrl(),
                                     "--log-level",  "debug"};
    auto site = hub_->nodeArgs(node);
    args.insert(args.end(), site.begin(), site.end());
    auto process = BlobProcess::start(blobBinary(), args, root_ / (node + ".log"));
    EXPECT_TRUE(process) << process.error().message();
    if (!process) throw std::runtime_error("fleetlet-blobs did not start");
    return std::move(*process);
  }
  fs::path dataDir(const std::string& node) const { return root_ / ("data-" + node); }

  // What replication brings: node `to`'s log gets the metadata events node `from` published.
  void replicateMetadata(const std::string& from, const std::string& to, std::size_t count = 1) {
    for (const Json& event : events_[from]->waitForEvents(count, kPatience)) {
      events_[to]->addToLog(event);
    }
  }

  // The node stored nothing: no content, no upload in progress.
  void expectNothingStored(const std::string& node) {
    EXPECT_EQ(countFiles(dataDir(node) / "blobs"), 0u);
    EXPECT_EQ(countFiles(dataDir(node) / "tmp"), 0u);
  }

  std::optional<testing::TempDir> dir_;
  fs::path root_;  // dir_'s path
  std::unique_ptr<SiteHub> hub_;
  std::map<std::string, std::unique_ptr<RecordingEventService>> events_;
};

TEST_F(RemoteBlobsTest, BlobUploadedOnANodeIsDownloadedByteIdenticalOnAnother) {
  BlobProcess a = startNode("a");
  BlobProcess b = startNode("b");
  const uint64_t bytes = 5 * 1024 * 1024 + 4321;
  std::string handle = uploadPattern(a, bytes, 7);
  ASSERT_FALSE(handle.empty());
  std::string sha = patternSha256(bytes, 7);
  replicateMetadata("a", "b");

  http::ClientResponse download = get(b, "/api/v1/blobs/" + handle);
  ASSERT_EQ(download.status, 200) << download.body;
  EXPECT_EQ(download.body.size(), bytes);
  EXPECT_EQ(sha256Hex(download.body), sha);
  EXPECT_EQ(download.headers.find("Content-Type").value_or(""), "image/jpeg");
  EXPECT_EQ(download.headers.find("ETag").value_or(""), "\"" + sha + "\"");

  // The same metadata as on a: handle, source, createdOn, retention.
  http::ClientResponse meta_a = get(a, "/api/v1/blobs/" + handle + "/metadata");
  http::ClientResponse meta_b = get(b, "/api/v1/blobs/" + handle + "/metadata");
  ASSERT_EQ(meta_b.status, 200) << meta_b.body;
  EXPECT_EQ(parseJson(meta_b.body, "b").value_or(Json()), parseJson(meta_a.body, "a").value());
  EXPECT_EQ(parseJson(meta_b.body, "b").value_or(Json()).value("source", ""), "a");

  // Stored like b's own (under its content address, nothing left in tmp/), announced only by a.
  EXPECT_TRUE(fs::exists(dataDir("b") / "blobs" / sha));
  EXPECT_EQ(countFiles(dataDir("b") / "tmp"), 0u);
  EXPECT_EQ(events_["a"]->waitForEvents(1, kPatience).size(), 1u);
  EXPECT_TRUE(events_["b"]->events().empty());

  // b serves it without a: a range, then the whole blob again.
  ASSERT_EQ(::kill(a.pid(), SIGKILL), 0);
  (void)a.child().wait();
  http::Client client;
  auto range = client.send({.url = b.baseUrl() + "/api/v1/blobs/" + handle,
                            .headers = {},
                            .body = {},
                            .range_start = bytes - 10});
  ASSERT_TRUE(range);
  EXPECT_EQ(range->status, 206);
  EXPECT_EQ(range->body, patternBytes(bytes, 7).substr(bytes - 10));
  http::ClientResponse again = get(b, "/api/v1/blobs/" + handle);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(sha256Hex(again.body), sha);
}

TEST_F(RemoteBlobsTest, ConcurrentDownloadsOfOneBlobFetchItOnce) {
  BlobProcess a = startNode("a");
  BlobProcess b = startNode("b");
  RequestCounter counter(*hub_);
  const uint64_t bytes = uint64_t{4} * 1024 * 1024;
  std::string handle = uploadPattern(a, bytes, 3);
  ASSERT_FALSE(handle.empty());
  std::string sha = patternSha256(bytes, 3);
  replicateMetadata("a", "b");

  constexpr int kClients = 6;
  std::vector<http::ClientResponse> responses = concurrentGets(b, handle, kClients);
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(responses[i].status, 200) << i << ": " << responses[i].body;
    if (i % 2 == 0) {
      EXPECT_EQ(sha256Hex(responses[i].body), sha) << i;
    }
  }
  // One find, and each chunk once (the counter sees each request as it crosses the hub).
  EXPECT_TRUE(testing::waitFor(
      [&] { return counter.count(fmt::format("fl.{}.blobs.a.get", kSite)) >= 8; }, kPatience));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(counter.count(fmt::format("fl.{}.blobs.find", kSite)), 1);
  EXPECT_EQ(counter.count(fmt::format("fl.{}.blobs.a.get", kSite)),
            static_cast<int>(bytes / kChunk));
}

TEST_F(RemoteBlobsTest, CorruptedOrMalformedChunksAreRefusedAndNothingIsStored) {
  BlobProcess b = startNode("b");
  const std::string handle = "5eed5eed5eed5eed5eed5eed5eed5eed";
  const uint64_t bytes = 3 * kChunk + 99;
  TestHolder holder(*hub_, handle, bytes, 11);
  events_["b"]->addToLog(holder.metadataEvent());

  holder.setMode(TestHolder::Mode::kFlipAByteInTheSecondChunk);
  http::ClientResponse corrupted = get(b, "/api/v1/blobs/" + handle);
  EXPECT_EQ(corrupted.status, 502) << corrupted.body;
  EXPECT_NE(corrupted.body.find("does not match its metadata"), std::string::npos)
      << corrupted.body;
  EXPECT_NE(corrupted.body.find(patternSha256(bytes, 11)), std::string::npos) << corrupted.body;
  EXPECT_NE(corrupted.body.find("from node h"), std::string::npos) << corrupted.body;
  EXPECT_EQ(holder.served(), 4) << "the whole content was fetched and then refused";
  expectNothingStored("b");

  holder.setMode(TestHolder::Mode::kMalformedHead);
  http::ClientResponse malformed = get(b, "/api/v1/blobs/" + handle);
  EXPECT_EQ(malformed.status, 502) << malformed.body;
  EXPECT_NE(malformed.body.find("chunk answer: head is not"), std::string::npos) << malformed.body;
  expectNothingStored("b");

  // A holder that answers right afterwards: the blob comes, byte-identical.
  holder.setMode(TestHolder::Mode::kGood);
  http::ClientResponse good = get(b, "/api/v1/blobs/" + handle);
  ASSERT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(good.body, patternBytes(bytes, 11));
}

TEST_F(RemoteBlobsTest, UnknownHandleIs404WithinTheFindTimeout) {
  BlobProcess a = startNode("a");  // listens, holds nothing: b waits for the whole timeout
  BlobProcess b = startNode("b");
  // A handle b's log knows but no node holds: the find times out.
  const std::string handle = "00000000000000000000000000000000";
  Json meta = {{"handle", handle},
               {"semantics", "photos"},
               {"bytes", 10},
               {"contentType", "application/octet-stream"},
               {"sha256", patternSha256(10, 1)},
               {"createdOn", 1700000000000000},
               {"source", "gone"},
               {"sourceApp", "camera"},
               {"retentionPolicy", {{"policy", "keepForever"}}}};
  events_["b"]->addToLog({{"semantics", "com.actyx.os.blobs.metadata"},
                          {"name", "ActyxOS-BlobService-Metadata"},
                          {"payload", meta}});
  auto started = std::chrono::steady_clock::now();
  http::ClientResponse unknown = get(b, "/api/v1/blobs/" + handle);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("no node of site 't' answered for it within 1500 ms"),
            std::string::npos)
      << unknown.body;
  // Bounded by the find timeout (generous slack for a loaded machine).
  EXPECT_LT(took, std::chrono::milliseconds(kFindTimeoutMs) + 5s);
  // A handle b's log does not know: 404 at once, the site is not asked.
  started = std::chrono::steady_clock::now();
  http::ClientResponse unlogged = get(b, "/api/v1/blobs/00000000000000000000000000000009");
  EXPECT_EQ(unlogged.status, 404) << unlogged.body;
  EXPECT_NE(unlogged.body.find("holds no metadata event for it"), std::string::npos)
      << unlogged.body;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(kFindTimeoutMs));
  // Not a handle at all: no need to ask the site.
  http::ClientResponse bad = get(b, "/api/v1/blobs/not-a-handle");
  EXPECT_EQ(bad.status, 404) << bad.body;
  expectNothingStored("b");
}

// A holder whose answer is self-consistent (content matching its own metadata) but is not
// what the blob's metadata event in b's own log says is refused before any byte is fetched:
// a node with hub credentials cannot serve other content under a handle.
TEST_F(RemoteBlobsTest, HolderWhoseMetadataDiffersFromTheEventLogIsRefused) {
  BlobProcess b = startNode("b");
  const std::string handle = "bad0bad0bad0bad0bad0bad0bad0bad0";
  const uint64_t bytes = kChunk + 7;
  TestHolder hostile(*hub_, handle, bytes, 12);  // serves seed 12, with seed 12's sha256
  Json logged = hostile.metadataEvent();
  logged["payload"]["sha256"] = patternSha256(bytes, 11);  // the blob really is seed 11
  events_["b"]->addToLog(logged);
  http::ClientResponse refused = get(b, "/api/v1/blobs/" + handle);
  EXPECT_EQ(refused.status, 502) << refused.body;
  EXPECT_NE(refused.body.find("differs from the blob's metadata event"), std::string::npos)
      << refused.body;
  EXPECT_NE(refused.body.find("sha256"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find(patternSha256(bytes, 11)), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("from node h"), std::string::npos) << refused.body;
  EXPECT_EQ(hostile.served(), 0) << "no chunk was asked of a holder with other metadata";
  expectNothingStored("b");
}

TEST_F(RemoteBlobsTest, HolderGoneIs404AndAHolderThatStopsMidTransferIs502) {
  BlobProcess b = startNode("b");
  {
    BlobProcess a = startNode("a");
    std::string handle = uploadPattern(a, uint64_t{1024} * 1024, 5);
    ASSERT_FALSE(handle.empty());
    replicateMetadata("a", "b");
    ASSERT_EQ(::kill(a.pid(), SIGKILL), 0);
    (void)a.child().wait();
    http::ClientResponse gone = get(b, "/api/v1/blobs/" + handle);
    EXPECT_EQ(gone.status, 404) << gone.body;
    EXPECT_NE(gone.body.find("no node of site 't' answered"), std::string::npos) << gone.body;
  }
  const std::string handle = "ab12ab12ab12ab12ab12ab12ab12ab12";
  TestHolder holder(*hub_, handle, 2 * kChunk, 9);
  events_["b"]->addToLog(holder.metadataEvent());
  holder.setMode(TestHolder::Mode::kOnlyTheFirstChunk);
  auto started = std::chrono::steady_clock::now();
  http::ClientResponse stalled = get(b, "/api/v1/blobs/" + handle);
  EXPECT_EQ(stalled.status, 502) << stalled.body;
  EXPECT_NE(stalled.body.find("no answer for bytes 524288.. of 1048576"), std::string::npos)
      << stalled.body;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  expectNothingStored("b");
}

TEST_F(RemoteBlobsTest, NodeStartedWhileTheHubIsDownServesAndFetchesOnceItIsBack) {
  hub_->stop();
  BlobProcess b = startNode("b");  // does not wait for the hub
  std::string local = uploadPattern(b, 1000, 2);
  ASSERT_FALSE(local.empty());
  EXPECT_EQ(get(b, "/api/v1/blobs/" + local).status, 200);
  http::ClientResponse away = get(b, "/api/v1/blobs/00000000000000000000000000000001");
  EXPECT_EQ(away.status, 502) << away.body;
  EXPECT_NE(away.body.find("is not connected"), std::string::npos) << away.body;

  hub_->start();
  BlobProcess a = startNode("a");
  std::string handle = uploadPattern(a, uint64_t{700} * 1024, 4);
  ASSERT_FALSE(handle.empty());
  replicateMetadata("a", "b");
  http::ClientResponse fetched;
  EXPECT_TRUE(testing::waitFor(
      [&] {
        fetched = get(b, "/api/v1/blobs/" + handle);
        return fetched.status == 200;
      },
      kPatience))
      << fetched.status << " " << fetched.body;
  EXPECT_EQ(sha256Hex(fetched.body), patternSha256(uint64_t{700} * 1024, 4));
}

// Anyone on the hub can send a holder requests: malformed, for unknown handles, past the end,
// or for far more than a chunk. The real holder (node a's fleetlet-blobs) answers each with an
// error or at most one bounded chunk, and keeps serving.
TEST_F(RemoteBlobsTest, HolderAnswersHostileRequestsWithErrorsOrOneBoundedChunk) {
  BlobProcess a = startNode("a");
  const uint64_t bytes = 3 * kChunk;
  std::string handle = uploadPattern(a, bytes, 8);
  ASSERT_FALSE(handle.empty());
  NatsClient admin(*hub_, "admin");
  const std::string get_a = fmt::format("fl.{}.blobs.a.get", kSite);
  auto ask = [&](const std::string& body) {
    return admin.request(get_a, body, 5s).value_or("(no answer)");
  };
  auto headOf = [](const std::string& answer) { return answer.substr(0, answer.find('\n')); };

  EXPECT_TRUE(ask("garbage").starts_with("FLBLOB1 error failed chunk request"));
  EXPECT_TRUE(ask(handle + " 0 0").starts_with("FLBLOB1 error failed chunk request: length 0"));
  EXPECT_TRUE(ask(handle + " 0 -5").starts_with("FLBLOB1 error failed chunk request"));
  EXPECT_TRUE(ask(handle + " 0 99999999999999999999999").starts_with("FLBLOB1 error failed"));
  EXPECT_TRUE(ask("00000000000000000000000000000000 0 10").starts_with("FLBLOB1 error not_found"));
  std::string past = ask(fmt::format("{} {} 10", handle, bytes));
  EXPECT_TRUE(past.starts_with("FLBLOB1 error failed offset")) << headOf(past);
  EXPECT_NE(past.find("beyond the end"), std::string::npos) << headOf(past);
  std::string oversized = ask(std::string(std::size_t{2} * 1024 * 1024, 'x'));  // 2 MiB of garbage
  EXPECT_TRUE(oversized.starts_with("FLBLOB1 error failed chunk request")) << headOf(oversized);
  EXPECT_LT(oversized.size(), 1024u) << "the error quotes a bounded part of the request";

  // Far more than a chunk asked: at most one bounded chunk comes, the right bytes.
  std::string big = ask(fmt::format("{} 100 {}", handle, uint64_t{1} << 40));
  std::string head = headOf(big);
  ASSERT_TRUE(head.starts_with("FLBLOB1 data 100 ")) << head;
  uint64_t length = std::stoull(head.substr(std::string("FLBLOB1 data 100 ").size()));
  EXPECT_GT(length, 0u);
  EXPECT_LE(length, 8u * 1024 * 1024);
  EXPECT_LT(length, bytes);
  EXPECT_EQ(big.size(), head.size() + 1 + length);
  EXPECT_EQ(big.substr(head.size() + 1), patternBytes(bytes, 8).substr(100, length));

  // Finds that are not a handle get no answer; the holder still answers a real one.
  EXPECT_FALSE(admin.request(fmt::format("fl.{}.blobs.find", kSite), "../../etc/passwd", 500ms));
  auto found = admin.request(fmt::format("fl.{}.blobs.find", kSite), handle, 5s);
  ASSERT_TRUE(found);
  EXPECT_NE(found.value_or("").find("\"node\":\"a\""), std::string::npos) << found.value_or("");
  EXPECT_EQ(get(a, "/api/v1/blobs/" + handle).status, 200);
}

// kill -9 of the fetching node while the content streams into its temporary file: after the
// restart nothing of it is left (no temporary file, no content, no metadata) and the next
// request fetches it whole, byte-identical.
TEST_F(RemoteBlobsTest, KillNineOfTheFetchingNodeMidFetchLeavesNothingAndTheNextFetchWorks) {
  BlobProcess a = startNode("a");
  BlobProcess fetching = startNode("b");
  const uint64_t bytes = 128 * kChunk;  // 64 MiB: 128 chunk round trips
  std::string handle = uploadPattern(a, bytes, 13);
  ASSERT_FALSE(handle.empty());
  replicateMetadata("a", "b");
  std::thread download([url = fetching.baseUrl() + "/api/v1/blobs/" + handle] {
    http::Client client;
    (void)client.send({.url = url});  // cut off by the kill
  });
  const fs::path tmp = dataDir("b") / "tmp";
  bool mid_fetch = testing::waitFor([&] { return countFiles(tmp) > 0; }, kPatience);
  EXPECT_EQ(::kill(fetching.pid(), SIGKILL), 0);
  (void)fetching.child().wait();
  download.join();
  ASSERT_TRUE(mid_fetch) << "no temporary file appeared on b";
  EXPECT_FALSE(fs::exists(dataDir("b") / "blobs" / patternSha256(bytes, 13)));

  BlobProcess b = startNode("b");
  expectNothingStored("b");
  EXPECT_EQ(get(b, "/api/v1/blobs/" + handle + "/metadata").status, 200);  // fetched again
  http::ClientResponse whole = get(b, "/api/v1/blobs/" + handle);
  ASSERT_EQ(whole.status, 200) << whole.body.substr(0, 300);
  EXPECT_EQ(whole.body.size(), bytes);
  EXPECT_EQ(sha256Hex(whole.body), patternSha256(bytes, 13));
  EXPECT_EQ(countFiles(dataDir("b") / "tmp"), 0u);
}

// Two real nodes: on each a fleetlet-streams (its own source, replicating through the hub) and
// a fleetlet-blobs using that node's event service. Nothing is staged by the test: a's blob
// service publishes the metadata event to a's event service, replication brings it to b's,
// and b's blob service finds it there before it fetches the content from a.
class SiteBlobsTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<streams::testing::ServiceProcess> events;
    std::unique_ptr<BlobProcess> blobs;
    std::string eventsUrl() const { return fmt::format("http://127.0.0.1:{}", events->port); }
  };

  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-site-blobs");
    ASSERT_TRUE(dir);
    root_ = dir->path();
    dir_.emplace(std::move(*dir));
    hub_ = std::make_unique<SiteHub>(root_ / "hub");
    for (const char* name : {"a", "b"}) {
      Node& node = nodes_[name];
      fs::path streams_dir = root_ / (std::string("streams-") + name);
      fs::create_directories(streams_dir);
      auto events =
          streams::testing::startServiceProcess(streams_dir, 0, hub_->streamsArgs(name), name);
      if (!events || events->port == 0) {
        ADD_FAILURE() << "fleetlet-streams " << name << " did not come up";
        return;
      }
      node.events = std::make_unique<streams::testing::ServiceProcess>(std::move(*events));
      std::vector<std::string> args = {"--data-dir",     dataDir(name).string(), "--events-url",
                                       node.eventsUrl(), "--log-level",          "debug"};
      auto site = hub_->nodeArgs(name);
      args.insert(args.end(), site.begin(), site.end());
      auto blobs = BlobProcess::start(blobBinary(), args, root_ / (std::string(name) + ".log"));
      ASSERT_TRUE(blobs) << blobs.error().message();
      node.blobs = std::make_unique<BlobProcess>(std::move(*blobs));
    }
  }

  fs::path dataDir(const std::string& node) const { return root_ / ("blobs-" + node); }

  // GET `path` on node `node`'s event service, as JSON (null when it fails).
  Json eventsGet(const std::string& node, const std::string& path) {
    http::Client client;
    auto response = client.send({.url = nodes_[node].eventsUrl() + path});
    if (!response || response->status != 200) return Json();
    return parseJson(response->body, "event service answer").value_or(Json());
  }
  // The blob metadata events in node `node`'s event log (every source), in source order.
  std::vector<Json> metadataEvents(const std::string& node) {
    http::Client client;
    http::ClientRequest query;
    query.method = "POST";
    query.url = nodes_[node].eventsUrl() + "/api/v1/events/query";
    query.headers.add("Content-Type", "application/json");
    query.body = Json{{"subscriptions", {{{"semantics", "com.actyx.os.blobs.metadata"}}}},
                      {"order", "source-ordered"},
                      {"upperBound", eventsGet(node, "/api/v1/events/offsets")}}
                     .dump();
    auto response = client.send(query);
    EXPECT_TRUE(response && response->status == 200);
    std::vector<Json> events;
    if (!response) return events;
    std::istringstream lines(response->body);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) events.push_back(parseJson(line, "query line").value_or(Json()));
    }
    return events;
  }

  std::optional<testing::TempDir> dir_;
  fs::path root_;  // dir_'s path
  std::unique_ptr<SiteHub> hub_;
  std::map<std::string, Node> nodes_;
};

TEST_F(SiteBlobsTest, BlobUploadedOnOneNodeIsFetchedOnceByAnotherThroughRealReplication) {
  BlobProcess& a = *nodes_["a"].blobs;
  BlobProcess& b = *nodes_["b"].blobs;
  RequestCounter counter(*hub_);
  const uint64_t bytes = 4 * kChunk + 4321;  // 5 chunks
  const uint64_t chunks = (bytes + kChunk - 1) / kChunk;
  std::string handle = uploadPattern(a, bytes, 21);
  ASSERT_FALSE(handle.empty());
  const std::string sha = patternSha256(bytes, 21);
  const std::string content = patternBytes(bytes, 21);

  // a's blob service published the metadata event to a's event service; replication brings
  // it to b's event log (with a's source), where b's blob service will look for it.
  ASSERT_TRUE(testing::waitFor(
      [&] { return eventsGet("b", "/api/v1/events/offsets").contains("a"); }, kPatience))
      << eventsGet("b", "/api/v1/events/offsets").dump();
  std::vector<Json> logged = metadataEvents("b");
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0]["stream"].value("source", ""), "a") << logged[0].dump();
  EXPECT_EQ(logged[0]["payload"].value("handle", ""), handle) << logged[0].dump();
  EXPECT_EQ(logged[0]["payload"].value("sha256", ""), sha) << logged[0].dump();

  // Six requests at once on b (content and metadata): one find, each chunk fetched once.
  constexpr int kClients = 6;
  std::vector<http::ClientResponse> responses = concurrentGets(b, handle, kClients);
  for (int i = 0; i < kClients; i += 2) {
    ASSERT_EQ(responses[i].status, 200) << i << ": " << responses[i].body;
    EXPECT_EQ(sha256Hex(responses[i].body), sha) << i;
    EXPECT_TRUE(responses[i].body == content) << i << ": not byte-identical";
  }
  http::ClientResponse meta_a = get(a, "/api/v1/blobs/" + handle + "/metadata");
  ASSERT_EQ(meta_a.status, 200) << meta_a.body;
  for (int i = 1; i < kClients; i += 2) {
    ASSERT_EQ(responses[i].status, 200) << i << ": " << responses[i].body;
    EXPECT_EQ(parseJson(responses[i].body, "b").value_or(Json()),
              parseJson(meta_a.body, "a").value_or(Json(1)))
        << i;
  }
  const std::string find = fmt::format("fl.{}.blobs.find", kSite);
  const std::string gets = fmt::format("fl.{}.blobs.a.get", kSite);
  EXPECT_TRUE(
      testing::waitFor([&] { return counter.count(gets) >= static_cast<int>(chunks); }, kPatience));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(counter.count(find), 1);
  EXPECT_EQ(counter.count(gets), static_cast<int>(chunks));
  EXPECT_TRUE(fs::exists(dataDir("b") / "blobs" / sha));

  // b announced nothing: its event log holds a's metadata event only, no event of its own.
  EXPECT_EQ(metadataEvents("b").size(), 1u);
  EXPECT_FALSE(eventsGet("b", "/api/v1/events/offsets").contains("b"));

  // a's blob service gone: b serves the blob from its own store (whole and a range) and asks
  // the site nothing more.
  a.child().stop(SIGTERM, 5s);
  http::ClientResponse again = get(b, "/api/v1/blobs/" + handle);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_TRUE(again.body == content) << "not byte-identical after a stopped";
  http::Client client;
  auto range = client.send({.url = b.baseUrl() + "/api/v1/blobs/" + handle,
                            .headers = {},
                            .body = {},
                            .range_start = bytes - 1000});
  ASSERT_TRUE(range);
  EXPECT_EQ(range->status, 206);
  EXPECT_EQ(range->body, content.substr(bytes - 1000));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(counter.count(find), 1);
  EXPECT_EQ(counter.count(gets), static_cast<int>(chunks));
}

}  // namespace
}  // namespace fleetlet::blobtest
