// fleetlet-blobs end to end: the real binary over real HTTP (curl, Node's fetch, a raw
// streaming client), with a recording event service standing in for fleetlet-streams.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "crypto/sha256.h"
#include "handoff/sender.h"
#include "http/client.h"
#include "json/json.h"
#include "os/child_process.h"
#include "support/blob_client.h"
#include "support/promtool.h"
#include "support/temp_dir.h"

namespace fleetlet::blobtest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::size_t countFiles(const fs::path& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) {
    ++n;
  }
  return n;
}

// Polls `condition` until it holds or `timeout` passes (the outcome is asserted by the caller).
template <typename F>
bool eventually(F condition, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::string metadataJson(std::string_view semantics, const Json& policy) {
  return Json{{"semantics", semantics}, {"retentionPolicy", policy}}.dump();
}

class BlobServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-blobs-test");
    ASSERT_TRUE(dir) << dir.error().message();
    dir_.emplace(std::move(*dir));
    auto events = RecordingEventService::start();
    ASSERT_TRUE(events) << events.error().message();
    events_ = std::move(*events);
  }

  fs::path dataDir() const { return dir_->path() / "data"; }

  void startService(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--data-dir", dataDir().string(), "--events-url", events_->baseUrl(),
        "--source",   "node-test",        "--log-level",  "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = BlobProcess::start(blobBinary(), args, dir_->path() / "service.log");
    ASSERT_TRUE(process) << process.error().message();
    service_.emplace(std::move(*process));
  }

  http::ClientResponse get(const std::string& path,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
    return send("GET", path, std::move(headers));
  }

  http::ClientResponse send(const std::string& method, const std::string& path,
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Client client;
    http::ClientRequest request;
    request.method = method;
    request.url = service_->baseUrl() + path;
    for (auto& [k, v] : headers) request.headers.add(k, v);
    auto response = client.send(request);
    EXPECT_TRUE(response) << response.error().message();
    return response ? *response : http::ClientResponse{};
  }

  // Uploads with curl -F, as the docs show. Returns (status, body).
  std::pair<int, std::string> curlUpload(const fs::path& file, const std::string& type,
                                         const std::string& metadata) {
    auto out = runCommand({"curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-F",
                           "blob=@" + file.string() + ";type=" + type, "-F",
                           "metadata=" + metadata + ";type=application/json",
                           service_->baseUrl() + "/api/v1/blobs"});
    EXPECT_TRUE(out && out->status.success()) << (out ? out->err : out.error().message());
    if (!out) return {0, ""};
    auto nl = out->out.rfind('\n');
    return {std::stoi(out->out.substr(nl + 1)), out->out.substr(0, nl)};
  }

  std::string handleOf(const std::string& body) {
    auto json = parseJson(body, "upload response");
    EXPECT_TRUE(json) << body;
    return json ? json->value("handle", "") : "";
  }

  void expectNothingStored() {
    auto list = get("/api/v1/blobs?semantics=com.test.bad");
    EXPECT_EQ(list.body, "[]");
    EXPECT_EQ(countFiles(dataDir() / "tmp"), 0u);
    EXPECT_EQ(countFiles(dataDir() / "blobs"), 0u);
  }

  std::optional<testing::TempDir> dir_;
  std::unique_ptr<RecordingEventService> events_;
  std::optional<BlobProcess> service_;
};

// A JPEG-like file (SOI/APP0 header + random bytes).
fs::path writePhoto(const fs::path& dir, std::size_t bytes) {
  fs::path path = dir / "photo.jpg";
  std::ofstream out(path, std::ios::binary);
  const unsigned char header[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  std::vector<char> body(bytes);
  fillPattern(0, body.data(), body.size(), 42);
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  const unsigned char eoi[] = {0xFF, 0xD9};
  out.write(reinterpret_cast<const char*>(eoi), sizeof eoi);
  return path;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(BlobServiceTest, InspectionPhotoWithCurl) {
  startService();
  fs::path photo = writePhoto(dir_->path(), 700 * 1024);
  auto [status, body] =
      curlUpload(photo, "image/jpeg",
                 metadataJson("com.myapp.quality-inspection-photos",
                              {{"policy", "keepUntilTime"}, {"until", 28499383002}}));
  ASSERT_EQ(status, 201) << body;
  std::string handle = handleOf(body);
  ASSERT_FALSE(handle.empty());

  // Subscriber on the metadata stream: the event service got the event.
  auto events = events_->waitForEvents(1, 10s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["semantics"], "com.actyx.os.blobs.metadata");
  EXPECT_EQ(events[0]["name"], "ActyxOS-BlobService-Metadata");
  const Json& payload = events[0]["payload"];
  EXPECT_EQ(payload["handle"], handle);
  EXPECT_EQ(payload["semantics"], "com.myapp.quality-inspection-photos");
  EXPECT_EQ(payload["contentType"], "image/jpeg");
  EXPECT_EQ(payload["source"], "node-test");
  EXPECT_EQ(payload["sourceApp"], "");
  EXPECT_EQ(payload["sha256"], sha256Hex(readFile(photo)));
  EXPECT_EQ(payload["retentionPolicy"]["policy"], "keepUntilTime");

  auto got = get("/api/v1/blobs/" + handle);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.headers.find("Content-Type"), "image/jpeg");
  EXPECT_TRUE(got.body == readFile(photo)) << "downloaded bytes differ";
  EXPECT_EQ(got.headers.find("Access-Control-Allow-Origin"), "*");

  auto legacy = get("/api/v1/blobs?" + handle);
  EXPECT_EQ(legacy.status, 200);
  EXPECT_TRUE(legacy.body == got.body);
  auto meta = get("/api/v1/blobs?metadata-" + handle);
  ASSERT_EQ(meta.status, 200);
  auto meta_json = parseJson(meta.body, "metadata");
  ASSERT_TRUE(meta_json);
  EXPECT_EQ((*meta_json)["bytes"], fs::file_size(photo));
  EXPECT_EQ(*meta_json, payload);
}

TEST_F(BlobServiceTest, InspectionPhotoWithNodeFetchAndFormData) {
  startService();
  fs::path photo = writePhoto(dir_->path(), 300 * 1024);
  fs::path script = fs::path(FLEETLET_BLOBS_TEST_DIR) / "node" / "inspection_photo.mjs";
  auto out = runCommand({"node", script.string(), service_->baseUrl(), photo.string()});
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(out->status.success()) << out->out << out->err;
  auto result = parseJson(out->out, "node output");
  ASSERT_TRUE(result) << out->out;
  std::string handle = (*result)["handle"];
  EXPECT_EQ((*result)["status"], 201);
  EXPECT_EQ((*result)["downloadType"], "image/jpeg");
  EXPECT_EQ((*result)["identical"], true);

  auto events = events_->waitForEvents(1, 10s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["payload"]["handle"], handle);
  EXPECT_EQ(events[0]["payload"]["filename"], "photo.jpg");
  EXPECT_EQ(events[0]["payload"]["retentionPolicy"]["until"], 28499383002LL);
}

TEST_F(BlobServiceTest, RangeAndConditionalRequests) {
  startService();
  fs::path photo = writePhoto(dir_->path(), 100000);
  std::string bytes = readFile(photo);
  auto [status, body] =
      curlUpload(photo, "image/jpeg", metadataJson("com.test.range", {{"policy", "keepForever"}}));
  ASSERT_EQ(status, 201) << body;
  std::string handle = handleOf(body);

  auto part = get("/api/v1/blobs/" + handle, {{"Range", "bytes=100-199"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, bytes.substr(100, 100));
  EXPECT_EQ(part.headers.find("Content-Range"), fmt::format("bytes 100-199/{}", bytes.size()));
  auto suffix = get("/api/v1/blobs/" + handle, {{"Range", "bytes=-10"}});
  EXPECT_EQ(suffix.status, 206);
  EXPECT_EQ(suffix.body, bytes.substr(bytes.size() - 10));
  auto outside = get("/api/v1/blobs/" + handle, {{"Range", "bytes=99999999-"}});
  EXPECT_EQ(outside.status, 416);

  auto full = get("/api/v1/blobs/" + handle);
  auto etag = full.headers.find("ETag");
  ASSERT_TRUE(etag);
  EXPECT_EQ(*etag, "\"" + sha256Hex(bytes) + "\"");
  auto cached = get("/api/v1/blobs/" + handle, {{"If-None-Match", *etag}});
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());
  auto stale = get("/api/v1/blobs/" + handle, {{"If-Range", "\"other\""}, {"Range", "bytes=0-0"}});
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body.size(), bytes.size());

  EXPECT_EQ(get("/api/v1/blobs/0123456789abcdef0123456789abcdef").status, 404);
  EXPECT_EQ(get("/api/v1/blobs/nope/metadata").status, 404);
}

TEST_F(BlobServiceTest, IdenticalContentIsStoredOnce) {
  startService();
  fs::path photo = writePhoto(dir_->path(), 50000);
  auto meta = metadataJson("com.test.dedupe", {{"policy", "keepForever"}});
  auto [s1, b1] = curlUpload(photo, "image/jpeg", meta);
  auto [s2, b2] = curlUpload(photo, "image/jpeg", meta);
  ASSERT_EQ(s1, 201) << b1;
  ASSERT_EQ(s2, 201) << b2;  // a 503 was seen once under a loaded parallel ctest: say why
  EXPECT_NE(handleOf(b1), handleOf(b2));
  EXPECT_EQ(countFiles(dataDir() / "blobs"), 1u);
  EXPECT_EQ(get("/api/v1/blobs/" + handleOf(b2)).body, readFile(photo));
}

// The metadata events go out on Beast over plain HTTP (no libcurl in the process): anything
// but an http:// URL is refused at start, naming the flag, not once per event.
TEST_F(BlobServiceTest, AnEventsUrlThatIsNotHttpIsRefusedAtStart) {
  auto out =
      runCommand({.argv = {blobBinary().string(), "--data-dir", dataDir().string(), "--listen",
                           "127.0.0.1:0", "--events-url", "https://127.0.0.1:4454"},
                  .timeout = std::chrono::seconds(20)});
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_FALSE(out->timed_out);
  EXPECT_EQ(out->status.exit_code, 1);
  EXPECT_NE(out->err.find("--events-url https://127.0.0.1:4454: must be an http:// URL"),
            std::string::npos)
      << out->err;
}

TEST_F(BlobServiceTest, BadMultipartIsRejectedNamingTheProblem) {
  startService();
  auto post = [&](const std::string& content_type, const std::string& body) {
    http::Client client;
    http::ClientRequest request;
    request.method = "POST";
    request.url = service_->baseUrl() + "/api/v1/blobs";
    request.headers.add("Content-Type", content_type);
    request.body = body;
    auto response = client.send(request);
    EXPECT_TRUE(response) << response.error().message();
    return response ? *response : http::ClientResponse{};
  };
  const std::string ct = "multipart/form-data; boundary=XyZ";
  auto part = [](std::string name, std::string body, std::string extra = "") {
    return "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"" + extra + "\r\n\r\n" +
           body + "\r\n";
  };
  const std::string good_meta = metadataJson("com.test.bad", {{"policy", "keepForever"}});

  auto no_boundary = post("multipart/form-data", part("blob", "abc") + "--XyZ--\r\n");
  EXPECT_EQ(no_boundary.status, 400);
  EXPECT_NE(no_boundary.body.find("boundary"), std::string::npos) << no_boundary.body;

  auto missing = post(ct, part("blob", "abc", "; filename=\"a.bin\"") + "--XyZ--\r\n");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("\\\"metadata\\\" part is missing"), std::string::npos)
      << missing.body;

  auto missing_blob = post(ct, part("metadata", good_meta) + "--XyZ--\r\n");
  EXPECT_EQ(missing_blob.status, 400);
  EXPECT_NE(missing_blob.body.find("\\\"blob\\\" part is missing"), std::string::npos)
      << missing_blob.body;

  auto not_json =
      post(ct, part("blob", "abc") + part("metadata", "{semantics: nope") + "--XyZ--\r\n");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_NE(not_json.body.find("metadata is not JSON"), std::string::npos) << not_json.body;

  auto unknown_policy =
      post(ct, part("blob", "abc") +
                   part("metadata", metadataJson("com.test.bad", {{"policy", "keepSometimes"}})) +
                   "--XyZ--\r\n");
  EXPECT_EQ(unknown_policy.status, 400);
  EXPECT_NE(unknown_policy.body.find("unknown policy \\\"keepSometimes\\\""), std::string::npos)
      << unknown_policy.body;

  auto truncated = post(ct, part("metadata", good_meta) + part("blob", "abc"));
  EXPECT_EQ(truncated.status, 400);
  EXPECT_NE(truncated.body.find("closing boundary"), std::string::npos) << truncated.body;

  auto not_multipart = post("application/json", good_meta);
  EXPECT_EQ(not_multipart.status, 400);
  EXPECT_NE(not_multipart.body.find("multipart/form-data"), std::string::npos);

  expectNothingStored();
  EXPECT_TRUE(events_->events().empty());
}

TEST_F(BlobServiceTest, QuotaAnswers507AndStoresNothing) {
  startService({"--quota", "1Mi", "--max-blob-size", "8Mi"});
  std::string meta = metadataJson("com.test.bad", {{"policy", "keepForever"}});
  // Known length: refused before the body is read.
  auto declared = upload(service_->port(), {.blob_bytes = 2 << 20, .metadata_json = meta});
  ASSERT_TRUE(declared) << declared.error().message();
  EXPECT_EQ(declared->status, 507) << declared->body;
  // Chunked: refused while streaming, once the quota is reached.
  auto streamed = upload(service_->port(),
                         {.blob_bytes = 2 << 20, .metadata_json = meta, .with_length = false});
  ASSERT_TRUE(streamed) << streamed.error().message();
  EXPECT_EQ(streamed->status, 507) << streamed->body;
  // Over --max-blob-size: 413 (checked before the quota).
  auto huge = upload(service_->port(), {.blob_bytes = 9 << 20, .metadata_json = meta});
  ASSERT_TRUE(huge) << huge.error().message();
  EXPECT_EQ(huge->status, 413) << huge->body;
  expectNothingStored();

  // What fits is still accepted.
  auto small = upload(service_->port(), {.blob_bytes = 512 << 10, .metadata_json = meta});
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 201) << small->body;
}

TEST_F(BlobServiceTest, RetentionExpiryTurnsGetInto404AndDeletesTheFile) {
  startService({"--collect-interval-ms", "100"});
  auto now = std::chrono::system_clock::now().time_since_epoch();
  int64_t until = std::chrono::duration_cast<std::chrono::seconds>(now).count() + 3;
  auto up = upload(service_->port(),
                   {.blob_bytes = 4096,
                    .metadata_json = metadataJson(
                        "com.test.expiring", {{"policy", "keepUntilTime"}, {"until", until}})});
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  std::string handle = handleOf(up->body);
  EXPECT_EQ(get("/api/v1/blobs/" + handle).status, 200);
  EXPECT_TRUE(eventually([&] { return get("/api/v1/blobs/" + handle).status == 404; }, 15s));
  EXPECT_EQ(get("/api/v1/blobs/" + handle + "/metadata").status, 404);
  EXPECT_TRUE(eventually([&] { return countFiles(dataDir() / "blobs") == 0; }))
      << "the collector did not delete the expired content";
}

TEST_F(BlobServiceTest, KeepUntilNextReplacesTheOlderBlob) {
  startService();
  Json next = {{"policy", "keepUntilNext"}};
  auto first = upload(
      service_->port(),
      {.blob_bytes = 1000, .seed = 1, .metadata_json = metadataJson("com.test.latest", next)});
  auto other = upload(
      service_->port(),
      {.blob_bytes = 1000, .seed = 2, .metadata_json = metadataJson("com.test.other", next)});
  ASSERT_TRUE(first && other);
  std::string old_handle = handleOf(first->body);
  std::string other_handle = handleOf(other->body);
  EXPECT_EQ(get("/api/v1/blobs/" + old_handle).status, 200);

  auto second = upload(
      service_->port(),
      {.blob_bytes = 1000, .seed = 3, .metadata_json = metadataJson("com.test.latest", next)});
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 201);
  EXPECT_EQ(get("/api/v1/blobs/" + old_handle).status, 404);
  EXPECT_EQ(get("/api/v1/blobs/" + handleOf(second->body)).status, 200);
  EXPECT_EQ(get("/api/v1/blobs/" + other_handle).status, 200) << "other semantics kept";
  EXPECT_EQ(countFiles(dataDir() / "blobs"), 2u) << "the replaced content is deleted";

  auto list = parseJson(get("/api/v1/blobs?semantics=com.test.latest&limit=10").body, "list");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0]["handle"], handleOf(second->body));
}

TEST_F(BlobServiceTest, KillDuringUploadLeavesNothingAfterRestart) {
  startService();
  std::optional<RawConnection> open;
  auto started = upload(service_->port(),
                        {.blob_bytes = 64 << 20,
                         .metadata_json = metadataJson("com.test.bad", {{"policy", "keepForever"}}),
                         .stop_after = 16 << 20},
                        &open);
  ASSERT_TRUE(started) << started.error().message();
  // The service has written what arrived so far to its temporary file.
  ASSERT_TRUE(eventually([&] {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dataDir() / "tmp", ec)) {
      if (fs::file_size(e.path(), ec) >= (8u << 20)) return true;
    }
    return false;
  }));
  ASSERT_TRUE(service_->child().signal(SIGKILL));
  service_->child().wait();
  open.reset();
  service_.reset();

  startService();
  expectNothingStored();
  EXPECT_TRUE(events_->events().empty());
}

TEST_F(BlobServiceTest, EventsQueuedWhileTheEventServiceIsDownSurviveARestart) {
  events_->setAvailable(false);
  startService();
  auto up = upload(service_->port(),
                   {.blob_bytes = 1234,
                    .metadata_json = metadataJson("com.test.outbox", {{"policy", "keepForever"}})});
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201);
  std::string handle = handleOf(up->body);
  ASSERT_TRUE(service_->child().signal(SIGKILL));
  service_->child().wait();
  service_.reset();

  events_->setAvailable(true);
  startService();
  auto events = events_->waitForEvents(1, 20s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["payload"]["handle"], handle);
}

TEST_F(BlobServiceTest, TwoGibUploadKeepsRssUnder32MiB) {
  startService();
  constexpr uint64_t kBytes = 2ULL << 30;
  auto up = upload(service_->port(),
                   {.blob_bytes = kBytes,
                    .seed = 7,
                    .metadata_json = metadataJson("com.test.big", {{"policy", "keepForever"}})});
  ASSERT_TRUE(up) << up.error().message();
  ASSERT_EQ(up->status, 201) << up->body;
  auto rss = readRss(service_->pid());
  ASSERT_TRUE(rss);
  std::printf("fleetlet-blobs peak RSS after a 2 GiB upload: %.1f MiB\n", rss->peak_kib / 1024.0);
#if defined(__SANITIZE_ADDRESS__)
  // ASan's shadow memory and quarantine make any RSS bound meaningless; the rest still holds.
  std::printf("(AddressSanitizer build: the 32 MiB bound is not checked)\n");
#else
  EXPECT_LT(rss->peak_kib, 32u * 1024);
#endif

  auto meta = parseJson(get("/api/v1/blobs/" + handleOf(up->body) + "/metadata").body, "meta");
  ASSERT_TRUE(meta);
  EXPECT_EQ((*meta)["bytes"], kBytes);
  EXPECT_EQ((*meta)["sha256"], patternSha256(kBytes, 7));
}

// A listening socket on 127.0.0.1:<any port>, as the agent would create in an app's namespace.
std::pair<UniqueFd, uint16_t> appListener() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd.get(), 64), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return {std::move(fd), ntohs(addr.sin_port)};
}

TEST_F(BlobServiceTest, SourceAppIsTheAppWhoseListenerTheUploadCameThrough) {
  fs::path socket = dir_->path() / "handoff.sock";
  startService({"--handoff-socket", socket.string()});
  handoff::HandoffSender agent;
  ASSERT_TRUE(agent.connect(socket));
  auto [camera_fd, camera_port] = appListener();
  auto [scanner_fd, scanner_port] = appListener();
  ASSERT_TRUE(agent.add("camera", "blobs", std::move(camera_fd)));
  ASSERT_TRUE(agent.add("scanner", "blobs", std::move(scanner_fd)));

  std::string meta = metadataJson("com.test.apps", {{"policy", "keepForever"}});
  // The service adopts the listeners on its receiver thread; connections queue until then.
  auto from_camera = upload(camera_port, {.blob_bytes = 100, .seed = 1, .metadata_json = meta});
  auto from_scanner = upload(scanner_port, {.blob_bytes = 100, .seed = 2, .metadata_json = meta});
  auto from_host = upload(service_->port(), {.blob_bytes = 100, .seed = 3, .metadata_json = meta});
  ASSERT_TRUE(from_camera && from_scanner && from_host);
  ASSERT_EQ(from_camera->status, 201) << from_camera->body;
  ASSERT_EQ(from_scanner->status, 201) << from_scanner->body;
  ASSERT_EQ(from_host->status, 201) << from_host->body;

  auto appOf = [&](const RawResponse& r) {
    auto meta_json = parseJson(get("/api/v1/blobs/" + handleOf(r.body) + "/metadata").body, "m");
    return meta_json ? (*meta_json)["sourceApp"].get<std::string>() : "?";
  };
  EXPECT_EQ(appOf(*from_camera), "camera");
  EXPECT_EQ(appOf(*from_scanner), "scanner");
  EXPECT_EQ(appOf(*from_host), "");
  auto events = events_->waitForEvents(3, 10s);
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> apps;
  for (const Json& e : events) apps.insert(e["payload"]["sourceApp"].get<std::string>());
  EXPECT_EQ(apps, (std::set<std::string>{"camera", "scanner", ""}));

  // keepUntilNext defaults to "same app": the camera's newer photo does not replace the
  // scanner's.
  Json next = {{"policy", "keepUntilNext"}};
  auto cam1 =
      upload(camera_port,
             {.blob_bytes = 10, .seed = 4, .metadata_json = metadataJson("com.test.latest", next)});
  auto scan1 =
      upload(scanner_port,
             {.blob_bytes = 10, .seed = 5, .metadata_json = metadataJson("com.test.latest", next)});
  auto cam2 =
      upload(camera_port,
             {.blob_bytes = 10, .seed = 6, .metadata_json = metadataJson("com.test.latest", next)});
  ASSERT_TRUE(cam1 && scan1 && cam2);
  EXPECT_EQ(get("/api/v1/blobs/" + handleOf(cam1->body)).status, 404);
  EXPECT_EQ(get("/api/v1/blobs/" + handleOf(scan1->body)).status, 200);
  EXPECT_EQ(get("/api/v1/blobs/" + handleOf(cam2->body)).status, 200);
}

// Issue 17 (D15): HEAD answers like GET, headers and all, without the body.
TEST_F(BlobServiceTest, HeadAnswersLikeGetWithoutTheBody) {
  startService();
  std::string meta = metadataJson("com.test.head", {{"policy", "keepForever"}});
  auto up = upload(service_->port(),
                   {.blob_bytes = 5000, .content_type = "image/png", .metadata_json = meta});
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  std::string handle = handleOf(up->body);

  auto full = get("/api/v1/blobs/" + handle);
  for (const std::string& path : {"/api/v1/blobs/" + handle, "/api/v1/blobs?" + handle}) {
    auto head = send("HEAD", path);
    EXPECT_EQ(head.status, 200) << path;
    EXPECT_TRUE(head.body.empty()) << path;
    EXPECT_EQ(head.headers.find("Content-Length"), "5000") << path;
    for (const char* name : {"Content-Type", "ETag", "Last-Modified", "Accept-Ranges",
                             "Cache-Control", "X-Content-Type-Options"}) {
      EXPECT_EQ(head.headers.find(name), full.headers.find(name)) << path << " " << name;
    }
  }
  auto range = send("HEAD", "/api/v1/blobs/" + handle, {{"Range", "bytes=10-19"}});
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.headers.find("Content-Range"), "bytes 10-19/5000");
  EXPECT_EQ(range.headers.find("Content-Length"), "10");
  auto meta_head = send("HEAD", "/api/v1/blobs/" + handle + "/metadata");
  EXPECT_EQ(meta_head.status, 200);
  EXPECT_EQ(meta_head.headers.find("Content-Length"),
            std::to_string(get("/api/v1/blobs/" + handle + "/metadata").body.size()));
  auto list_head = send("HEAD", "/api/v1/blobs?semantics=com.test.head");
  EXPECT_EQ(list_head.status, 200);
  EXPECT_EQ(send("HEAD", "/api/v1/blobs/0123456789abcdef0123456789abcdef").status, 404);
  auto preflight = send("OPTIONS", "/api/v1/blobs/" + handle);
  EXPECT_EQ(preflight.headers.find("Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS");
}

// Issue 17 (D15): If-Match and If-Unmodified-Since are evaluated (RFC 9110 §13.2.2), with
// If-None-Match and If-Modified-Since as before.
TEST_F(BlobServiceTest, ConditionalRequestsFollowRfc9110) {
  startService();
  auto up = upload(service_->port(),
                   {.blob_bytes = 3000,
                    .seed = 9,
                    .metadata_json = metadataJson("com.test.cond", {{"policy", "keepForever"}})});
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  std::string path = "/api/v1/blobs/" + handleOf(up->body);
  std::string etag = "\"" + patternSha256(3000, 9) + "\"";
  ASSERT_EQ(get(path).headers.find("ETag"), etag);
  const std::string long_ago = "Sun, 06 Nov 1994 08:49:37 GMT";  // before the upload
  const std::string far_future = "Fri, 01 Jan 2100 00:00:00 GMT";

  EXPECT_EQ(get(path, {{"If-Match", etag}}).status, 200);
  EXPECT_EQ(get(path, {{"If-Match", "\"other\", " + etag}}).status, 200);
  EXPECT_EQ(get(path, {{"If-Match", "*"}}).status, 200);
  auto mismatch = get(path, {{"If-Match", "\"other\""}});
  EXPECT_EQ(mismatch.status, 412);
  EXPECT_NE(mismatch.body.find("If-Match"), std::string::npos) << mismatch.body;
  EXPECT_NE(mismatch.body.find("ERR_PRECONDITION_FAILED"), std::string::npos) << mismatch.body;
  EXPECT_EQ(mismatch.headers.find("ETag"), etag);
  EXPECT_EQ(get(path, {{"If-Match", "W/" + etag}}).status, 412) << "strong comparison";
  EXPECT_EQ(send("HEAD", path, {{"If-Match", "\"other\""}}).status, 412);

  auto modified = get(path, {{"If-Unmodified-Since", long_ago}});
  EXPECT_EQ(modified.status, 412);
  EXPECT_NE(modified.body.find("If-Unmodified-Since"), std::string::npos) << modified.body;
  EXPECT_EQ(get(path, {{"If-Unmodified-Since", far_future}}).status, 200);
  EXPECT_EQ(get(path, {{"If-Match", etag}, {"If-Unmodified-Since", long_ago}}).status, 200)
      << "If-Unmodified-Since is ignored when If-Match is present";
  auto ranged = get(path, {{"If-Match", etag}, {"Range", "bytes=0-9"}});
  EXPECT_EQ(ranged.status, 206);
  EXPECT_EQ(ranged.body.size(), 10u);

  auto not_modified = get(path, {{"If-None-Match", "W/" + etag}});
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.headers.find("ETag"), etag);
  EXPECT_FALSE(not_modified.headers.find("Content-Length").has_value()) << "304 has no length";
  EXPECT_EQ(get(path, {{"If-Modified-Since", far_future}}).status, 304);
  EXPECT_EQ(get(path, {{"If-Modified-Since", long_ago}}).status, 200);
  EXPECT_EQ(get(path, {{"If-None-Match", "\"other\""}, {"If-Modified-Since", far_future}}).status,
            200)
      << "If-Modified-Since is ignored when If-None-Match is present";
  EXPECT_EQ(get(path, {{"If-Match", "\"other\""}, {"If-None-Match", etag}}).status, 412);
}

// Issue 17 (D16): no silent cap on listings: a cursor pages through everything, a limit
// above the maximum is refused.
TEST_F(BlobServiceTest, ListingPagesWithACursorInsteadOfCapping) {
  startService();
  std::vector<std::string> handles;  // newest first
  for (uint32_t i = 0; i < 5; ++i) {
    auto up =
        upload(service_->port(),
               {.blob_bytes = 100,
                .seed = 20 + i,
                .metadata_json = metadataJson("com.test.paged one", {{"policy", "keepForever"}})});
    ASSERT_TRUE(up);
    ASSERT_EQ(up->status, 201) << up->body;
    handles.insert(handles.begin(), handleOf(up->body));
  }
  std::vector<std::string> seen;
  std::string next = "/api/v1/blobs?semantics=com.test.paged%20one&limit=2";
  for (int pages = 0; !next.empty(); ++pages) {
    ASSERT_LT(pages, 10) << "the cursor does not advance";
    auto page = get(next);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.headers.find("Access-Control-Expose-Headers"), "Link");
    auto list = parseJson(page.body, "page");
    ASSERT_TRUE(list && list->is_array()) << page.body;
    EXPECT_LE(list->size(), 2u);
    for (const Json& meta : *list) seen.push_back(meta["handle"]);
    next.clear();
    if (auto link = page.headers.find("Link")) {
      ASSERT_TRUE(link->starts_with("</api/v1/blobs?") && link->ends_with(">; rel=\"next\""))
          << *link;
      next = link->substr(1, link->find('>') - 1);
    }
  }
  EXPECT_EQ(seen, handles);

  auto over = get("/api/v1/blobs?semantics=com.test.paged%20one&limit=1001");
  EXPECT_EQ(over.status, 400);
  EXPECT_NE(over.body.find("limit: 1001 is above the maximum of 1000"), std::string::npos)
      << over.body;
  auto bad_cursor = get("/api/v1/blobs?semantics=com.test.paged%20one&after=xyz");
  EXPECT_EQ(bad_cursor.status, 400);
  EXPECT_NE(bad_cursor.body.find("after"), std::string::npos) << bad_cursor.body;
  auto only_cursor = get("/api/v1/blobs?after=999999");  // a listing, not a legacy handle
  EXPECT_EQ(only_cursor.status, 200) << only_cursor.body;
}

// Issue 17 (D17): a keepUntilTime blob that would be expired on arrival, or with a
// fractional `until`, is refused naming the field; nothing is stored or announced.
TEST_F(BlobServiceTest, KeepUntilTimeInThePastOrFractionalIsRefused) {
  startService();
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto attempt = [&](const Json& until) {
    auto up = upload(service_->port(),
                     {.blob_bytes = 2048,
                      .metadata_json = metadataJson(
                          "com.test.bad", {{"policy", "keepUntilTime"}, {"until", until}})});
    EXPECT_TRUE(up) << up.error().message();
    return up ? *up : RawResponse{};
  };
  auto past = attempt(now - 60);
  EXPECT_EQ(past.status, 400) << past.body;
  EXPECT_NE(past.body.find("metadata.retentionPolicy.until"), std::string::npos) << past.body;
  EXPECT_NE(past.body.find("not in the future"), std::string::npos) << past.body;
  auto fractional = attempt(static_cast<double>(now) + 3600.5);
  EXPECT_EQ(fractional.status, 400) << fractional.body;
  EXPECT_NE(fractional.body.find("metadata.retentionPolicy.until"), std::string::npos)
      << fractional.body;
  expectNothingStored();

  // The next good upload's event is the only one the event service ever gets.
  auto good = upload(service_->port(),
                     {.blob_bytes = 10,
                      .metadata_json = metadataJson(
                          "com.test.good", {{"policy", "keepUntilTime"}, {"until", now + 3600}})});
  ASSERT_TRUE(good);
  ASSERT_EQ(good->status, 201) << good->body;
  auto events = events_->waitForEvents(1, 10s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["payload"]["handle"], handleOf(good->body));
  EXPECT_EQ(events_->events().size(), 1u);
}

// Issue 17 (D19): uploaded active content (HTML, SVG, XML, scripts) must not run on the
// service's origin: it is served as a sandboxed attachment; every response says nosniff.
TEST_F(BlobServiceTest, ActiveContentIsServedAsASandboxedAttachment) {
  startService();
  std::string meta = metadataJson("com.test.types", {{"policy", "keepForever"}});
  auto store = [&](const std::string& type, uint32_t seed) {
    auto up =
        upload(service_->port(),
               {.blob_bytes = 256, .seed = seed, .content_type = type, .metadata_json = meta});
    EXPECT_TRUE(up && up->status == 201) << type;
    return up ? handleOf(up->body) : "";
  };
  uint32_t seed = 100;
  for (const char* type :
       {"text/html", "text/html; charset=utf-8", "image/svg+xml", "application/xhtml+xml",
        "text/xml", "application/javascript", "text/javascript", "application/x-unknown"}) {
    std::string handle = store(type, ++seed);
    for (const std::string& path : {"/api/v1/blobs/" + handle, "/api/v1/blobs?" + handle}) {
      for (const char* method : {"GET", "HEAD"}) {
        auto r = send(method, path);
        SCOPED_TRACE(std::string(type) + " " + method + " " + path);
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.headers.find("Content-Type"), type);
        EXPECT_EQ(r.headers.find("X-Content-Type-Options"), "nosniff");
        EXPECT_EQ(r.headers.find("Content-Disposition"), "attachment");
        auto csp = r.headers.find("Content-Security-Policy");
        ASSERT_TRUE(csp);
        EXPECT_TRUE(csp->starts_with("sandbox")) << *csp;
      }
    }
  }
  std::string photo = store("image/jpeg", 200);
  auto inline_photo = get("/api/v1/blobs/" + photo);
  EXPECT_EQ(inline_photo.headers.find("X-Content-Type-Options"), "nosniff");
  EXPECT_FALSE(inline_photo.headers.find("Content-Disposition")) << "images stay inline";
  EXPECT_FALSE(inline_photo.headers.find("Content-Security-Policy"));
  for (const std::string& path :
       {"/api/v1/blobs/" + photo + "/metadata", std::string("/api/v1/blobs?semantics=x"),
        std::string("/api/v1/blobs/0123456789abcdef0123456789abcdef")}) {
    EXPECT_EQ(get(path).headers.find("X-Content-Type-Options"), "nosniff") << path;
  }
}

// DESIGN: < 10 MiB RSS per sidecar with 20 apps attached (socket handoff). After every app
// uploaded and downloaded a blob through its own listener, the process's own (anonymous)
// memory stays small; the figures are printed. VmRSS also counts shared library pages,
// most of them libcurl's tree, loaded when the event publisher first posts (docs/blobs.md).
TEST_F(BlobServiceTest, TwentyAppsAttachedKeepTheProcessMemorySmall) {
  fs::path socket = dir_->path() / "handoff.sock";
  startService({"--handoff-socket", socket.string()});
  handoff::HandoffSender agent;
  ASSERT_TRUE(agent.connect(socket));
  std::vector<uint16_t> ports;
  for (int i = 0; i < 20; ++i) {
    auto [fd, port] = appListener();
    ASSERT_TRUE(agent.add(fmt::format("app-{}", i), "blobs", std::move(fd)));
    ports.push_back(port);
  }
  std::string meta = metadataJson("com.test.rss", {{"policy", "keepForever"}});
  for (std::size_t i = 0; i < ports.size(); ++i) {
    auto up = upload(
        ports[i],
        {.blob_bytes = 64 << 10, .seed = static_cast<uint32_t>(300 + i), .metadata_json = meta});
    ASSERT_TRUE(up);
    ASSERT_EQ(up->status, 201) << up->body;
    EXPECT_EQ(get("/api/v1/blobs/" + handleOf(up->body)).body.size(), 64u << 10);
  }
  ASSERT_EQ(events_->waitForEvents(20, 10s).size(), 20u);
  std::map<std::string, uint64_t> kib;
  std::ifstream status(fmt::format("/proc/{}/status", service_->pid()));
  std::string line;
  while (std::getline(status, line)) {
    std::size_t colon = line.find(':');
    if (colon == std::string::npos || !line.ends_with(" kB")) continue;
    kib[line.substr(0, colon)] = std::stoull(line.substr(colon + 1));
  }
  std::printf("fleetlet-blobs with 20 apps: VmRSS %lu KiB (anonymous %lu, files %lu), peak %lu\n",
              static_cast<unsigned long>(kib["VmRSS"]), static_cast<unsigned long>(kib["RssAnon"]),
              static_cast<unsigned long>(kib["RssFile"]), static_cast<unsigned long>(kib["VmHWM"]));
#if defined(__SANITIZE_ADDRESS__)
  std::printf("(AddressSanitizer build: the bound is not checked)\n");
#else
  EXPECT_GT(kib["RssAnon"], 0u);
  EXPECT_LT(kib["RssAnon"], 10u * 1024);
#endif
}

}  // namespace
}  // namespace fleetlet::blobtest

namespace fleetlet::blobtest {
namespace {

TEST_F(BlobServiceTest, MetricsCountStoredBlobsTransfersAndCollectorRunsOnTheHostListenerOnly) {
  fs::path socket = dir_->path() / "handoff.sock";
  startService({"--handoff-socket", socket.string(), "--quota", "64Mi"});
  std::string meta = metadataJson("com.test.metrics", {{"policy", "keepForever"}});
  auto up = upload(service_->port(), {.blob_bytes = 3000, .metadata_json = meta});
  ASSERT_TRUE(up) << up.error().message();
  ASSERT_EQ(up->status, 201) << up->body;
  const std::string handle = handleOf(up->body);
  EXPECT_EQ(get("/api/v1/blobs/" + handle).status, 200);
  EXPECT_EQ(get("/api/v1/blobs/" + handle).status, 200);
  EXPECT_EQ(get("/api/v1/blobs/no-such-handle").status, 404);

  auto scraped = get("/metrics");
  ASSERT_EQ(scraped.status, 200) << scraped.body;
  const auto& m = scraped.body;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_stored"), 1) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_stored_bytes"), 3000) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_quota_bytes"), 64 * 1024 * 1024) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_uploads_total{result=\"ok\"}"), 1) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_uploads_total{result=\"error\"}"), 0) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_downloads_total{result=\"ok\"}"), 2) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_downloads_total{result=\"error\"}"), 1) << m;
  EXPECT_EQ(testing::sampleValue(m, "fleetlet_blobs_downloaded_bytes_total"), 6000) << m;
  EXPECT_TRUE(testing::sampleValue(m, "fleetlet_blobs_collector_runs_total")) << m;
  EXPECT_EQ(testing::promtoolProblems(m), "") << m;

  // An app's handed-over listener has no /metrics: node-wide numbers are not the app's.
  handoff::HandoffSender agent;
  ASSERT_TRUE(agent.connect(socket));
  auto [camera_fd, camera_port] = appListener();
  ASSERT_TRUE(agent.add("camera", "blobs", std::move(camera_fd)));
  http::Client client({.total_timeout = std::chrono::seconds(30)});
  auto from_app =
      client.send({.url = "http://127.0.0.1:" + std::to_string(camera_port) + "/metrics"});
  ASSERT_TRUE(from_app) << from_app.error().message();
  EXPECT_EQ(from_app->status, 404);
}

}  // namespace
}  // namespace fleetlet::blobtest
