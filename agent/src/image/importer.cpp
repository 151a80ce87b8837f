#include "image/importer.h"

#include <archive.h>
#include <archive_entry.h>
#include <spdlog/spdlog.h>

#include <array>
#include <memory>
#include <regex>

#include "json/json.h"
#include "oci/digest.h"
#include "oci/reference.h"

namespace fleetlet::image {
namespace {

constexpr int64_t kMaxDocumentSize = 4 << 20;
constexpr size_t kReadChunk = 1 << 20;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// A BlobSource over blobs an import already put into the content store.
class ContentStoreSource : public BlobSource {
 public:
  ContentStoreSource(const ImageStore& store, oci::Descriptor root)
      : store_(store), root_(std::move(root)) {}

  Result<ResolvedRoot> resolve() override {
    FLEETLET_ASSIGN_OR_RETURN(std::string bytes, fetchDocument(root_));
    return ResolvedRoot{.descriptor = root_, .bytes = std::move(bytes)};
  }

  Result<std::string> fetchDocument(const oci::Descriptor& desc) override {
    auto bytes = store_.readBlob(desc.digest, kMaxDocumentSize);
    if (!bytes && bytes.error().code() == ErrorCode::kNotFound) {
      return fail(ErrorCode::kNotFound, "blob {} is not in the archive", desc.digest);
    }
    if (!bytes) return std::unexpected(bytes.error());
    FLEETLET_RETURN_IF_ERROR(oci::verify(*bytes, desc.digest));
    return bytes;
  }

  Status streamBlob(const oci::Descriptor& desc, uint64_t, const ChunkSink&) override {
    return fail(ErrorCode::kNotFound, "blob {} is not in the archive", desc.digest);
  }

  containerd::Labels blobLabels() const override { return {}; }

 private:
  const ImageStore& store_;
  oci::Descriptor root_;
};

std::string entryPath(archive_entry* entry) {
  std::string path = archive_entry_pathname(entry) != nullptr ? archive_entry_pathname(entry) : "";
  while (path.starts_with("./")) path.erase(0, 2);
  return path;
}

Result<std::string> readSmallEntry(archive* a, const std::string& path, int64_t size) {
  if (size > kMaxDocumentSize) {
    return fail(ErrorCode::kInvalidArgument, "archive entry {} is {} bytes, more than {}", path,
                size, kMaxDocumentSize);
  }
  std::string out(static_cast<size_t>(size), '\0');
  la_ssize_t got = archive_read_data(a, out.data(), out.size());
  if (got < 0 || got != static_cast<la_ssize_t>(size)) {
    return fail(ErrorCode::kInvalidArgument, "archive entry {}: {}", path,
                archive_error_string(a) != nullptr ? archive_error_string(a) : "short read");
  }
  return out;
}

// Streams one blob entry into the content store; containerd verifies the digest on commit.
Status ingestBlob(archive* a, const ImageStore& store, const std::string& lease,
                  const oci::Descriptor& desc) {
  FLEETLET_ASSIGN_OR_RETURN(bool exists, store.hasBlob(desc.digest));
  if (exists) return {};
  // An ingest left by an earlier import may hold a prefix; the archive is read from its
  // start anyway, so begin afresh.
  FLEETLET_RETURN_IF_ERROR(store.discardIngest("import", desc));
  FLEETLET_ASSIGN_OR_RETURN(auto writer, store.openBlob(lease, "import", desc));
  if (writer->alreadyExists()) return {};
  std::string buffer(kReadChunk, '\0');
  for (;;) {
    la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
    if (n < 0) {
      return fail(ErrorCode::kInvalidArgument, "read blob {} from archive: {}", desc.digest,
                  archive_error_string(a) != nullptr ? archive_error_string(a) : "error");
    }
    if (n == 0) break;
    FLEETLET_RETURN_IF_ERROR(
        writer->write(std::string_view(buffer.data(), static_cast<size_t>(n))));
  }
  if (auto st = writer->commit({}); !st) {
    (void)store.discardIngest("import", desc);
    return fail(ErrorCode::kInvalidArgument, "digest mismatch for blob {} in archive: {}",
                desc.digest, st.error().message());
  }
  return {};
}

// The name to record for index entry `i`.
Result<std::string> imageName(const oci::Descriptor& entry, size_t i, size_t count,
                              const ImportOptions& options) {
  for (const char* key : {"io.containerd.image.name", "org.opencontainers.image.ref.name"}) {
    auto it = entry.annotations.find(key);
    if (it == entry.annotations.end()) continue;
    // A full reference has a repository; a bare tag ("1") does not.
    if (it->second.find('/') != std::string::npos) {
      FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(it->second));
      return ref.toString();
    }
  }
  if (options.name && count == 1) {
    FLEETLET_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(*options.name));
    return ref.toString();
  }
  return fail(ErrorCode::kInvalidArgument,
              "index.json manifests[{}] names no image reference (annotation "
              "io.containerd.image.name or a full org.opencontainers.image.ref.name): give one "
              "with --name",
              i);
}

}  // namespace

Result<std::vector<PullResult>> importArchive(const std::filesystem::path& path,
                                              const ImageStore& store,
                                              const ImportOptions& options) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return fail(ErrorCode::kInvalidArgument, "open archive {}: {}", path.string(),
                archive_error_string(a.get()) != nullptr ? archive_error_string(a.get()) : "error");
  }
  FLEETLET_ASSIGN_OR_RETURN(auto lease, store.beginWrite("import"));

  static const std::regex kBlobPath("^blobs/sha256/([0-9a-f]{64})$");
  std::optional<std::string> index_json;
  std::optional<std::string> layout;
  size_t blobs = 0;
  archive_entry* entry = nullptr;
  for (;;) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return fail(
          ErrorCode::kInvalidArgument, "read archive {}: {}", path.string(),
          archive_error_string(a.get()) != nullptr ? archive_error_string(a.get()) : "malformed");
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    std::string name = entryPath(entry);
    int64_t size = archive_entry_size(entry);
    std::smatch m;
    if (name == "index.json") {
      FLEETLET_ASSIGN_OR_RETURN(index_json, readSmallEntry(a.get(), name, size));
    } else if (name == "oci-layout") {
      FLEETLET_ASSIGN_OR_RETURN(layout, readSmallEntry(a.get(), name, size));
    } else if (std::regex_match(name, m, kBlobPath)) {
      oci::Descriptor desc{
          .media_type = "application/octet-stream", .digest = "sha256:" + m[1].str(), .size = size};
      FLEETLET_RETURN_IF_ERROR(ingestBlob(a.get(), store, lease.id(), desc));
      ++blobs;
      if (options.pull.progress) {
        options.pull.progress(PullProgress{.kind = PullProgress::Kind::kBlob,
                                           .phase = PullProgress::Phase::kDownloaded,
                                           .digest = desc.digest,
                                           .done = size,
                                           .total = size});
      }
    } else {
      spdlog::debug("import {}: ignoring entry {}", path.string(), name);
    }
  }
  if (!layout)
    return fail(ErrorCode::kInvalidArgument,
                "archive {} has no oci-layout file (not an OCI image layout)", path.string());
  FLEETLET_ASSIGN_OR_RETURN(auto layout_json, parseJson(*layout, "oci-layout"));
  FLEETLET_ASSIGN_OR_RETURN(std::string version,
                            requireString(layout_json, "imageLayoutVersion", "oci-layout"));
  if (version != "1.0.0") {
    return fail(ErrorCode::kInvalidArgument, "oci-layout: imageLayoutVersion {} is not 1.0.0",
                version);
  }
  if (!index_json)
    return fail(ErrorCode::kInvalidArgument, "archive {} has no index.json", path.string());
  FLEETLET_ASSIGN_OR_RETURN(auto index, oci::parseIndex(*index_json));
  if (index.manifests.empty())
    return fail(ErrorCode::kInvalidArgument, "index.json lists no images");
  spdlog::info("import {}: {} blobs, {} images", path.string(), blobs, index.manifests.size());

  std::vector<PullResult> results;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    const auto& desc = index.manifests[i];
    FLEETLET_ASSIGN_OR_RETURN(std::string name,
                              imageName(desc, i, index.manifests.size(), options));
    ContentStoreSource source(store, desc);
    auto pulled = pullImage(source, store, name, options.pull);
    if (!pulled) return std::unexpected(pulled.error().wrap("import {}", name));
    results.push_back(std::move(*pulled));
  }
  return results;
}

}  // namespace fleetlet::image
