#include "store/blob_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "crypto/sha256.h"
#include "os/unique_fd.h"
#include "support/temp_dir.h"

namespace fleetlet::store {
namespace {

namespace fs = std::filesystem;
using retention::PolicyKind;
using retention::RetentionPolicy;

class FakeClock : public Clock {
 public:
  int64_t nowMicros() const override { return now.load(); }
  std::atomic<int64_t> now{1'700'000'000'000'000};
};

std::size_t countFiles(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-blobstore");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    open();
  }
  void open(uint64_t quota = 0) {
    store_.reset();
    StoreOptions options;
    options.data_dir = dir_->path();
    options.quota = quota;
    options.source = "node-1";
    options.on_event = [this] { ++events_; };
    auto store = BlobStore::open(options, clock_);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  Result<BlobMetadata> put(std::string_view bytes, std::string semantics, RetentionPolicy policy,
                           std::string app = "camera") {
    FLEETLET_ASSIGN_OR_RETURN(auto upload, store_->beginUpload(bytes.size()));
    // Written in pieces, as uploads arrive.
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
      FLEETLET_RETURN_IF_ERROR(upload->write(bytes.substr(i, 3)));
    }
    return store_->commit(*upload, {.semantics = std::move(semantics),
                                    .content_type = "text/plain",
                                    .filename = std::nullopt,
                                    .source_app = std::move(app),
                                    .retention = policy});
  }
  std::optional<testing::TempDir> dir_;
  FakeClock clock_;
  std::atomic<int> events_{0};
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, CommitMakesTheBlobVisibleWithItsMetadata) {
  auto meta = put("hello blob", "s", {});
  ASSERT_TRUE(meta) << meta.error().message();
  EXPECT_EQ(meta->sha256, sha256Hex("hello blob"));
  EXPECT_EQ(meta->bytes, 10u);
  EXPECT_EQ(meta->source, "node-1");
  EXPECT_EQ(meta->source_app, "camera");
  auto found = store_->find(meta->handle);
  ASSERT_TRUE(found);
  EXPECT_EQ(toJson(*found), toJson(*meta));
  std::ifstream content(store_->contentPath(meta->sha256));
  std::string text((std::istreambuf_iterator<char>(content)), {});
  EXPECT_EQ(text, "hello blob");
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_EQ(events_.load(), 1);
  EXPECT_EQ(store_->usedBytes(), 10u);
}

TEST_F(BlobStoreTest, AbandonedUploadLeavesNothing) {
  {
    auto upload = store_->beginUpload(std::nullopt);
    ASSERT_TRUE(upload);
    ASSERT_TRUE((*upload)->write("partial"));
    EXPECT_EQ(countFiles(dir_->path() / "tmp"), 1u);
  }
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 0u);
  EXPECT_EQ(events_.load(), 0);
}

TEST_F(BlobStoreTest, ReopenRemovesTemporaryAndUnreferencedFiles) {
  auto kept = put("kept", "s", {});
  ASSERT_TRUE(kept);
  std::ofstream(dir_->path() / "tmp" / "upload-crashed") << "half";
  std::ofstream(dir_->path() / "blobs" / std::string(64, 'a')) << "renamed, never indexed";
  open();
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 1u);
  EXPECT_TRUE(store_->find(kept->handle));
  EXPECT_EQ(store_->usedBytes(), 4u);
}

TEST_F(BlobStoreTest, IdenticalContentIsStoredOnceAndDeletedWithItsLastBlob) {
  RetentionPolicy soon{.kind = PolicyKind::kKeepUntilTime, .until_micros = clock_.now + 1000};
  RetentionPolicy later{.kind = PolicyKind::kKeepUntilTime, .until_micros = clock_.now + 2000};
  auto a = put("same bytes", "s", soon);
  auto b = put("same bytes", "s", later);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->handle, b->handle);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 1u);
  EXPECT_EQ(store_->usedBytes(), 10u);

  clock_.now += 1500;
  EXPECT_FALSE(store_->find(a->handle));  // expired: invisible before the collector runs
  EXPECT_EQ(store_->collectExpired().value(), 1);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 1u);
  EXPECT_TRUE(store_->find(b->handle));

  clock_.now += 1000;
  EXPECT_EQ(store_->find(b->handle).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->collectExpired().value(), 1);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 0u);
  EXPECT_EQ(store_->usedBytes(), 0u);
}

TEST_F(BlobStoreTest, KeepUntilNextIsReplacedByTheNextMatchingBlob) {
  RetentionPolicy next{.kind = PolicyKind::kKeepUntilNext};
  auto first = put("one", "latest", next, "camera");
  auto other_app = put("two", "latest", next, "scanner");
  auto other_semantics = put("three", "other", next, "camera");
  ASSERT_TRUE(first && other_app && other_semantics);
  auto second = put("four", "latest", {}, "camera");
  ASSERT_TRUE(second);
  EXPECT_FALSE(store_->find(first->handle));
  EXPECT_TRUE(store_->find(other_app->handle));
  EXPECT_TRUE(store_->find(other_semantics->handle));
  EXPECT_FALSE(fs::exists(store_->contentPath(first->sha256)));

  RetentionPolicy by_semantics{.kind = PolicyKind::kKeepUntilNext, .semantics = "trigger"};
  auto watched = put("five", "watched", by_semantics, "camera");
  ASSERT_TRUE(watched);
  ASSERT_TRUE(put("six", "trigger", {}, "camera"));
  EXPECT_FALSE(store_->find(watched->handle));
}

TEST_F(BlobStoreTest, QuotaRefusesBeforeAndDuringUploads) {
  open(100);
  auto declared = store_->beginUpload(101);
  ASSERT_FALSE(declared);
  EXPECT_EQ(declared.error().code(), ErrorCode::kResourceExhausted);

  ASSERT_TRUE(put(std::string(60, 'a'), "s", {}));
  auto upload = store_->beginUpload(std::nullopt);
  ASSERT_TRUE(upload);
  ASSERT_TRUE((*upload)->write(std::string(30, 'b')));
  auto over = (*upload)->write(std::string(20, 'b'));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
  upload->reset();
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_TRUE(put(std::string(40, 'c'), "s", {})) << "reservations were released";
}

TEST_F(BlobStoreTest, ListsNewestFirstBySemantics) {
  auto a = put("a", "x", {});
  auto b = put("b", "y", {});
  auto c = put("c", "x", {});
  ASSERT_TRUE(a && b && c);
  auto list = store_->list("x", 10);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->blobs.size(), 2u);
  EXPECT_EQ(list->blobs[0].handle, c->handle);
  EXPECT_EQ(list->blobs[1].handle, a->handle);
  EXPECT_FALSE(list->next);
  EXPECT_EQ(store_->list("", 2)->blobs.size(), 2u);
}

TEST_F(BlobStoreTest, ListPagesWithACursorThatBlobsStoredMeanwhileDoNotShift) {
  std::vector<std::string> handles;  // newest first
  for (int i = 0; i < 5; ++i) {
    auto meta = put("page " + std::to_string(i), "paged", {});
    ASSERT_TRUE(meta);
    handles.insert(handles.begin(), meta->handle);
  }
  ASSERT_TRUE(put("elsewhere", "other", {}));
  auto first = store_->list("paged", 2);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->blobs.size(), 2u);
  ASSERT_TRUE(first->next);
  ASSERT_TRUE(put("newer", "paged", {}));  // stored while the client pages
  auto second = store_->list("paged", 2, first->next);
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->next);
  auto third = store_->list("paged", 2, second->next);
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->next) << "the last page has no next";
  std::vector<std::string> seen;
  for (const auto* page : {&*first, &*second, &*third}) {
    for (const BlobMetadata& meta : page->blobs) seen.push_back(meta.handle);
  }
  EXPECT_EQ(seen, handles);
  // A page that ends exactly at the last blob says so.
  auto exact = store_->list("paged", 5, std::nullopt);
  ASSERT_TRUE(exact);
  EXPECT_TRUE(exact->next) << "six blobs of \"paged\" now";
  auto all = store_->list("paged", 6, std::nullopt);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->blobs.size(), 6u);
  EXPECT_FALSE(all->next);
}

TEST_F(BlobStoreTest, KeepUntilTimeNotInTheFutureStoresAndAnnouncesNothing) {
  for (int64_t until : {clock_.now - 60'000'000, clock_.now.load()}) {
    RetentionPolicy past{.kind = PolicyKind::kKeepUntilTime, .until_micros = until};
    auto meta = put("too late", "s", past);
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(meta.error().message().find("metadata.retentionPolicy.until"), std::string::npos)
        << meta.error().message();
  }
  EXPECT_EQ(events_.load(), 0);
  EXPECT_TRUE(store_->list("", 10)->blobs.empty());
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 0u);
  EXPECT_EQ(store_->usedBytes(), 0u);
  auto db = store_->openConnection();
  ASSERT_TRUE(db);
  auto outbox = db->prepare("SELECT COUNT(*) FROM event_outbox");
  ASSERT_TRUE(outbox);
  ASSERT_TRUE(outbox->step().value_or(false));
  EXPECT_EQ(outbox->columnInt64(0), 0);
  RetentionPolicy future{.kind = PolicyKind::kKeepUntilTime, .until_micros = clock_.now + 1};
  EXPECT_TRUE(put("just in time", "s", future)) << "the quota reservation was released";
}

// Blobs fetched from other nodes (remote/fetcher.h): stored under their own metadata.
BlobMetadata remoteMetadata(std::string_view bytes, RetentionPolicy policy = {}) {
  BlobMetadata meta;
  meta.handle = "0123456789abcdef0123456789abcdef";
  meta.semantics = "photos";
  meta.bytes = bytes.size();
  meta.content_type = "image/jpeg";
  meta.filename = "p.jpg";
  meta.sha256 = sha256Hex(bytes);
  meta.created_on_micros = 1'600'000'000'000'000;
  meta.source = "node-a";
  meta.source_app = "camera";
  meta.retention = policy;
  return meta;
}

TEST_F(BlobStoreTest, ReplicaKeepsItsHandleSourceAndRetentionAndAnnouncesNothing) {
  RetentionPolicy until{.kind = PolicyKind::kKeepUntilTime, .until_micros = clock_.now + 10};
  BlobMetadata meta = remoteMetadata("remote bytes", until);
  auto upload = store_->beginUpload(meta.bytes);
  ASSERT_TRUE(upload);
  ASSERT_TRUE((*upload)->write("remote bytes"));
  auto stored = store_->commitReplica(**upload, meta);
  ASSERT_TRUE(stored) << stored.error().message();
  auto found = store_->find(meta.handle);
  ASSERT_TRUE(found);
  EXPECT_EQ(toJson(*found), toJson(meta));
  EXPECT_EQ(events_.load(), 0) << "the uploader's node announced it";
  auto db = store_->openConnection();
  ASSERT_TRUE(db);
  auto outbox = db->prepare("SELECT COUNT(*) FROM event_outbox");
  ASSERT_TRUE(outbox);
  ASSERT_TRUE(outbox->step().value_or(false));
  EXPECT_EQ(outbox->columnInt64(0), 0);
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  // Its retention applies here too.
  clock_.now += 10;
  EXPECT_EQ(store_->collectExpired().value_or(-1), 1);
  EXPECT_FALSE(store_->find(meta.handle));
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 0u);
}

TEST_F(BlobStoreTest, ReplicaThatDoesNotMatchItsMetadataStoresNothing) {
  BlobMetadata meta = remoteMetadata("the right bytes");
  for (std::string_view wrong : {"the wrong bytes", "the right byte", "the right bytes!"}) {
    auto upload = store_->beginUpload(std::nullopt);
    ASSERT_TRUE(upload);
    ASSERT_TRUE((*upload)->write(wrong));
    auto stored = store_->commitReplica(**upload, meta);
    ASSERT_FALSE(stored) << wrong;
    EXPECT_EQ(stored.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(stored.error().message().find("does not match its metadata"), std::string::npos)
        << stored.error().message();
    EXPECT_NE(stored.error().message().find(meta.sha256), std::string::npos);
  }
  EXPECT_FALSE(store_->find(meta.handle));
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_EQ(countFiles(dir_->path() / "blobs"), 0u);
  EXPECT_EQ(store_->usedBytes(), 0u);
}

TEST_F(BlobStoreTest, ReplicaOfAStoredHandleKeepsTheStoredBlob) {
  BlobMetadata meta = remoteMetadata("same");
  for (int i = 0; i < 2; ++i) {
    auto upload = store_->beginUpload(meta.bytes);
    ASSERT_TRUE(upload);
    ASSERT_TRUE((*upload)->write("same"));
    auto stored = store_->commitReplica(**upload, meta);
    ASSERT_TRUE(stored) << stored.error().message();
    EXPECT_EQ(stored->handle, meta.handle);
  }
  EXPECT_EQ(store_->list("", 10)->blobs.size(), 1u);
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_EQ(store_->usedBytes(), 4u);
}

TEST_F(BlobStoreTest, ExpiredReplicaIsNotStored) {
  RetentionPolicy past{.kind = PolicyKind::kKeepUntilTime, .until_micros = clock_.now.load()};
  BlobMetadata meta = remoteMetadata("late", past);
  auto upload = store_->beginUpload(meta.bytes);
  ASSERT_TRUE(upload);
  ASSERT_TRUE((*upload)->write("late"));
  auto stored = store_->commitReplica(**upload, meta);
  ASSERT_FALSE(stored);
  EXPECT_EQ(stored.error().code(), ErrorCode::kNotFound) << stored.error().message();
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
  EXPECT_FALSE(store_->find(meta.handle));
}

// Uploads are written with O_DIRECT (staged in aligned chunks, the tail padded and truncated)
// or through the page cache (writeback paced, pages dropped): both store exactly the bytes.
class BlobStoreWriteTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::create("fleetlet-blobstore-io");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    StoreOptions options;
    options.data_dir = dir_->path();
    options.direct_io = GetParam();
    auto store = BlobStore::open(options, clock_);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }

  // Whether the filesystem of the data dir takes O_DIRECT.
  bool directSupported() const {
    fs::path probe = dir_->path() / "probe";
    UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    int flags = fd ? ::fcntl(fd.get(), F_GETFL) : -1;
    bool ok = flags >= 0 && ::fcntl(fd.get(), F_SETFL, flags | O_DIRECT) == 0;
    fs::remove(probe);
    return ok;
  }

  // Pages of `path`'s first `bytes` that are in the page cache.
  static std::size_t residentPages(const fs::path& path, std::size_t bytes) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return SIZE_MAX;
    void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (map == MAP_FAILED) return SIZE_MAX;
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> in_core((bytes + page - 1) / page);
    std::size_t resident = SIZE_MAX;
    if (::mincore(map, bytes, in_core.data()) == 0) {
      resident = 0;
      for (unsigned char c : in_core) resident += c & 1;
    }
    ::munmap(map, bytes);
    return resident;
  }

  static std::string content(std::size_t bytes, char seed) {
    std::string out(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i) out[i] = static_cast<char>(seed + i * 131 + i / 7919);
    return out;
  }

  std::optional<testing::TempDir> dir_;
  FakeClock clock_;
  std::unique_ptr<BlobStore> store_;
};

TEST_P(BlobStoreWriteTest, StoresExactlyTheBytesWhateverTheirAlignment) {
  const std::size_t chunk = BlobUpload::kDirectChunk;
  const std::size_t sizes[] = {
      0, 1, 4095, 4096, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 12345};
  char seed = 'a';
  for (std::size_t size : sizes) {
    SCOPED_TRACE(size);
    std::string bytes = content(size, seed++);
    auto upload = store_->beginUpload(size);
    ASSERT_TRUE(upload) << upload.error().message();
    EXPECT_EQ((*upload)->direct(), GetParam() && directSupported());
    // Pieces of an odd size, as a multipart body hands them over.
    for (std::size_t i = 0; i < bytes.size(); i += 65537) {
      ASSERT_TRUE((*upload)->write(std::string_view(bytes).substr(i, 65537)));
    }
    auto meta = store_->commit(**upload, {.semantics = "s", .content_type = "x/y"});
    ASSERT_TRUE(meta) << meta.error().message();
    EXPECT_EQ(meta->bytes, size);
    EXPECT_EQ(meta->sha256, sha256Hex(bytes));
    fs::path stored = store_->contentPath(meta->sha256);
    EXPECT_EQ(fs::file_size(stored), size);
    std::ifstream in(stored, std::ios::binary);
    std::string back((std::istreambuf_iterator<char>(in)), {});
    EXPECT_TRUE(back == bytes) << "stored content differs";
  }
  EXPECT_EQ(countFiles(dir_->path() / "tmp"), 0u);
}

TEST_P(BlobStoreWriteTest, AStreamingUploadLeavesNoPageCacheBehindIt) {
  // Three writeback steps: the first is written back and dropped by the time the third is
  // written (direct I/O never enters the page cache at all).
  const std::size_t step = BlobUpload::kWritebackChunk;
  auto upload = store_->beginUpload(std::nullopt);
  ASSERT_TRUE(upload);
  std::string piece = content(1024 * 1024, 'p');
  for (std::size_t written = 0; written < 3 * step; written += piece.size()) {
    ASSERT_TRUE((*upload)->write(piece));
  }
  fs::path tmp = fs::directory_iterator(dir_->path() / "tmp")->path();
  EXPECT_EQ(residentPages(tmp, step), 0u);
  auto meta = store_->commit(**upload, {.semantics = "s", .content_type = "x/y"});
  ASSERT_TRUE(meta) << meta.error().message();
  EXPECT_EQ(meta->bytes, 3 * step);
}

INSTANTIATE_TEST_SUITE_P(Io, BlobStoreWriteTest, ::testing::Values(true, false),
                         [](const auto& param_info) {
                           return param_info.param ? "Direct" : "PageCache";
                         });

}  // namespace
}  // namespace fleetlet::store
