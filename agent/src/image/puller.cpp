#include "image/puller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "oci/media_types.h"

namespace fleetlet::image {
namespace {

constexpr size_t kWriteChunk = 1 << 20;  // bytes per Content.Write message

containerd::Labels merged(containerd::Labels a, const containerd::Labels& b) {
  a.insert(b.begin(), b.end());
  return a;
}

// Downloads the layers of one pull on a bounded set of threads and lets the unpacker wait
// for each layer in order.
class LayerDownloads {
 public:
  LayerDownloads(BlobSource& source, const ImageStore& store, std::string lease,
                 const std::vector<oci::Descriptor>& layers, const PullOptions& options,
                 std::mutex& progress_mu)
      : source_(source),
        store_(store),
        lease_(std::move(lease)),
        layers_(layers),
        options_(options),
        progress_mu_(progress_mu),
        results_(layers.size()) {}

  // Stops the workers (at their next chunk) and joins them.
  ~LayerDownloads() {
    abort_ = true;
    for (auto& t : workers_) t.join();
  }

  void start() {
    size_t n = std::clamp<size_t>(options_.max_parallel, 1, std::max<size_t>(1, layers_.size()));
    for (size_t i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }

  // Blocks until layer i is committed; its error otherwise.
  Status waitFor(size_t i) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return results_[i].has_value(); });
    return *results_[i];  // NOLINT(bugprone-unchecked-optional-access): waited for above
  }

  // Blocks until every layer finished; the first error (in layer order) otherwise.
  Status waitAll() {
    for (size_t i = 0; i < layers_.size(); ++i) FLEETLET_RETURN_IF_ERROR(waitFor(i));
    return {};
  }

  int64_t fetched() const { return fetched_.load(); }
  int64_t resumed() const { return resumed_.load(); }

 private:
  void work() {
    for (;;) {
      size_t i = next_.fetch_add(1);
      if (i >= layers_.size()) return;
      Status st = abort_ ? fail(ErrorCode::kUnavailable, "pull aborted") : download(layers_[i]);
      if (!st) abort_ = true;
      {
        std::lock_guard lock(mu_);
        results_[i] = std::move(st);
      }
      cv_.notify_all();
    }
  }

  void report(PullProgress::Phase phase, const oci::Descriptor& d, int64_t done) {
    if (!options_.progress) return;
    std::lock_guard lock(progress_mu_);
    options_.progress(PullProgress{.kind = PullProgress::Kind::kLayer,
                                   .phase = phase,
                                   .digest = d.digest,
                                   .done = done,
                                   .total = d.size});
  }

  Status download(const oci::Descriptor& d) {
    FLEETLET_ASSIGN_OR_RETURN(bool exists, store_.hasBlob(d.digest));
    if (exists) {
      report(PullProgress::Phase::kExists, d, d.size);
      return {};
    }
    FLEETLET_ASSIGN_OR_RETURN(auto writer, store_.openBlob(lease_, "layer", d));
    if (writer->alreadyExists()) {
      report(PullProgress::Phase::kExists, d, d.size);
      return {};
    }
    int64_t start = writer->offset();
    resumed_ += start;
    if (start > 0) spdlog::info("layer {}: resuming at byte {} of {}", d.digest, start, d.size);
    report(PullProgress::Phase::kDownloading, d, start);

    std::string buffer;
    buffer.reserve(kWriteChunk);
    std::optional<Error> sink_error;
    int64_t received = 0;
    auto flush = [&]() -> Status {
      if (buffer.empty()) return {};
      auto st = writer->write(buffer);
      buffer.clear();
      report(PullProgress::Phase::kDownloading, d, writer->offset());
      return st;
    };
    if (start < d.size) {
      auto streamed = source_.streamBlob(d, static_cast<uint64_t>(start), [&](std::string_view c) {
        if (abort_) {
          sink_error = Error(ErrorCode::kUnavailable, "pull aborted");
          return false;
        }
        received += static_cast<int64_t>(c.size());
        fetched_ += static_cast<int64_t>(c.size());
        if (start + received > d.size) {
          sink_error = Error(ErrorCode::kInvalidArgument,
                             fmt::format("layer {}: registry sent more than the {} bytes declared",
                                         d.digest, d.size));
          return false;
        }
        buffer.append(c);
        if (buffer.size() >= kWriteChunk) {
          if (auto st = flush(); !st) {
            sink_error = st.error();
            return false;
          }
        }
        return true;
      });
      if (sink_error) {
        if (sink_error->code() == ErrorCode::kInvalidArgument)
          (void)store_.discardIngest("layer", d);
        return std::unexpected(*sink_error);
      }
      if (!streamed && streamed.error().code() == ErrorCode::kInvalidArgument) {
        // The source checked the bytes and refused them: what was written is bad.
        (void)store_.discardIngest("layer", d);
        return fail(ErrorCode::kInvalidArgument, "digest mismatch for layer {}: {}", d.digest,
                    streamed.error().message());
      }
      if (!streamed) return std::unexpected(streamed.error().wrap("download layer {}", d.digest));
      FLEETLET_RETURN_IF_ERROR(flush());
    }
    if (writer->offset() != d.size) {
      return fail(ErrorCode::kUnavailable, "download layer {}: transfer ended at byte {} of {}",
                  d.digest, writer->offset(), d.size);
    }
    if (auto st = writer->commit(source_.blobLabels()); !st) {
      // containerd hashed the whole ingest and refused it: start over next time.
      (void)store_.discardIngest("layer", d);
      if (st.error().code() == ErrorCode::kFailedPrecondition ||
          st.error().code() == ErrorCode::kInvalidArgument) {
        return fail(ErrorCode::kInvalidArgument, "digest mismatch for layer {}: {}", d.digest,
                    st.error().message());
      }
      return std::unexpected(st.error().wrap("store layer {}", d.digest));
    }
    report(PullProgress::Phase::kDownloaded, d, d.size);
    return {};
  }

  BlobSource& source_;
  const ImageStore& store_;
  std::string lease_;
  const std::vector<oci::Descriptor>& layers_;
  const PullOptions& options_;
  std::mutex& progress_mu_;

  std::atomic<size_t> next_{0};
  std::atomic<bool> abort_{false};
  std::atomic<int64_t> fetched_{0};
  std::atomic<int64_t> resumed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<Status>> results_;  // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace

std::string_view toString(PullProgress::Kind kind) {
  switch (kind) {
    case PullProgress::Kind::kIndex:
      return "index";
    case PullProgress::Kind::kManifest:
      return "manifest";
    case PullProgress::Kind::kConfig:
      return "config";
    case PullProgress::Kind::kLayer:
      return "layer";
    case PullProgress::Kind::kBlob:
      return "blob";
  }
  return "blob";
}

Result<PullResult> pullImage(BlobSource& source, const ImageStore& store, const std::string& name,
                             const PullOptions& options) {
  std::mutex progress_mu;
  auto report = [&](PullProgress::Kind kind, const oci::Descriptor& d) {
    if (!options.progress) return;
    std::lock_guard lock(progress_mu);
    options.progress(PullProgress{.kind = kind,
                                  .phase = PullProgress::Phase::kDownloaded,
                                  .digest = d.digest,
                                  .done = d.size,
                                  .total = d.size});
  };

  FLEETLET_ASSIGN_OR_RETURN(auto lease, store.beginWrite("pull"));
  FLEETLET_ASSIGN_OR_RETURN(ResolvedRoot root, source.resolve());
  const containerd::Labels blob_labels = source.blobLabels();

  FLEETLET_ASSIGN_OR_RETURN(std::string root_type,
                            oci::detectManifestType(root.bytes, root.descriptor.media_type));
  PullResult result{.name = name, .target = root.descriptor, .manifest = root.descriptor};
  std::string manifest_bytes = root.bytes;
  std::optional<std::pair<size_t, std::string>> index_child;
  if (root_type == oci::media_type::kOciIndex ||
      root_type == oci::media_type::kDockerManifestList) {
    report(PullProgress::Kind::kIndex, root.descriptor);
    FLEETLET_ASSIGN_OR_RETURN(auto index, oci::parseIndex(root.bytes, root_type));
    FLEETLET_ASSIGN_OR_RETURN(result.manifest, oci::selectManifest(index, options.platform));
    auto pos = std::find(index.manifests.begin(), index.manifests.end(), result.manifest);
    index_child.emplace(static_cast<size_t>(pos - index.manifests.begin()), result.manifest.digest);
    FLEETLET_ASSIGN_OR_RETURN(manifest_bytes, source.fetchDocument(result.manifest));
  } else {
    result.manifest.media_type = root_type;
  }
  FLEETLET_ASSIGN_OR_RETURN(auto manifest,
                            oci::parseManifest(manifest_bytes, result.manifest.media_type));
  report(PullProgress::Kind::kManifest, result.manifest);
  FLEETLET_ASSIGN_OR_RETURN(std::string config_bytes, source.fetchDocument(manifest.config));
  FLEETLET_ASSIGN_OR_RETURN(auto config, oci::parseImageConfig(config_bytes));
  FLEETLET_RETURN_IF_ERROR(oci::checkLayersMatchConfig(manifest, config));
  FLEETLET_RETURN_IF_ERROR(store.putBlob(lease.id(), manifest.config, config_bytes, blob_labels));
  report(PullProgress::Kind::kConfig, manifest.config);

  result.layers = manifest.layers.size();
  result.total_bytes = result.manifest.size + manifest.config.size;
  for (const auto& l : manifest.layers) result.total_bytes += l.size;

  {
    LayerDownloads downloads(source, store, lease.id(), manifest.layers, options, progress_mu);
    downloads.start();
    if (options.unpack) {
      auto unpacked = store.unpack(
          lease.id(), manifest, config, [&](size_t i) { return downloads.waitFor(i); },
          [&](size_t i, size_t, bool) {
            if (!options.progress) return;
            std::lock_guard lock(progress_mu);
            const auto& l = manifest.layers[i];
            options.progress(PullProgress{.kind = PullProgress::Kind::kLayer,
                                          .phase = PullProgress::Phase::kUnpacked,
                                          .digest = l.digest,
                                          .done = l.size,
                                          .total = l.size});
          });
      if (!unpacked) return std::unexpected(unpacked.error());
      // A layer whose snapshot already existed is not waited for by unpack: make sure every
      // blob is in before the image may be recorded.
      FLEETLET_RETURN_IF_ERROR(downloads.waitAll());
      result.top_chain_id = *unpacked;
    } else {
      FLEETLET_RETURN_IF_ERROR(downloads.waitAll());
    }
    result.fetched_bytes = downloads.fetched();
    result.resumed_bytes = downloads.resumed();
  }

  FLEETLET_RETURN_IF_ERROR(store.putBlob(lease.id(), result.manifest, manifest_bytes,
                                         merged(blob_labels, manifestLabels(manifest))));
  if (index_child) {
    FLEETLET_RETURN_IF_ERROR(store.putBlob(lease.id(), root.descriptor, root.bytes,
                                           merged(blob_labels, indexLabels({*index_child}))));
  }
  FLEETLET_RETURN_IF_ERROR(store.putImage(name, root.descriptor));
  return result;
}

}  // namespace fleetlet::image
