#include "api/blob_api.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <utility>

#include "api/http_range.h"
#include "api/upload_metadata.h"
#include "handoff/http_adapter.h"
#include "json/json.h"
#include "multipart/multipart_parser.h"
#include "os/unique_fd.h"

namespace fleetlet::api {
namespace {

using http::Request;
using http::Response;
using http::StreamWriter;
using http::Task;

// Room in a request body for everything but the blob: the metadata part and part headers.
constexpr uint64_t kMultipartAllowance = uint64_t{128} * 1024;
constexpr std::size_t kMaxMetadataBytes = std::size_t{64} * 1024;
// Body bytes handed to the parser (and the disk) per trip to the blocking pool.
constexpr std::size_t kUploadBatch = std::size_t{1024} * 1024;
// Downloads: bytes per sendfile call, and how far ahead of it the file is read. Each step
// waits for a trip to the blocking pool while the socket drains, so steps are large: with
// 8 MiB steps a download from the page cache topped out at ~2.1 GB/s (nginx: 3.6-4.4).
constexpr uint64_t kSendStep = uint64_t{256} * 1024 * 1024;
constexpr uint64_t kReadAhead = uint64_t{256} * 1024 * 1024;
constexpr int64_t kDefaultListLimit = 100;
constexpr int64_t kMaxListLimit = 1000;

Response tooLarge(uint64_t limit) {
  return http::errorResponse(
      413, "ERR_PAYLOAD_TOO_LARGE",
      fmt::format("the blob exceeds the maximum blob size of {} bytes", limit));
}

// Routes the parts of an upload: `blob` into the temporary file, `metadata` into memory
// (bounded), other parts nowhere.
class UploadSink final : public multipart::PartSink {
 public:
  UploadSink(store::BlobUpload& upload, uint64_t max_blob_size)
      : upload_(upload), max_blob_size_(max_blob_size) {}

  Status onPartBegin(const multipart::PartHeaders& headers) override {
    if (headers.name == "blob") {
      if (has_blob_) {
        return fail(ErrorCode::kInvalidArgument, "multipart: more than one \"blob\" part");
      }
      has_blob_ = true;
      current_ = Part::kBlob;
      content_type_ =
          headers.content_type.empty() ? "application/octet-stream" : headers.content_type;
      filename_ = headers.filename;
    } else if (headers.name == "metadata") {
      if (has_metadata_) {
        return fail(ErrorCode::kInvalidArgument, "multipart: more than one \"metadata\" part");
      }
      has_metadata_ = true;
      current_ = Part::kMetadata;
    } else {
      current_ = Part::kIgnored;
    }
    return Status();
  }

  Status onPartData(std::string_view data) override {
    switch (current_) {
      case Part::kBlob:
        if (max_blob_size_ > 0 && upload_.bytes() + data.size() > max_blob_size_) {
          too_large_ = true;
          return fail(ErrorCode::kResourceExhausted, "the blob exceeds {} bytes", max_blob_size_);
        }
        return upload_.write(data);
      case Part::kMetadata:
        if (metadata_.size() + data.size() > kMaxMetadataBytes) {
          return fail(ErrorCode::kInvalidArgument, "metadata: the part exceeds {} bytes",
                      kMaxMetadataBytes);
        }
        metadata_.append(data);
        return Status();
      case Part::kIgnored:
      case Part::kNone:
        return Status();
    }
    return Status();
  }

  Status onPartEnd() override {
    current_ = Part::kNone;
    return Status();
  }

  bool hasBlob() const { return has_blob_; }
  bool hasMetadata() const { return has_metadata_; }
  bool tooLarge() const { return too_large_; }
  const std::string& metadata() const { return metadata_; }
  const std::string& contentType() const { return content_type_; }
  const std::optional<std::string>& filename() const { return filename_; }

 private:
  enum class Part : std::uint8_t { kNone, kBlob, kMetadata, kIgnored };
  store::BlobUpload& upload_;
  const uint64_t max_blob_size_;
  Part current_ = Part::kNone;
  bool has_blob_ = false;
  bool has_metadata_ = false;
  bool too_large_ = false;
  std::string metadata_;
  std::string content_type_;
  std::optional<std::string> filename_;
};

// Waits (on the strand) until `running` is false; whoever clears it cancels `wake`.
Task<void> waitFor(const bool& running, boost::asio::steady_timer& wake) {
  while (running) {
    wake.expires_at(boost::asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await wake.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
}

// Deletes an unfinished upload's temporary file off the event loop.
Task<void> discardUpload(Request& request, std::unique_ptr<store::BlobUpload>& upload) {
  auto drop = [&upload] { upload.reset(); };
  co_await request.offload(std::move(drop));
}

struct OpenBlob {
  store::BlobMetadata meta;
  std::shared_ptr<UniqueFd> fd;
};

Result<OpenBlob> openBlob(store::BlobStore& store, const std::string& handle) {
  FLEETLET_ASSIGN_OR_RETURN(store::BlobMetadata meta, store.find(handle));
  std::string path = store.contentPath(meta.sha256).string();
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    // Deleted by the collector between the lookup and the open: the blob just expired.
    if (errno == ENOENT) return fail(ErrorCode::kNotFound, "no blob with handle \"{}\"", handle);
    return failErrno(errno, "open content of blob {}", handle);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failErrno(errno, "stat content of blob {}", handle);
  if (static_cast<uint64_t>(st.st_size) != meta.bytes) {
    return fail(ErrorCode::kInternal, "content of blob {} has {} bytes, expected {}", handle,
                st.st_size, meta.bytes);
  }
  return OpenBlob{std::move(meta), std::make_shared<UniqueFd>(std::move(fd))};
}

// A non-negative decimal integer, or nullopt.
std::optional<int64_t> parseCount(std::string_view text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

Result<int64_t> parseLimit(const std::optional<std::string>& text) {
  if (!text) return kDefaultListLimit;
  auto limit = parseCount(*text);
  if (!limit) {
    return fail(ErrorCode::kInvalidArgument, "limit: \"{}\" is not a non-negative integer", *text);
  }
  if (*limit > kMaxListLimit) {
    return fail(ErrorCode::kInvalidArgument,
                "limit: {} is above the maximum of {}; page with the cursor of the Link header "
                "(rel=\"next\")",
                *limit, kMaxListLimit);
  }
  return *limit;
}

Result<std::optional<int64_t>> parseCursor(const std::optional<std::string>& text) {
  if (!text) return std::optional<int64_t>();
  auto cursor = parseCount(*text);
  if (!cursor) {
    return fail(ErrorCode::kInvalidArgument,
                "after: \"{}\" is not a cursor of this service (take it from the Link header)",
                *text);
  }
  return cursor;
}

// Percent-encodes a query parameter value (everything but RFC 3986 unreserved characters).
std::string queryEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

// A failed fetch from other nodes as the response (remote/blob_source.h): 404 and 507 as
// locally, every other failure is the hub's or the holder's: 502.
Response remoteFailure(const Error& error) {
  if (error.code() == ErrorCode::kNotFound || error.code() == ErrorCode::kResourceExhausted) {
    return http::errorResponse(error);
  }
  return http::errorResponse(502, "ERR_BAD_GATEWAY", error.message());
}

}  // namespace

BlobApi::BlobApi(store::BlobStore& store, ApiOptions options)
    : store_(store), options_(options), upload_gate_(options.concurrent_uploads) {
  for (const char* result : {"ok", "error"}) uploads_.touch({result});
  for (const char* result : {"ok", "not_modified", "error"}) downloads_.touch({result});
}

Task<Response> BlobApi::upload(Request& request) {
  Response response = co_await serveUpload(request);
  uploads_.inc({response.status / 100 == 2 ? "ok" : "error"});
  co_return response;
}

Task<Response> BlobApi::download(Request& request, std::string handle) {
  Response response = co_await serveDownload(request, std::move(handle));
  if (response.status == 200 || response.status == 206) {
    downloads_.inc({"ok"});
    const uint64_t bytes = response.stream_length.value_or(response.body.size());
    if (request.method() != "HEAD") downloaded_bytes_.inc({}, static_cast<double>(bytes));
  } else {
    downloads_.inc({response.status == 304 ? "not_modified" : "error"});
  }
  co_return response;
}

void BlobApi::writeMetrics(metrics::TextWriter& out) const {
  uploads_.write(out);
  downloads_.write(out);
  downloaded_bytes_.write(out);
}

Status BlobApi::registerRoutes(http::Server& server) {
  http::RouteOptions upload_options;
  upload_options.body_limit = options_.max_blob_size > 0
                                  ? options_.max_blob_size + kMultipartAllowance
                                  : std::numeric_limits<uint64_t>::max();
  FLEETLET_RETURN_IF_ERROR(server.route(
      "POST", "/api/v1/blobs", [this](Request& r) { return upload(r); }, upload_options));
  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/api/v1/blobs", [this](Request& r) { return query(r); }));
  FLEETLET_RETURN_IF_ERROR(server.route("GET", "/api/v1/blobs/{handle}", [this](Request& r) {
    return download(r, std::string(r.param("handle")));
  }));
  FLEETLET_RETURN_IF_ERROR(
      server.route("GET", "/api/v1/blobs/{handle}/metadata",
                   [this](Request& r) { return metadata(r, std::string(r.param("handle"))); }));
  return Status();
}

Task<Response> BlobApi::serveUpload(Request& request) {
  auto boundary = multipart::boundaryFromContentType(request.header("Content-Type").value_or(""));
  if (!boundary) co_return http::errorResponse(boundary.error());

  std::optional<uint64_t> expected;
  if (auto length = request.contentLength()) {
    uint64_t blob_bound = *length > kMultipartAllowance ? *length - kMultipartAllowance : 0;
    if (options_.max_blob_size > 0 && blob_bound > options_.max_blob_size) {
      co_return tooLarge(options_.max_blob_size);
    }
    expected = blob_bound;
  }
  // Before any buffer is allocated: the gate bounds what uploads in flight keep resident.
  UploadGate::Slot slot = co_await upload_gate_.enter();
  auto begin = [this, expected] { return store_.beginUpload(expected); };
  auto started = co_await request.offload(std::move(begin));
  if (!started) co_return http::errorResponse(started.error());
  std::unique_ptr<store::BlobUpload> upload = std::move(*started);

  UploadSink sink(*upload, options_.max_blob_size);
  multipart::MultipartParser parser(*boundary, sink);
  std::optional<Error> failure;
  // The body is read straight from the socket into 1 MiB batches (one copy, large reads). One
  // trip to the blocking pool per batch: while the pool parses, hashes and writes one batch,
  // this coroutine reads the next into the other buffer (two cores work at once).
  std::unique_ptr<char[]> batches[2] = {std::make_unique_for_overwrite<char[]>(kUploadBatch),
                                        std::make_unique_for_overwrite<char[]>(kUploadBatch)};
  int current = 0;
  struct Pending {
    bool running = false;
    Status result;
  } pending;
  boost::asio::steady_timer wake(request.executor());
  bool at_end = false;
  while (!at_end && !failure) {
    char* batch = batches[current].get();
    std::size_t filled = 0;
    while (filled < kUploadBatch) {
      auto n = co_await request.readInto(std::span<char>(batch + filled, kUploadBatch - filled));
      if (!n) {
        failure = n.error();  // the server answers 413/400 itself or the client is gone
        break;
      }
      if (*n == 0) {
        at_end = true;
        break;
      }
      filled += *n;
    }
    co_await waitFor(pending.running, wake);
    if (!pending.result) failure = pending.result.error();
    if (failure || filled == 0) break;
    pending.running = true;
    std::string_view data(batch, filled);
    auto feed = [&parser, data] { return parser.feed(data); };
    auto run = [&request, &pending, &wake, feed]() -> Task<void> {
      pending.result = co_await request.offload(feed);
      pending.running = false;
      wake.cancel();
    };
    boost::asio::co_spawn(request.executor(), run, boost::asio::detached);
    current ^= 1;
  }
  // The pool may still be working on the last batch: it references parser and batches.
  co_await waitFor(pending.running, wake);
  if (!failure && !pending.result) failure = pending.result.error();
  if (!failure) {
    if (auto finished = parser.finish(); !finished) failure = finished.error();
  }
  if (!failure && !sink.hasBlob()) {
    failure = Error(ErrorCode::kInvalidArgument, "multipart: the \"blob\" part is missing");
  }
  if (!failure && !sink.hasMetadata()) {
    failure = Error(ErrorCode::kInvalidArgument, "multipart: the \"metadata\" part is missing");
  }
  Result<UploadMetadata> meta = fail(ErrorCode::kInternal, "unset");
  if (!failure) {
    meta = parseUploadMetadata(sink.metadata());
    if (!meta) failure = meta.error();
  }
  if (failure) {
    co_await discardUpload(request, upload);
    if (sink.tooLarge()) co_return tooLarge(options_.max_blob_size);
    co_return http::errorResponse(*failure);
  }

  store::NewBlob blob;
  blob.semantics = meta->semantics;
  blob.retention = meta->retention;
  blob.content_type = sink.contentType();
  blob.filename = sink.filename();
  blob.source_app = std::string(handoff::appFromTag(request.listenerTag()).value_or(""));
  auto commit = [this, &upload, &blob] { return store_.commit(*upload, std::move(blob)); };
  auto committed = co_await request.offload(std::move(commit));
  co_await discardUpload(request, upload);
  if (!committed) {
    // The client's mistake (an expiry not in the future) is no failure of the service.
    auto level = committed.error().code() == ErrorCode::kInvalidArgument ? spdlog::level::debug
                                                                         : spdlog::level::warn;
    spdlog::log(level, "blobs: storing an upload failed: {}", committed.error().describe());
    co_return http::errorResponse(committed.error());
  }
  spdlog::debug("blobs: stored {} ({} bytes, {}) from app \"{}\"", committed->handle,
                committed->bytes, committed->semantics, committed->source_app);
  Response response = Response::json(201, Json{{"handle", committed->handle}}.dump());
  response.header("Location", "/api/v1/blobs/" + committed->handle);
  co_return response;
}

Task<Response> BlobApi::serveDownload(Request& request, std::string handle) {
  auto lookup = [this, handle] { return openBlob(store_, handle); };
  auto opened = co_await request.offload(std::move(lookup));
  if (!opened && opened.error().code() == ErrorCode::kNotFound && options_.remote != nullptr) {
    Status fetched = co_await fetchRemote(request, handle);
    if (!fetched) co_return remoteFailure(fetched.error());
    auto fetched_lookup = [this, handle] { return openBlob(store_, handle); };
    opened = co_await request.offload(std::move(fetched_lookup));
  }
  if (!opened) co_return http::errorResponse(opened.error());
  const store::BlobMetadata& meta = opened->meta;
  std::string etag = "\"" + meta.sha256 + "\"";
  int64_t modified = meta.created_on_micros / 1000000;
  const bool passive = passiveContentType(meta.content_type);
  auto common = [&](Response& r) {
    r.header("ETag", etag)
        .header("Last-Modified", httpDate(modified))
        .header("Accept-Ranges", "bytes")
        .header("Cache-Control", "private, max-age=31536000, immutable");
    // Active content (HTML, SVG, XML, scripts, ...) must not run on this origin, which every
    // app's pages may read (Access-Control-Allow-Origin): a download, in a sandbox (an opaque
    // origin without scripts) should a browser render it anyway. nosniff: every response.
    if (!passive) {
      r.header("Content-Disposition", "attachment")
          .header("Content-Security-Policy", "sandbox; default-src 'none'");
    }
  };

  // Conditional requests (RFC 9110 §13.2.2).
  ConditionalHeaders conditions{.if_match = request.header("If-Match"),
                                .if_none_match = request.header("If-None-Match"),
                                .if_modified_since = request.header("If-Modified-Since"),
                                .if_unmodified_since = request.header("If-Unmodified-Since")};
  PreconditionResult precondition =
      evaluatePreconditions(request.method(), conditions, etag, modified);
  if (precondition.outcome == PreconditionResult::Outcome::kNotModified) {
    Response response = Response::empty(304);
    common(response);
    co_return response;
  }
  if (precondition.outcome == PreconditionResult::Outcome::kFailed) {
    Response response = http::errorResponse(
        412, "ERR_PRECONDITION_FAILED",
        fmt::format("{}: the condition does not hold for blob {} (ETag {}, Last-Modified {})",
                    precondition.header, meta.handle, etag, httpDate(modified)));
    common(response);
    co_return response;
  }

  std::optional<std::string_view> range_header = request.header("Range");
  if (auto if_range = request.header("If-Range"); if_range && range_header) {
    auto date = parseHttpDate(*if_range);
    bool current = date ? *date >= modified : *if_range == etag;
    if (!current) range_header.reset();
  }
  auto range = parseRange(range_header, meta.bytes);
  if (!range) {
    Response response =
        http::errorResponse(416, "ERR_RANGE_NOT_SATISFIABLE", range.error().message());
    response.header("Content-Range", fmt::format("bytes */{}", meta.bytes));
    common(response);
    co_return response;
  }
  const auto& asked = *range;
  uint64_t offset = asked ? asked->first : 0;
  uint64_t length = asked ? asked->length() : meta.bytes;
  std::shared_ptr<UniqueFd> fd = opened->fd;
  std::string name = meta.handle;
  Response response = Response::sized(
      *range ? 206 : 200, meta.content_type, length,
      [fd, offset, length, name](StreamWriter& writer) -> Task<void> {
        // sendfile runs on the event loop and would wait there for every page not in the
        // cache (uploads bypass the cache): the blocking pool asks the kernel to read the
        // next kReadAhead bytes, a step at a time, so sendfile finds them in memory.
        const uint64_t end = offset + length;
        uint64_t position = offset;
        uint64_t requested = offset;
        while (position < end) {
          uint64_t wanted = std::min(end, position + kReadAhead);
          if (wanted > requested) {
            int file = fd->get();
            auto read_ahead = [file, requested, wanted] {
              ::posix_fadvise(file, static_cast<off_t>(requested),
                              static_cast<off_t>(wanted - requested), POSIX_FADV_WILLNEED);
            };
            co_await writer.offload(std::move(read_ahead));
            requested = wanted;
          }
          uint64_t step = std::min(end - position, kSendStep);
          auto sent = co_await writer.sendFile(fd->get(), position, step);
          if (!sent) {
            if (sent.error().code() != ErrorCode::kUnavailable) {
              spdlog::warn("blobs: sending {} failed: {}", name, sent.error().describe());
            }
            co_return;
          }
          position += step;
        }
      });
  if (asked) {
    response.header("Content-Range",
                    fmt::format("bytes {}-{}/{}", asked->first, asked->last, meta.bytes));
  }
  common(response);
  co_return response;
}

Task<Response> BlobApi::metadata(Request& request, std::string handle) {
  auto lookup = [this, handle] { return store_.find(handle); };
  auto found = co_await request.offload(std::move(lookup));
  if (!found && found.error().code() == ErrorCode::kNotFound && options_.remote != nullptr) {
    Status fetched = co_await fetchRemote(request, handle);
    if (!fetched) co_return remoteFailure(fetched.error());
    auto fetched_lookup = [this, handle] { return store_.find(handle); };
    found = co_await request.offload(std::move(fetched_lookup));
  }
  if (!found) co_return http::errorResponse(found.error());
  co_return Response::json(200, store::toJson(*found).dump());
}

Task<Status> BlobApi::fetchRemote(Request& request, const std::string& handle) {
  // The fetch runs on the fetcher's threads; this request waits on its strand without
  // holding a thread of the blocking pool.
  struct Wait {
    explicit Wait(const boost::asio::any_io_executor& executor) : wake(executor) {}
    boost::asio::steady_timer wake;
    bool running = true;
    Status result;
  };
  auto wait = std::make_shared<Wait>(request.executor());
  options_.remote->fetch(handle, [wait, executor = request.executor()](Status result) {
    boost::asio::post(executor, [wait, result = std::move(result)]() mutable {
      wait->result = std::move(result);
      wait->running = false;
      wait->wake.cancel();
    });
  });
  co_await waitFor(wait->running, wait->wake);
  co_return wait->result;
}

Task<Response> BlobApi::query(Request& request) {
  const http::HeaderList& params = request.queryParams();
  auto semantics = request.query("semantics");
  auto limit_text = request.query("limit");
  auto after_text = request.query("after");
  if (!params.empty() && !semantics && !limit_text && !after_text) {
    // Legacy forms: ?<handle> and ?metadata-<handle>.
    // Named arguments: GCC 12 mishandles temporaries with destructors inside co_await.
    const std::string& key = params.front().first;
    if (key.starts_with("metadata-")) {
      std::string handle = key.substr(9);
      co_return co_await metadata(request, std::move(handle));
    }
    std::string handle = key;
    co_return co_await download(request, std::move(handle));
  }
  auto limit = parseLimit(limit_text);
  if (!limit) co_return http::errorResponse(limit.error());
  auto after = parseCursor(after_text);
  if (!after) co_return http::errorResponse(after.error());
  std::string wanted = semantics.value_or("");
  int64_t n = *limit;
  std::optional<int64_t> start = *after;
  auto list = [this, wanted, n, start] { return store_.list(wanted, n, start); };
  auto found = co_await request.offload(std::move(list));
  if (!found) co_return http::errorResponse(found.error());
  Json out = Json::array();
  for (const store::BlobMetadata& meta : found->blobs) out.push_back(store::toJson(meta));
  Response response = Response::json(200, out.dump());
  // The next page (RFC 8288), readable by pages of other origins too.
  response.header("Access-Control-Expose-Headers", "Link");
  if (std::optional<int64_t> cursor = found->next) {
    std::string next = "/api/v1/blobs?";
    if (semantics) next += "semantics=" + queryEscape(*semantics) + "&";
    next += fmt::format("limit={}&after={}", n, *cursor);
    response.header("Link", fmt::format("<{}>; rel=\"next\"", next));
  }
  co_return response;
}

}  // namespace fleetlet::api
