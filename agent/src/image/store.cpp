#include "image/store.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <random>

#include "containerd/leases.h"
#include "oci/digest.h"
#include "oci/media_types.h"
#include "oci/platform.h"

namespace fleetlet::image {
namespace {

constexpr int64_t kMaxDocumentSize = 4 << 20;  // manifests, indexes and configs

containerd::Descriptor toContainerd(const oci::Descriptor& d) {
  return containerd::Descriptor{
      .media_type = d.media_type, .digest = d.digest, .size = d.size, .annotations = {}};
}

oci::Descriptor fromContainerd(const containerd::Descriptor& d) {
  return oci::Descriptor{.media_type = d.media_type, .digest = d.digest, .size = d.size};
}

// A key for an extraction snapshot that no other writer uses.
std::string uniqueKey(std::string_view prefix, std::string_view name) {
  static std::atomic<uint64_t> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return fmt::format("{}-{}-{}-{} {}", prefix, ::getpid(), now, counter.fetch_add(1), name);
}

}  // namespace

containerd::Labels indexLabels(const std::vector<std::pair<size_t, std::string>>& children) {
  containerd::Labels out;
  for (const auto& [i, digest] : children) {
    out[fmt::format("{}m.{}", labels::kGcRefContentPrefix, i)] = digest;
  }
  return out;
}

containerd::Labels manifestLabels(const oci::Manifest& manifest) {
  containerd::Labels out;
  out[std::string(labels::kGcRefContentPrefix) + "config"] = manifest.config.digest;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    out[fmt::format("{}l.{}", labels::kGcRefContentPrefix, i)] = manifest.layers[i].digest;
  }
  return out;
}

ImageStore::ImageStore(std::shared_ptr<containerd::Connection> connection, std::string ns,
                       std::string snapshotter)
    : connection_(std::move(connection)),
      ns_(std::move(ns)),
      snapshotter_(std::move(snapshotter)) {}

containerd::ContentService ImageStore::content(const std::string& lease) const {
  return containerd::ContentService(connection_, {ns_, lease});
}

containerd::SnapshotService ImageStore::snapshots(const std::string& lease) const {
  return containerd::SnapshotService(connection_, {ns_, lease}, snapshotter_);
}

Result<containerd::ScopedLease> ImageStore::beginWrite(const std::string& purpose) const {
  FLEETLET_RETURN_IF_ERROR(containerd::ensureNamespace(connection_, ns_));
  containerd::LeaseService leases(connection_, {ns_, {}});
  std::random_device rd;
  std::string id = fmt::format("fleetlet-{}-{:08x}", purpose, rd());
  return containerd::ScopedLease::create(leases, id, std::chrono::hours(24));
}

Result<bool> ImageStore::hasBlob(const std::string& digest) const {
  FLEETLET_ASSIGN_OR_RETURN(auto info, content().info(digest));
  return info.has_value();
}

Status ImageStore::putBlob(const std::string& lease, const oci::Descriptor& desc,
                           std::string_view bytes, const containerd::Labels& labels) const {
  FLEETLET_RETURN_IF_ERROR(oci::verify(bytes, desc.digest));
  FLEETLET_ASSIGN_OR_RETURN(
      auto writer, content(lease).openWriter("fleetlet-doc-" + desc.digest,
                                             static_cast<int64_t>(bytes.size()), desc.digest));
  if (!writer->alreadyExists()) {
    auto offset = static_cast<size_t>(writer->offset());
    if (offset < bytes.size()) FLEETLET_RETURN_IF_ERROR(writer->write(bytes.substr(offset)));
    FLEETLET_RETURN_IF_ERROR(writer->commit(labels));
    return {};
  }
  if (labels.empty()) return {};
  return content(lease).setLabels(desc.digest, labels);
}

Result<std::unique_ptr<containerd::ContentWriter>> ImageStore::openBlob(
    const std::string& lease, const std::string& kind, const oci::Descriptor& desc) const {
  return content(lease).openWriter(kind + "-" + desc.digest, desc.size, desc.digest);
}

Status ImageStore::discardIngest(const std::string& kind, const oci::Descriptor& desc) const {
  return content().abortIngest(kind + "-" + desc.digest);
}

Result<std::string> ImageStore::readBlob(const std::string& digest, int64_t max_size) const {
  return content().readAll(digest, max_size);
}

Status ImageStore::setLabels(const std::string& digest, const containerd::Labels& labels) const {
  return content().setLabels(digest, labels);
}

Result<std::string> ImageStore::unpack(const std::string& lease, const oci::Manifest& manifest,
                                       const oci::ImageConfig& config,
                                       const std::function<Status(size_t)>& ready,
                                       const UnpackProgress& progress) const {
  FLEETLET_RETURN_IF_ERROR(oci::checkLayersMatchConfig(manifest, config));
  FLEETLET_ASSIGN_OR_RETURN(auto chain, oci::chainIds(config.diff_ids));
  auto snaps = snapshots(lease);
  containerd::DiffService diff(connection_, {ns_, lease});
  std::string parent;
  for (size_t i = 0; i < chain.size(); ++i) {
    const auto& layer = manifest.layers[i];
    FLEETLET_ASSIGN_OR_RETURN(auto existing, snaps.stat(chain[i]));
    bool existed = existing.has_value();
    if (!existed) {
      if (ready) FLEETLET_RETURN_IF_ERROR(ready(i));
      std::string key = uniqueKey("extract", chain[i]);
      FLEETLET_ASSIGN_OR_RETURN(auto mounts,
                                snaps.prepare(key, parent, {{labels::kSnapshotRef, chain[i]}}));
      auto applied = diff.apply(toContainerd(layer), mounts);
      Status committed;
      if (!applied) {
        committed = std::unexpected(applied.error().wrap("unpack layer {}", layer.digest));
      } else if (*applied != config.diff_ids[i]) {
        committed = fail(ErrorCode::kInvalidArgument,
                         "unpack layer {}: uncompressed digest {} does not match the config's "
                         "diff id {}",
                         layer.digest, *applied, config.diff_ids[i]);
      } else {
        committed = snaps.commit(chain[i], key, {{labels::kSnapshotRef, chain[i]}});
        if (!committed && committed.error().code() == ErrorCode::kAlreadyExists) {
          // Someone else committed the same layer meanwhile: theirs is as good as ours, and
          // our active snapshot must go.
          if (auto rm = snaps.remove(key); !rm) {
            spdlog::warn("extraction snapshot {} not removed: {}", key, rm.error().message());
          }
          committed = {};
        } else if (committed) {
          key.clear();  // commit consumed the active snapshot
        }
      }
      if (!committed) {
        if (auto rm = snaps.remove(key); !rm) {
          spdlog::warn("extraction snapshot {} not removed: {}", key, rm.error().message());
        }
        return std::unexpected(committed.error());
      }
    }
    FLEETLET_RETURN_IF_ERROR(
        content(lease).setLabels(layer.digest, {{labels::kUncompressed, config.diff_ids[i]}}));
    if (progress) progress(i, chain.size(), existed);
    parent = chain[i];
  }
  FLEETLET_RETURN_IF_ERROR(content(lease).setLabels(
      manifest.config.digest, {{labels::kGcRefSnapshotPrefix + snapshotter_, parent}}));
  return parent;
}

Status ImageStore::putImage(const std::string& name, const oci::Descriptor& target) const {
  containerd::ImageService images(connection_, {ns_, {}});
  return images.put(containerd::Image{.name = name, .target = toContainerd(target), .labels = {}});
}

Result<std::pair<oci::Manifest, oci::ImageConfig>> ImageStore::resolveLocal(
    const containerd::Descriptor& target) const {
  FLEETLET_ASSIGN_OR_RETURN(std::string bytes, readBlob(target.digest, kMaxDocumentSize));
  FLEETLET_ASSIGN_OR_RETURN(std::string type, oci::detectManifestType(bytes, target.media_type));
  oci::Descriptor manifest_desc = fromContainerd(target);
  if (type == oci::media_type::kOciIndex || type == oci::media_type::kDockerManifestList) {
    FLEETLET_ASSIGN_OR_RETURN(auto index, oci::parseIndex(bytes, type));
    FLEETLET_ASSIGN_OR_RETURN(manifest_desc, oci::selectManifest(index, oci::hostPlatform()));
    FLEETLET_ASSIGN_OR_RETURN(bytes, readBlob(manifest_desc.digest, kMaxDocumentSize));
  }
  FLEETLET_ASSIGN_OR_RETURN(auto manifest, oci::parseManifest(bytes, manifest_desc.media_type));
  FLEETLET_ASSIGN_OR_RETURN(std::string config_bytes,
                            readBlob(manifest.config.digest, kMaxDocumentSize));
  FLEETLET_ASSIGN_OR_RETURN(auto config, oci::parseImageConfig(config_bytes));
  return std::make_pair(std::move(manifest), std::move(config));
}

Result<std::vector<ImageSummary>> ImageStore::list() const {
  containerd::ImageService images(connection_, {ns_, {}});
  FLEETLET_ASSIGN_OR_RETURN(auto all, images.list());
  std::vector<ImageSummary> out;
  for (const auto& image : all) {
    ImageSummary summary{.name = image.name, .target = image.target};
    if (auto resolved = resolveLocal(image.target)) {
      const auto& [manifest, config] = *resolved;
      summary.size = image.target.size + manifest.config.size;
      for (const auto& l : manifest.layers) summary.size += l.size;
      summary.platform = config.platform().toString();
      auto cfg = content().info(manifest.config.digest);
      if (cfg) {
        if (const auto& info = *cfg) {
          auto it = info->labels.find(labels::kGcRefSnapshotPrefix + snapshotter_);
          summary.unpacked = it != info->labels.end() &&
                             snapshots().stat(it->second).value_or(std::nullopt).has_value();
        }
      }
    }
    out.push_back(std::move(summary));
  }
  return out;
}

Status ImageStore::removeImage(const std::string& name) const {
  containerd::ImageService images(connection_, {ns_, {}});
  return images.remove(name, /*sync=*/true);
}

}  // namespace fleetlet::image
