#pragma once
// BlobStore: content-addressed, durable blob storage in a data directory.
//
//   <data-dir>/index.db         SQLite: blobs (metadata), contents (sha256 → refs), outbox
//   <data-dir>/tmp/             uploads in progress; emptied when the store opens
//   <data-dir>/blobs/<sha256>   content, stored once however many blobs share it
//
// An upload is written to a temporary file while it streams in, with direct I/O where the
// filesystem allows it (O_DIRECT: no page-cache copy, the disk works while the upload streams
// in), else through the page cache with writeback started every few MiB and finished pages
// dropped, so memory stays flat and commit's fsync has little left to do. commit() fsyncs it,
// renames
// it to its content address (or drops it when that content is already stored), fsyncs the
// directory, and only then inserts the index rows (blob + metadata event) in one transaction.
// So a blob is visible exactly when it is complete and durable; a crash at any point leaves
// at most a temporary or unreferenced file, both removed by the next open().
//
// Quota: the bytes of stored content plus the bytes of uploads in flight never exceed the
// quota; a write that would fails with kResourceExhausted and the upload stores nothing.
//
// Concurrency: every method is thread-safe. Index access and the content-file changes that
// go with it are serialized by one mutex; uploads write their temporary files in parallel.
// All methods may block on disk I/O (call them off an event loop).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/sha256.h"
#include "error/error.h"
#include "json/json.h"
#include "os/unique_fd.h"
#include "retention/collector.h"
#include "retention/retention_policy.h"
#include "sqlite/database.h"

namespace fleetlet::store {

// Time source, injected so retention can be tested without waiting.
class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch.
  virtual int64_t nowMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowMicros() const override;
};

struct BlobMetadata {
  std::string handle;
  std::string semantics;
  uint64_t bytes = 0;
  std::string content_type;
  std::optional<std::string> filename;
  std::string sha256;
  int64_t created_on_micros = 0;
  std::string source;
  std::string source_app;
  retention::RetentionPolicy retention;
};

// The metadata object of blobs-v1.md: handle, semantics, bytes, contentType, sha256,
// createdOn (microseconds since the epoch), source, sourceApp, retentionPolicy (+ filename).
Json toJson(const BlobMetadata& metadata);

struct StoreOptions {
  std::filesystem::path data_dir;
  // Bytes of content the store may hold; 0 = unlimited.
  uint64_t quota = 0;
  // This node's id, the `source` of every blob stored here.
  std::string source = "local";
  // Called (after commit, without locks held) when an event was added to the outbox.
  std::function<void()> on_event;
  // Write uploads with O_DIRECT when the filesystem supports it (else, or when false, through
  // the page cache with early writeback).
  bool direct_io = true;
};

class BlobStore;

// One upload in progress: a temporary file plus its running size and sha256. Destroying an
// upload that was not committed deletes the temporary file. Not thread-safe (one caller at a
// time); with direct I/O it runs a thread of its own that writes one chunk while the caller
// hashes and stages the next.
class BlobUpload {
 public:
  ~BlobUpload();
  BlobUpload(const BlobUpload&) = delete;
  BlobUpload& operator=(const BlobUpload&) = delete;

  // Appends data. Fails with kResourceExhausted when the quota would be exceeded, or with the
  // write errno (ENOSPC → kResourceExhausted). After a failure the upload is unusable.
  Status write(std::string_view data);
  uint64_t bytes() const { return bytes_; }
  // Whether the file is written with O_DIRECT (else through the page cache).
  bool direct() const { return direct_; }

  // Bytes per direct write (staging buffer) and per writeback step of the page-cache path.
  static constexpr std::size_t kDirectChunk = std::size_t{1024} * 1024;
  static constexpr uint64_t kWritebackChunk = uint64_t{8} * 1024 * 1024;

 private:
  friend class BlobStore;
  class DirectWriter;
  struct FreeAligned {
    void operator()(char* p) const;
  };
  BlobUpload(BlobStore& store, std::filesystem::path path, UniqueFd fd);
  void discard();
  // Direct I/O: hands the staged chunk to the writer thread (padded to the block size when
  // `last`, and then waits for it; finish() truncates the padding away). Switches to the page
  // cache when the writer found direct I/O refused.
  Status flushStaged(bool last);
  // Writes at written_ through the page cache (and paces writeback).
  Status writeBuffered(const char* data, std::size_t size);
  // Makes everything written durable: the staged tail, the size, fdatasync.
  Status finish();

  BlobStore& store_;
  std::filesystem::path path_;
  UniqueFd fd_;
  Sha256 hash_;
  uint64_t bytes_ = 0;
  uint64_t reserved_ = 0;  // quota reserved in the store for these bytes
  bool committed_ = false;
  bool direct_ = false;
  // Direct I/O: bytes are staged in one block-aligned buffer while the writer thread writes
  // the other.
  std::unique_ptr<char, FreeAligned> staging_[2];
  int filling_ = 0;
  std::size_t staged_ = 0;
  std::unique_ptr<DirectWriter> writer_;  // started with the first whole chunk
  // Bytes in the file or handed to the writer (the staged tail is not among them).
  uint64_t written_ = 0;
  // Page-cache path: writeback was started for [0, flushing_), has completed and the pages
  // were dropped for [0, dropped_).
  uint64_t flushing_ = 0;
  uint64_t dropped_ = 0;
};

// One page of a listing.
struct BlobPage {
  std::vector<BlobMetadata> blobs;
  // Where the next page starts (pass as `after`); nullopt when this page is the last. Blobs
  // stored meanwhile come before the listing's start, so they never shift later pages.
  std::optional<int64_t> next;
};

// What the client said about a new blob.
struct NewBlob {
  std::string semantics;
  std::string content_type;
  std::optional<std::string> filename;
  std::string source_app;
  retention::RetentionPolicy retention;
};

class BlobStore final : public retention::Expirer {
 public:
  // Creates the directories and the index if needed, removes leftovers of interrupted
  // uploads (temporary files, content without an index entry) and expired blobs. Fails with
  // the filesystem or SQLite error.
  static Result<std::unique_ptr<BlobStore>> open(StoreOptions options, const Clock& clock);
  ~BlobStore() override;

  // Starts an upload. `expected_bytes` (when known, e.g. from Content-Length) is checked
  // against the free quota first: kResourceExhausted if it cannot fit.
  Result<std::unique_ptr<BlobUpload>> beginUpload(std::optional<uint64_t> expected_bytes);
  // Makes the upload durable and visible (see the header comment), applies keepUntilNext to
  // older blobs it supersedes, and queues the metadata event. Returns the new metadata.
  // Fails with kInvalidArgument (naming metadata.retentionPolicy.until) and stores nothing
  // when a keepUntilTime blob's time is not in the future.
  Result<BlobMetadata> commit(BlobUpload& upload, NewBlob blob);

  // Stores an upload fetched from another node of the site as blob `meta`: its handle,
  // source, sourceApp, createdOn and retention are kept; durable and visible like commit()
  // (keepUntilNext applied), but no metadata event is queued (the uploader's node published
  // it). Stores nothing and fails with kInvalidArgument when the content's size or sha256 differ
  // from meta's, with kNotFound when a keepUntilTime blob has expired. When the handle is stored
  // already (a concurrent fetch) the upload is dropped and the stored blob returned.
  Result<BlobMetadata> commitReplica(BlobUpload& upload, const BlobMetadata& meta);

  // The metadata of a live blob: kNotFound for an unknown or expired handle.
  Result<BlobMetadata> find(std::string_view handle);
  // Live blobs with `semantics` (all when empty), newest first, at most `limit`, starting
  // after the position `after` (a BlobPage::next of an earlier call; nullopt: the newest).
  Result<BlobPage> list(std::string_view semantics, int64_t limit,
                        std::optional<int64_t> after = std::nullopt);
  // Where the content of `sha256` lives.
  std::filesystem::path contentPath(std::string_view sha256) const;

  // Deletes expired blobs and content nobody references any more.
  Result<int64_t> collectExpired() override;

  // A new connection to the index (for another thread, e.g. the event publisher).
  Result<sqlite::Database> openConnection() const;

  uint64_t usedBytes() const;
  // Blobs in the index (live, and expired ones the collector has not deleted yet).
  Result<int64_t> blobCount();
  // The quota (0: none).
  uint64_t quota() const { return options_.quota; }
  const std::filesystem::path& indexPath() const { return index_path_; }

 private:
  friend class BlobUpload;
  BlobStore(StoreOptions options, const Clock& clock, sqlite::Database db);
  Status cleanDirectories();
  // The part of commit() and commitReplica() after the content is verified: rename, index,
  // and (announce) the metadata event.
  Result<BlobMetadata> install(BlobUpload& upload, BlobMetadata meta, bool announce);
  // Reserves `bytes` more quota; kResourceExhausted when it would not fit.
  Status reserve(uint64_t bytes);
  void release(uint64_t bytes);
  // Deletes the blob rows in `handles` (inside a transaction); returns content files whose
  // refcount dropped to zero, to unlink after commit. mutex_ held.
  Result<std::vector<std::string>> deleteBlobsLocked(const std::vector<std::string>& handles);
  void unlinkContents(const std::vector<std::string>& shas);

  const StoreOptions options_;
  const Clock& clock_;
  std::filesystem::path tmp_dir_;
  std::filesystem::path blob_dir_;
  std::filesystem::path index_path_;

  mutable std::mutex mutex_;
  sqlite::Database db_;    // guarded by mutex_
  uint64_t used_ = 0;      // guarded by mutex_; bytes of stored content
  uint64_t reserved_ = 0;  // guarded by mutex_; bytes of uploads in flight
};

}  // namespace fleetlet::store
