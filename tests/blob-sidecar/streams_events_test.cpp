// fleetlet-blobs with the real fleetlet-streams as its event service (both binaries, real
// HTTP): a stored blob's metadata event reaches a subscriber of the event service, and events
// queued while the event service is down arrive once it is back, exactly once.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include "handoff/sender.h"
#include "http/client.h"
#include "json/json.h"
#include "os/child_process.h"
#include "support/blob_client.h"
#include "support/system_state.h"
#include "support/temp_dir.h"

namespace fleetlet::blobtest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Bound for anything the test waits for; never an assertion about speed.
constexpr auto kPatience = 20s;
constexpr std::string_view kSemantics = "com.actyx.os.blobs.metadata";
constexpr std::string_view kSource = "node-e2e";

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<Json> ndjson(std::string_view text) {
  std::vector<Json> out;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    auto parsed = parseJson(line, "ndjson line");
    EXPECT_TRUE(parsed) << line;
    if (parsed) out.push_back(std::move(*parsed));
  }
  return out;
}

// The real fleetlet-streams on its own data dir.
class Streams {
 public:
  // Starts it on `port` (0: any free port, read back from its log).
  static std::optional<Streams> start(const fs::path& dir, int run, uint16_t port = 0) {
    fs::path log = dir / fmt::format("streams-{}.log", run);
    auto child = ChildProcess::spawn(
        {.argv = {FLEETLET_STREAMS_BINARY, "--data-dir", (dir / "streams").string(), "--listen",
                  fmt::format("127.0.0.1:{}", port), "--console-listen", "127.0.0.1:0",
                  "--source-id", std::string(kSource), "--log-level", "debug"},
         .stdout_path = log,
         .stderr_path = log});
    EXPECT_TRUE(child) << child.error().message();
    if (!child) return std::nullopt;
    std::regex listening("events listening on 127\\.0\\.0\\.1:([0-9]+)");
    uint16_t bound = 0;
    bool up = testing::waitFor(
        [&] {
          std::string text = readText(log);
          std::smatch m;
          if (!std::regex_search(text, m, listening)) return false;
          bound = static_cast<uint16_t>(std::stoi(m[1]));
          return true;
        },
        kPatience);
    EXPECT_TRUE(up) << "fleetlet-streams logged no port: " << readText(log);
    if (!up) return std::nullopt;
    return Streams(std::move(*child), bound);
  }

  uint16_t port() const { return port_; }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }
  void stop() { child_.stop(SIGTERM, 5s); }

  // Metadata events stored in the event service, in offset order (query API).
  std::vector<Json> metadataEvents() const {
    http::Client client;
    auto offsets = client.send({.url = url() + "/api/v1/events/offsets"});
    EXPECT_TRUE(offsets && offsets->status == 200);
    if (!offsets || offsets->status != 200) return {};
    http::ClientRequest query;
    query.method = "POST";
    query.url = url() + "/api/v1/events/query";
    query.headers.add("Content-Type", "application/json");
    query.body = fmt::format(
        R"({{"subscriptions":[{{"semantics":"{}"}}],"order":"source-ordered","upperBound":{}}})",
        kSemantics, offsets->body);
    auto events = client.send(query);
    EXPECT_TRUE(events && events->status == 200) << (events ? events->body : "no answer");
    return events ? ndjson(events->body) : std::vector<Json>{};
  }

 private:
  Streams(ChildProcess child, uint16_t port) : child_(std::move(child)), port_(port) {}
  ChildProcess child_;
  uint16_t port_ = 0;
};

// A subscriber of the event service on its own thread (POST /subscribe, NDJSON), collecting
// metadata events until it has `wanted` of them.
class Subscriber {
 public:
  Subscriber(std::string url, std::size_t wanted) : wanted_(wanted) {
    thread_ = std::thread([this, url = std::move(url)] { run(url); });
  }
  ~Subscriber() { thread_.join(); }

  // Waits until the subscription ended (it has its events or failed); returns the events.
  std::vector<Json> events() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return done_; });
    return events_;
  }

 private:
  void run(const std::string& url) {
    http::Client client({.stall_timeout = kPatience});
    http::ClientRequest request;
    request.method = "POST";
    request.url = url + "/api/v1/events/subscribe";
    request.headers.add("Content-Type", "application/json");
    request.body = fmt::format(R"({{"subscriptions":[{{"semantics":"{}"}}]}})", kSemantics);
    std::string pending;
    auto sink = [&](std::string_view chunk) {
      pending.append(chunk);
      std::size_t nl;
      std::lock_guard lock(mutex_);
      while ((nl = pending.find('\n')) != std::string::npos) {
        for (Json& event : ndjson(std::string_view(pending).substr(0, nl))) {
          events_.push_back(std::move(event));
        }
        pending.erase(0, nl + 1);
      }
      return events_.size() < wanted_;  // enough: end the subscription
    };
    (void)client.stream(request, sink);  // ends with "aborted" once the sink has enough
    std::lock_guard lock(mutex_);
    done_ = true;
    changed_.notify_all();
  }

  const std::size_t wanted_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;         // guarded by mutex_
  std::vector<Json> events_;  // guarded by mutex_
  std::thread thread_;
};

class BlobsWithStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-blobs-streams");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    streams_ = Streams::start(dir_->path(), 1);
    ASSERT_TRUE(streams_);
    // Uploads come through a listener handed over for app "camera" (sourceApp "camera").
    fs::path socket = dir_->path() / "handoff.sock";
    auto blobs =
        BlobProcess::start(blobBinary(),
                           {"--data-dir", (dir_->path() / "blobs").string(), "--events-url",
                            streams_->url(), "--source", std::string(kSource), "--handoff-socket",
                            socket.string(), "--log-level", "debug"},
                           blobsLog());
    ASSERT_TRUE(blobs) << blobs.error().message();
    blobs_.emplace(std::move(*blobs));
    ASSERT_TRUE(agent_.connect(socket));
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener.get(), 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    camera_port_ = ntohs(addr.sin_port);
    ASSERT_TRUE(agent_.add("camera", "blobs", std::move(listener)));
  }

  fs::path blobsLog() const { return dir_->path() / "blobs.log"; }

  // Uploads `bytes` pattern bytes with `seed` as the camera app; returns the handle.
  std::string uploadFromCamera(uint64_t bytes, uint32_t seed) {
    auto up =
        upload(camera_port_, {.blob_bytes = bytes,
                              .seed = seed,
                              .metadata_json = R"({"semantics":"com.test.inspection",)"
                                               R"("retentionPolicy":{"policy":"keepForever"}})"});
    EXPECT_TRUE(up) << up.error().message();
    if (!up) return "";
    EXPECT_EQ(up->status, 201) << up->body;
    auto body = parseJson(up->body, "upload response");
    return body ? body->value("handle", "") : "";
  }

  // Asserts that `event` is the metadata event of the camera's blob `handle`.
  static void expectMetadataEvent(const Json& event, const std::string& handle, uint64_t bytes,
                                  uint32_t seed) {
    EXPECT_EQ(event["stream"]["semantics"], kSemantics) << event.dump();
    EXPECT_EQ(event["stream"]["name"], "ActyxOS-BlobService-Metadata") << event.dump();
    EXPECT_EQ(event["stream"]["source"], kSource) << event.dump();
    const Json& payload = event["payload"];
    EXPECT_EQ(payload["handle"], handle) << event.dump();
    EXPECT_EQ(payload["sha256"], patternSha256(bytes, seed)) << event.dump();
    EXPECT_EQ(payload["bytes"], bytes) << event.dump();
    EXPECT_EQ(payload["sourceApp"], "camera") << event.dump();
    EXPECT_EQ(payload["source"], kSource) << event.dump();
    EXPECT_EQ(payload["semantics"], "com.test.inspection") << event.dump();
  }

  std::optional<testing::TempDir> dir_;
  std::optional<Streams> streams_;
  std::optional<BlobProcess> blobs_;
  handoff::HandoffSender agent_;
  uint16_t camera_port_ = 0;
};

TEST_F(BlobsWithStreamsTest, ASubscriberOfTheEventServiceReceivesTheMetadataEvent) {
  Subscriber subscriber(streams_->url(), 1);
  std::string handle = uploadFromCamera(3 * 1024 * 1024 + 17, 11);
  ASSERT_FALSE(handle.empty());
  std::vector<Json> received = subscriber.events();
  ASSERT_EQ(received.size(), 1u) << "the subscriber got no metadata event";
  expectMetadataEvent(received[0], handle, 3 * 1024 * 1024 + 17, 11);

  // The query API has it too, once.
  std::vector<Json> stored = streams_->metadataEvents();
  ASSERT_EQ(stored.size(), 1u);
  expectMetadataEvent(stored[0], handle, 3 * 1024 * 1024 + 17, 11);
}

TEST_F(BlobsWithStreamsTest, EventsQueuedWhileTheEventServiceIsDownArriveOnceItIsBack) {
  std::string first = uploadFromCamera(1000, 1);
  ASSERT_TRUE(testing::waitFor([&] { return streams_->metadataEvents().size() == 1; }, kPatience));

  // The event service goes away; the upload still succeeds and its event waits in the outbox.
  uint16_t port = streams_->port();
  streams_->stop();
  streams_.reset();
  std::string queued = uploadFromCamera(2000, 2);
  ASSERT_FALSE(queued.empty());
  ASSERT_TRUE(testing::waitFor(
      [&] { return readText(blobsLog()).find("publishing failed") != std::string::npos; },
      kPatience))
      << "fleetlet-blobs never tried to publish while the event service was down";

  // Back on the same data dir and port: the queued event arrives.
  streams_ = Streams::start(dir_->path(), 2, port);
  ASSERT_TRUE(streams_);
  ASSERT_EQ(streams_->port(), port);
  ASSERT_TRUE(testing::waitFor([&] { return streams_->metadataEvents().size() >= 2; }, kPatience))
      << "the queued event did not arrive";

  // A later blob's event comes after it; by then a duplicate of the queued one would be there
  // too (the outbox is delivered in order).
  std::string later = uploadFromCamera(3000, 3);
  ASSERT_TRUE(testing::waitFor([&] { return streams_->metadataEvents().size() >= 3; }, kPatience));
  std::vector<Json> stored = streams_->metadataEvents();
  ASSERT_EQ(stored.size(), 3u) << "an event arrived twice";
  expectMetadataEvent(stored[0], first, 1000, 1);
  expectMetadataEvent(stored[1], queued, 2000, 2);
  expectMetadataEvent(stored[2], later, 3000, 3);
}

}  // namespace
}  // namespace fleetlet::blobtest
