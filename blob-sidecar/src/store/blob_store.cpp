#include "store/blob_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <thread>
#include <utility>

#include "events/event_outbox.h"

namespace fleetlet::store {
namespace {

namespace fs = std::filesystem;

// Alignment of direct I/O (memory, file offset, length): the page size, a multiple of every
// common logical block size.
constexpr std::size_t kBlockAlign = 4096;
// SQLite page cache per index connection, KiB: rows are small and the kernel caches the file.
constexpr int kIndexCacheKib = 256;

constexpr std::string_view kMigration1 = R"sql(
CREATE TABLE contents (
  sha256 TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  refs INTEGER NOT NULL
);
CREATE TABLE blobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  handle TEXT NOT NULL UNIQUE,
  sha256 TEXT NOT NULL REFERENCES contents(sha256),
  bytes INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  filename TEXT,
  semantics TEXT NOT NULL,
  source TEXT NOT NULL,
  source_app TEXT NOT NULL,
  created_on INTEGER NOT NULL,
  policy TEXT NOT NULL,
  expires_at INTEGER,
  next_semantics TEXT,
  next_app TEXT,
  next_source TEXT
);
CREATE INDEX blobs_by_semantics ON blobs (semantics, seq);
CREATE INDEX blobs_by_expiry ON blobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX blobs_by_next ON blobs (next_semantics, next_app) WHERE next_semantics IS NOT NULL;
)sql";

constexpr std::string_view kColumns =
    "handle, semantics, bytes, content_type, filename, sha256, created_on, source, source_app, "
    "policy";

Result<BlobMetadata> readRow(sqlite::Statement& row) {
  BlobMetadata out;
  out.handle = row.columnText(0);
  out.semantics = row.columnText(1);
  out.bytes = static_cast<uint64_t>(row.columnInt64(2));
  out.content_type = row.columnText(3);
  if (!row.columnIsNull(4)) out.filename = row.columnText(4);
  out.sha256 = row.columnText(5);
  out.created_on_micros = row.columnInt64(6);
  out.source = row.columnText(7);
  out.source_app = row.columnText(8);
  auto policy_json = parseJson(row.columnText(9), "stored retention policy");
  if (!policy_json) return std::unexpected(policy_json.error());
  auto policy = retention::parseStoredRetentionPolicy(*policy_json, "retentionPolicy");
  if (!policy) return std::unexpected(policy.error().wrap("blob {}", out.handle));
  out.retention = *policy;
  return out;
}

Result<std::string> randomHandle() {
  std::array<unsigned char, 16> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Status fsyncPath(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY));
  if (!fd) return failErrno(errno, "open {}", path.string());
  if (::fsync(fd.get()) != 0) return failErrno(errno, "fsync {}", path.string());
  return Status();
}

Status makeDirectory(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return failErrno(ec.value(), "create {}", path.string());
  return Status();
}

bool isHexSha(std::string_view name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const std::string_view kMigrations[] = {
    kMigration1,
    blobevents::kOutboxSchema,
};

}  // namespace

int64_t SystemClock::nowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json toJson(const BlobMetadata& m) {
  Json out = {{"handle", m.handle},
              {"semantics", m.semantics},
              {"bytes", m.bytes},
              {"contentType", m.content_type},
              {"sha256", m.sha256},
              {"createdOn", m.created_on_micros},
              {"source", m.source},
              {"sourceApp", m.source_app},
              {"retentionPolicy", retention::toJson(m.retention)}};
  if (m.filename) out["filename"] = *m.filename;
  return out;
}

// ---------------------------------------------------------------------------------------------
// BlobUpload

// NOLINTNEXTLINE(cppcoreguidelines-owning-memory): the deleter of aligned_alloc'ed buffers
void BlobUpload::FreeAligned::operator()(char* p) const { std::free(p); }

// Writes one buffer at a time on its own thread, so that the disk works while the uploading
// thread hashes and stages the next chunk. When the kernel refuses direct I/O (EINVAL: an
// alignment the device does not accept), it turns O_DIRECT off on the descriptor and writes
// through the page cache; refused() tells the upload to do the same from then on.
class BlobUpload::DirectWriter {
 public:
  DirectWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    thread_ = std::thread([this] { run(); });
  }
  ~DirectWriter() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  DirectWriter(const DirectWriter&) = delete;
  DirectWriter& operator=(const DirectWriter&) = delete;

  // Waits until the write in flight (if any) is done. Fails with the first failed write's
  // error, and so does every later call.
  Status wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !busy_; });
    return status_;
  }
  // Starts writing `size` bytes at `offset`. Only after wait(); `data` must stay untouched
  // until the next wait() returns.
  void start(const char* data, std::size_t size, uint64_t offset) {
    {
      std::lock_guard lock(mutex_);
      data_ = data;
      size_ = size;
      offset_ = offset;
      busy_ = true;
    }
    changed_.notify_all();
  }
  bool refused() const { return refused_.load(); }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [this] { return stop_ || busy_; });
      if (!busy_) return;
      const char* data = data_;
      std::size_t size = size_;
      uint64_t offset = offset_;
      bool failed = !status_;
      lock.unlock();
      Status result = failed ? Status() : writeAll(data, size, offset);
      lock.lock();
      if (status_ && !result) status_ = std::move(result);
      busy_ = false;
      changed_.notify_all();
    }
  }

  Status writeAll(const char* data, std::size_t size, uint64_t offset) {
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL && !refused_) {
        int flags = ::fcntl(fd_, F_GETFL);
        if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
          return failErrno(errno, "turn off direct I/O on {}", path_);
        }
        spdlog::info("blob store: direct I/O refused on {}; writing through the page cache", path_);
        refused_ = true;
        continue;
      }
      if (n < 0) return failErrno(errno, "write {}", path_);
      done += static_cast<std::size_t>(n);
    }
    return Status();
  }

  const int fd_;
  const std::string path_;
  std::atomic<bool> refused_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;           // guarded by mutex_
  bool busy_ = false;           // guarded by mutex_
  const char* data_ = nullptr;  // guarded by mutex_
  std::size_t size_ = 0;        // guarded by mutex_
  uint64_t offset_ = 0;         // guarded by mutex_
  Status status_;               // guarded by mutex_
  std::thread thread_;
};

BlobUpload::BlobUpload(BlobStore& store, fs::path path, UniqueFd fd)
    : store_(store), path_(std::move(path)), fd_(std::move(fd)) {}

BlobUpload::~BlobUpload() { discard(); }

void BlobUpload::discard() {
  writer_.reset();  // lets the write in flight finish: it uses fd_ and the staging buffers
  if (!committed_ && fd_) {
    fd_.reset();
    ::unlink(path_.c_str());
  }
  if (reserved_ > 0) {
    store_.release(reserved_);
    reserved_ = 0;
  }
}

Status BlobUpload::write(std::string_view data) {
  if (!fd_ || committed_) return fail(ErrorCode::kFailedPrecondition, "upload is closed");
  if (data.empty()) return Status();
  if (auto status = store_.reserve(data.size()); !status) {
    discard();
    return status;
  }
  reserved_ += data.size();
  hash_.update(data);
  bytes_ += data.size();
  Status written;
  while (written && !data.empty()) {
    if (!direct_) {
      written = writeBuffered(data.data(), data.size());
      break;
    }
    std::size_t take = std::min(kDirectChunk - staged_, data.size());
    std::memcpy(staging_[filling_].get() + staged_, data.data(), take);
    staged_ += take;
    data.remove_prefix(take);
    if (staged_ == kDirectChunk) written = flushStaged(false);
  }
  if (!written) discard();
  return written;
}

Status BlobUpload::flushStaged(bool last) {
  if (!writer_) writer_ = std::make_unique<DirectWriter>(fd_.get(), path_.string());
  // The write before last used the other buffer; this one was written two chunks ago.
  FLEETLET_RETURN_IF_ERROR(writer_->wait());
  char* chunk = staging_[filling_].get();
  if (writer_->refused()) {
    direct_ = false;
    std::size_t size = staged_;
    staged_ = 0;
    return writeBuffered(chunk, size);
  }
  std::size_t size = staged_;
  if (last) {
    // O_DIRECT writes whole blocks: pad the tail with zeros; finish() truncates them away.
    size = (staged_ + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
    std::memset(chunk + staged_, 0, size - staged_);
  }
  writer_->start(chunk, size, written_);
  written_ += staged_;
  staged_ = 0;
  filling_ ^= 1;
  if (last) return writer_->wait();
  return Status();
}

Status BlobUpload::writeBuffered(const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd_.get(), data, size, static_cast<off_t>(written_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "write {}", path_.string());
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
  if (written_ - flushing_ >= kWritebackChunk) {
    // Start writeback of what was just written; wait for the step before (long done, as a
    // rule) and drop its pages: dirty pages stay bounded by two steps, and commit's fdatasync
    // finds almost nothing left to write. Errors surface in that fdatasync.
    ::sync_file_range(fd_.get(), static_cast<off_t>(flushing_),
                      static_cast<off_t>(written_ - flushing_), SYNC_FILE_RANGE_WRITE);
    if (flushing_ > dropped_) {
      ::sync_file_range(
          fd_.get(), static_cast<off_t>(dropped_), static_cast<off_t>(flushing_ - dropped_),
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      ::posix_fadvise(fd_.get(), static_cast<off_t>(dropped_),
                      static_cast<off_t>(flushing_ - dropped_), POSIX_FADV_DONTNEED);
      dropped_ = flushing_;
    }
    flushing_ = written_;
  }
  return Status();
}

Status BlobUpload::finish() {
  bool padded = false;
  if (direct_ && staged_ > 0) {
    padded = true;
    FLEETLET_RETURN_IF_ERROR(flushStaged(true));
  } else if (writer_) {
    FLEETLET_RETURN_IF_ERROR(writer_->wait());
  }
  writer_.reset();
  if (written_ != bytes_) {
    return fail(ErrorCode::kInternal, "upload {}: wrote {} bytes of {}", path_.string(), written_,
                bytes_);
  }
  if (padded && ::ftruncate(fd_.get(), static_cast<off_t>(bytes_)) != 0) {
    return failErrno(errno, "truncate {}", path_.string());
  }
  if (::fdatasync(fd_.get()) != 0) return failErrno(errno, "fsync {}", path_.string());
  return Status();
}

// ---------------------------------------------------------------------------------------------
// BlobStore

Result<sqlite::Database> BlobStore::openConnection() const {
  return sqlite::Database::open(index_path_, kMigrations, {.cache_kib = kIndexCacheKib});
}

Result<std::unique_ptr<BlobStore>> BlobStore::open(StoreOptions options, const Clock& clock) {
  FLEETLET_RETURN_IF_ERROR(makeDirectory(options.data_dir / "tmp"));
  FLEETLET_RETURN_IF_ERROR(makeDirectory(options.data_dir / "blobs"));
  auto db = sqlite::Database::open(options.data_dir / "index.db", kMigrations,
                                   {.cache_kib = kIndexCacheKib});
  if (!db) return std::unexpected(db.error().wrap("blob index"));
  std::unique_ptr<BlobStore> store(new BlobStore(std::move(options), clock, std::move(*db)));
  FLEETLET_RETURN_IF_ERROR(store->cleanDirectories());
  if (auto removed = store->collectExpired(); !removed) {
    return std::unexpected(removed.error());
  }
  return store;
}

BlobStore::BlobStore(StoreOptions options, const Clock& clock, sqlite::Database db)
    : options_(std::move(options)),
      clock_(clock),
      tmp_dir_(options_.data_dir / "tmp"),
      blob_dir_(options_.data_dir / "blobs"),
      index_path_(options_.data_dir / "index.db"),
      db_(std::move(db)) {}

BlobStore::~BlobStore() = default;

Status BlobStore::cleanDirectories() {
  std::lock_guard lock(mutex_);
  std::error_code ec;
  int removed_tmp = 0;
  for (const auto& entry : fs::directory_iterator(tmp_dir_, ec)) {
    fs::remove_all(entry.path(), ec);
    ++removed_tmp;
  }
  if (removed_tmp > 0) {
    spdlog::info("blob store: removed {} interrupted upload(s)", removed_tmp);
  }

  // Contents nobody references (a crash between the unlink and the row deletion cannot
  // happen, but a crash between rename and index insert leaves a file without a row).
  FLEETLET_RETURN_IF_ERROR(db_.exec("DELETE FROM contents WHERE refs <= 0"));
  std::set<std::string> known;
  FLEETLET_ASSIGN_OR_RETURN(auto select, db_.prepare("SELECT sha256, bytes FROM contents"));
  used_ = 0;
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, select.step());
    if (!row) break;
    known.insert(select.columnText(0));
    used_ += static_cast<uint64_t>(select.columnInt64(1));
  }
  for (const auto& entry : fs::directory_iterator(blob_dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (!isHexSha(name) || !known.contains(name)) {
      spdlog::info("blob store: removing unreferenced content {}", name);
      fs::remove_all(entry.path(), ec);
    }
  }
  if (ec) return failErrno(ec.value(), "cleaning {}", options_.data_dir.string());
  return Status();
}

Status BlobStore::reserve(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  if (options_.quota > 0 && used_ + reserved_ + bytes > options_.quota) {
    return fail(ErrorCode::kResourceExhausted,
                "blob store quota of {} bytes exceeded ({} stored, {} uploading)", options_.quota,
                used_, reserved_);
  }
  reserved_ += bytes;
  return Status();
}

void BlobStore::release(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  reserved_ -= std::min(reserved_, bytes);
}

uint64_t BlobStore::usedBytes() const {
  std::lock_guard lock(mutex_);
  return used_;
}

Result<int64_t> BlobStore::blobCount() {
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(auto count, db_.prepare("SELECT count(*) FROM blobs"));
  FLEETLET_ASSIGN_OR_RETURN(bool row, count.step());
  return row ? count.columnInt64(0) : 0;
}

fs::path BlobStore::contentPath(std::string_view sha256) const { return blob_dir_ / sha256; }

Result<std::unique_ptr<BlobUpload>> BlobStore::beginUpload(std::optional<uint64_t> expected) {
  if (expected && options_.quota > 0) {
    std::lock_guard lock(mutex_);
    if (used_ + reserved_ + *expected > options_.quota) {
      return fail(ErrorCode::kResourceExhausted,
                  "a blob of {} bytes does not fit the quota of {} bytes ({} stored, {} "
                  "uploading)",
                  *expected, options_.quota, used_, reserved_);
    }
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string name, randomHandle());
  fs::path path = tmp_dir_ / ("upload-" + name);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return failErrno(errno, "create {}", path.string());
  int fd_number = fd.get();
  std::unique_ptr<BlobUpload> upload(new BlobUpload(*this, std::move(path), std::move(fd)));
  if (options_.direct_io) {
    // Set after open: an O_DIRECT open that the filesystem refuses would still create the file.
    int flags = ::fcntl(fd_number, F_GETFL);
    if (flags >= 0 && ::fcntl(fd_number, F_SETFL, flags | O_DIRECT) == 0) {
      for (auto& buffer : upload->staging_) {
        // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): owned by buffer (FreeAligned)
        buffer.reset(static_cast<char*>(std::aligned_alloc(kBlockAlign, BlobUpload::kDirectChunk)));
        if (!buffer) return fail(ErrorCode::kResourceExhausted, "no memory for an upload buffer");
      }
      upload->direct_ = true;
    }
  }
  return upload;
}

Result<std::vector<std::string>> BlobStore::deleteBlobsLocked(
    const std::vector<std::string>& handles) {
  std::vector<std::string> unreferenced;
  FLEETLET_ASSIGN_OR_RETURN(auto remove,
                            db_.prepare("DELETE FROM blobs WHERE handle = ? RETURNING sha256"));
  FLEETLET_ASSIGN_OR_RETURN(
      auto unref,
      db_.prepare("UPDATE contents SET refs = refs - 1 WHERE sha256 = ? RETURNING refs, bytes"));
  FLEETLET_ASSIGN_OR_RETURN(auto drop, db_.prepare("DELETE FROM contents WHERE sha256 = ?"));
  for (const std::string& handle : handles) {
    FLEETLET_RETURN_IF_ERROR(remove.reset());
    FLEETLET_RETURN_IF_ERROR(remove.bind(1, handle));
    FLEETLET_ASSIGN_OR_RETURN(bool row, remove.step());
    if (!row) continue;
    std::string sha = remove.columnText(0);
    FLEETLET_RETURN_IF_ERROR(remove.run());
    FLEETLET_RETURN_IF_ERROR(unref.reset());
    FLEETLET_RETURN_IF_ERROR(unref.bind(1, sha));
    FLEETLET_ASSIGN_OR_RETURN(bool counted, unref.step());
    if (counted && unref.columnInt64(0) <= 0) {
      FLEETLET_RETURN_IF_ERROR(unref.run());
      FLEETLET_RETURN_IF_ERROR(drop.reset());
      FLEETLET_RETURN_IF_ERROR(drop.bind(1, sha));
      FLEETLET_RETURN_IF_ERROR(drop.run());
      unreferenced.push_back(sha);
    } else if (counted) {
      FLEETLET_RETURN_IF_ERROR(unref.run());
    }
  }
  return unreferenced;
}

void BlobStore::unlinkContents(const std::vector<std::string>& shas) {
  for (const std::string& sha : shas) {
    fs::path path = contentPath(sha);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) used_ -= std::min<uint64_t>(used_, st.st_size);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("blob store: cannot delete {}: {}", path.string(), std::strerror(errno));
    }
  }
}

Result<BlobMetadata> BlobStore::commit(BlobUpload& upload, NewBlob blob) {
  if (upload.committed_ || !upload.fd_) {
    return fail(ErrorCode::kFailedPrecondition, "upload is already closed");
  }
  if (blob.retention.kind == retention::PolicyKind::kKeepUntilTime) {
    // A blob that would be expired when stored: refused, so nothing is stored or announced.
    int64_t now = clock_.nowMicros();
    if (blob.retention.until_micros <= now) {
      upload.discard();
      return fail(ErrorCode::kInvalidArgument,
                  "metadata.retentionPolicy.until: {} is not in the future (now {}); the blob "
                  "would expire at once",
                  retention::toJson(blob.retention)["until"].dump(), now / 1000000);
    }
  }
  if (auto finished = upload.finish(); !finished) {
    upload.discard();
    return std::unexpected(finished.error());
  }
  BlobMetadata meta;
  meta.sha256 = upload.hash_.finishHex();
  meta.bytes = upload.bytes_;
  meta.semantics = std::move(blob.semantics);
  meta.content_type = std::move(blob.content_type);
  meta.filename = std::move(blob.filename);
  meta.source = options_.source;
  meta.source_app = std::move(blob.source_app);
  meta.retention = blob.retention;
  FLEETLET_ASSIGN_OR_RETURN(meta.handle, randomHandle());
  meta.created_on_micros = clock_.nowMicros();

  return install(upload, std::move(meta), /*announce=*/true);
}

Result<BlobMetadata> BlobStore::commitReplica(BlobUpload& upload, const BlobMetadata& meta) {
  if (upload.committed_ || !upload.fd_) {
    return fail(ErrorCode::kFailedPrecondition, "upload is already closed");
  }
  if (meta.retention.kind == retention::PolicyKind::kKeepUntilTime &&
      meta.retention.until_micros <= clock_.nowMicros()) {
    upload.discard();
    return fail(ErrorCode::kNotFound, "blob {} has expired (retention until {})", meta.handle,
                retention::toJson(meta.retention)["until"].dump());
  }
  if (auto finished = upload.finish(); !finished) {
    upload.discard();
    return std::unexpected(finished.error());
  }
  std::string sha256 = upload.hash_.finishHex();
  if (upload.bytes_ != meta.bytes || sha256 != meta.sha256) {
    uint64_t got = upload.bytes_;
    upload.discard();
    return fail(ErrorCode::kInvalidArgument,
                "content of blob {} does not match its metadata: got {} bytes with sha256 {}, "
                "expected {} bytes with sha256 {}",
                meta.handle, got, sha256, meta.bytes, meta.sha256);
  }
  return install(upload, meta, /*announce=*/false);
}

Result<BlobMetadata> BlobStore::install(BlobUpload& upload, BlobMetadata meta, bool announce) {
  std::vector<std::string> freed;
  {
    std::lock_guard lock(mutex_);
    if (!announce) {
      // A replica of a blob stored meanwhile (another fetch, or an earlier run): keep that one.
      FLEETLET_ASSIGN_OR_RETURN(
          auto stored, db_.prepare(fmt::format("SELECT {} FROM blobs WHERE handle = ?", kColumns)));
      FLEETLET_RETURN_IF_ERROR(stored.bind(1, meta.handle));
      FLEETLET_ASSIGN_OR_RETURN(bool found, stored.step());
      if (found) {
        upload.fd_.reset();
        ::unlink(upload.path_.c_str());
        upload.committed_ = true;
        reserved_ -= std::min(reserved_, upload.reserved_);
        upload.reserved_ = 0;
        return readRow(stored);
      }
    }
    FLEETLET_ASSIGN_OR_RETURN(auto exists, db_.prepare("SELECT 1 FROM contents WHERE sha256 = ?"));
    FLEETLET_RETURN_IF_ERROR(exists.bind(1, meta.sha256));
    FLEETLET_ASSIGN_OR_RETURN(bool already_stored, exists.step());
    // Finish the read before the write transaction: a statement left on its row keeps a read
    // snapshot, and BEGIN IMMEDIATE on a stale snapshot fails at once with "database is
    // locked" whenever the outbox's connection wrote meanwhile (20 concurrent uploaders of
    // the same photo saw ~20 % of them refused).
    FLEETLET_RETURN_IF_ERROR(exists.reset());
    fs::path final_path = contentPath(meta.sha256);
    upload.fd_.reset();
    if (already_stored) {
      ::unlink(upload.path_.c_str());
    } else {
      if (::rename(upload.path_.c_str(), final_path.c_str()) != 0) {
        int err = errno;
        ::unlink(upload.path_.c_str());
        upload.committed_ = true;
        return failErrno(err, "rename {} to {}", upload.path_.string(), final_path.string());
      }
      if (auto synced = fsyncPath(blob_dir_); !synced) {
        ::unlink(final_path.c_str());
        upload.committed_ = true;
        return std::unexpected(synced.error());
      }
    }
    upload.committed_ = true;

    auto indexed = [&]() -> Status {
      FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
      FLEETLET_ASSIGN_OR_RETURN(
          auto content, db_.prepare("INSERT INTO contents (sha256, bytes, refs) VALUES (?, ?, 1) "
                                    "ON CONFLICT (sha256) DO UPDATE SET refs = refs + 1"));
      FLEETLET_RETURN_IF_ERROR(content.bindAll(meta.sha256, static_cast<int64_t>(meta.bytes)));
      FLEETLET_RETURN_IF_ERROR(content.run());

      // keepUntilNext: older blobs this one supersedes.
      FLEETLET_ASSIGN_OR_RETURN(
          auto superseded,
          db_.prepare("SELECT handle FROM blobs WHERE next_semantics = ? AND next_app = ? AND "
                      "(next_source IS NULL OR next_source = ?)"));
      FLEETLET_RETURN_IF_ERROR(superseded.bindAll(meta.semantics, meta.source_app, meta.source));
      std::vector<std::string> handles;
      while (true) {
        FLEETLET_ASSIGN_OR_RETURN(bool row, superseded.step());
        if (!row) break;
        handles.push_back(superseded.columnText(0));
      }
      FLEETLET_ASSIGN_OR_RETURN(freed, deleteBlobsLocked(handles));

      FLEETLET_ASSIGN_OR_RETURN(
          auto insert,
          db_.prepare("INSERT INTO blobs (handle, sha256, bytes, content_type, filename, "
                      "semantics, source, source_app, created_on, policy, expires_at, "
                      "next_semantics, next_app, next_source) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
      FLEETLET_RETURN_IF_ERROR(insert.bindAll(meta.handle, meta.sha256,
                                              static_cast<int64_t>(meta.bytes), meta.content_type));
      if (meta.filename) {
        FLEETLET_RETURN_IF_ERROR(insert.bind(5, *meta.filename));
      } else {
        FLEETLET_RETURN_IF_ERROR(insert.bind(5, nullptr));
      }
      FLEETLET_RETURN_IF_ERROR(insert.bind(6, meta.semantics));
      FLEETLET_RETURN_IF_ERROR(insert.bind(7, meta.source));
      FLEETLET_RETURN_IF_ERROR(insert.bind(8, meta.source_app));
      FLEETLET_RETURN_IF_ERROR(insert.bind(9, meta.created_on_micros));
      FLEETLET_RETURN_IF_ERROR(insert.bind(10, retention::toJson(meta.retention).dump()));
      if (meta.retention.kind == retention::PolicyKind::kKeepUntilTime) {
        FLEETLET_RETURN_IF_ERROR(insert.bind(11, meta.retention.until_micros));
      } else {
        FLEETLET_RETURN_IF_ERROR(insert.bind(11, nullptr));
      }
      if (meta.retention.kind == retention::PolicyKind::kKeepUntilNext) {
        retention::SupersedeKey key =
            retention::supersedeKey(meta.retention, meta.semantics, meta.source_app);
        FLEETLET_RETURN_IF_ERROR(insert.bind(12, key.semantics));
        FLEETLET_RETURN_IF_ERROR(insert.bind(13, key.source_app));
        if (key.source) {
          FLEETLET_RETURN_IF_ERROR(insert.bind(14, *key.source));
        } else {
          FLEETLET_RETURN_IF_ERROR(insert.bind(14, nullptr));
        }
      } else {
        FLEETLET_RETURN_IF_ERROR(insert.bind(12, nullptr));
        FLEETLET_RETURN_IF_ERROR(insert.bind(13, nullptr));
        FLEETLET_RETURN_IF_ERROR(insert.bind(14, nullptr));
      }
      FLEETLET_RETURN_IF_ERROR(insert.run());
      if (announce) {
        FLEETLET_RETURN_IF_ERROR(
            blobevents::enqueueEvent(db_, blobevents::metadataEvent(toJson(meta))));
      }
      return tx.commit();
    }();
    if (!indexed) {
      if (!already_stored) ::unlink(final_path.c_str());
      reserved_ -= std::min(reserved_, upload.reserved_);
      upload.reserved_ = 0;
      return std::unexpected(indexed.error().wrap("index blob {}", meta.handle));
    }
    if (!already_stored) used_ += meta.bytes;
    reserved_ -= std::min(reserved_, upload.reserved_);
    upload.reserved_ = 0;
    unlinkContents(freed);
  }
  if (!freed.empty()) {
    spdlog::info("blob store: {} superseded content file(s) deleted", freed.size());
  }
  if (announce && options_.on_event) options_.on_event();
  return meta;
}

Result<BlobMetadata> BlobStore::find(std::string_view handle) {
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto select,
      db_.prepare(fmt::format("SELECT {} FROM blobs WHERE handle = ? AND (expires_at IS NULL OR "
                              "expires_at > ?)",
                              kColumns)));
  FLEETLET_RETURN_IF_ERROR(select.bindAll(handle, clock_.nowMicros()));
  FLEETLET_ASSIGN_OR_RETURN(bool row, select.step());
  if (!row) return fail(ErrorCode::kNotFound, "no blob with handle \"{}\"", handle);
  return readRow(select);
}

Result<BlobPage> BlobStore::list(std::string_view semantics, int64_t limit,
                                 std::optional<int64_t> after) {
  std::lock_guard lock(mutex_);
  // One row more than asked tells whether another page follows.
  FLEETLET_ASSIGN_OR_RETURN(
      auto select,
      db_.prepare(fmt::format("SELECT {}, seq FROM blobs WHERE (?1 = '' OR semantics = ?1) AND "
                              "(expires_at IS NULL OR expires_at > ?2) AND seq < ?4 "
                              "ORDER BY seq DESC LIMIT ?3",
                              kColumns)));
  FLEETLET_RETURN_IF_ERROR(select.bindAll(semantics, clock_.nowMicros(), limit + 1,
                                          after.value_or(std::numeric_limits<int64_t>::max())));
  BlobPage page;
  int64_t last_seq = 0;
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, select.step());
    if (!row) break;
    if (std::cmp_equal(page.blobs.size(), limit)) {
      if (limit > 0) page.next = last_seq;
      break;
    }
    FLEETLET_ASSIGN_OR_RETURN(auto meta, readRow(select));
    last_seq = select.columnInt64(10);
    page.blobs.push_back(std::move(meta));
  }
  return page;
}

Result<int64_t> BlobStore::collectExpired() {
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(
      auto select,
      db_.prepare("SELECT handle FROM blobs WHERE expires_at IS NOT NULL AND expires_at <= ?"));
  FLEETLET_RETURN_IF_ERROR(select.bind(1, clock_.nowMicros()));
  std::vector<std::string> handles;
  while (true) {
    FLEETLET_ASSIGN_OR_RETURN(bool row, select.step());
    if (!row) break;
    handles.push_back(select.columnText(0));
  }
  if (handles.empty()) return 0;
  FLEETLET_ASSIGN_OR_RETURN(auto tx, db_.begin());
  FLEETLET_ASSIGN_OR_RETURN(auto freed, deleteBlobsLocked(handles));
  FLEETLET_RETURN_IF_ERROR(tx.commit());
  unlinkContents(freed);
  return static_cast<int64_t>(handles.size());
}

}  // namespace fleetlet::store
