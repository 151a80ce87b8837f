#pragma once
// containerd's content store: blobs addressed by digest, written through resumable ingests.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "containerd/connection.h"
#include "containerd/types.h"

namespace fleetlet::containerd {

// An unfinished ingest: `offset` of `total` bytes written under `ref`.
struct IngestStatus {
  std::string ref;
  int64_t offset = 0;
  int64_t total = 0;
};

struct ContentInfo {
  std::string digest;
  int64_t size = 0;
  Labels labels;
};

// One ingest (Content.Write stream) for one ref. Bytes written but not committed stay in
// containerd's ingest when the writer is dropped, so a later writer for the same ref resumes
// at offset(). Not thread-safe; blocks on each call.
class ContentWriter {
 public:
  virtual ~ContentWriter() = default;
  // Bytes already in the ingest when the writer was opened, plus what write() added.
  virtual int64_t offset() const = 0;
  // True when the blob was already committed; write() and commit() then do nothing.
  virtual bool alreadyExists() const = 0;
  // Appends data at offset(). Fails with kUnavailable when the stream broke.
  virtual Status write(std::string_view data) = 0;
  // Commits the ingest; containerd verifies size and digest. kInvalidArgument/kFailedPrecondition
  // when they do not match (the ingest is then discarded by containerd).
  virtual Status commit(const Labels& labels) = 0;
};

class ContentService : public ServiceBase {
 public:
  using ServiceBase::ServiceBase;
  ContentService withLease(std::string lease) const {
    return ContentService(connection_, Scope{scope_.ns, std::move(lease)});
  }

  // Info of a committed blob, or nullopt when containerd does not have it.
  Result<std::optional<ContentInfo>> info(const std::string& digest) const;
  // Opens (or resumes) the ingest `ref` for a blob of `total` bytes with digest `expected`.
  Result<std::unique_ptr<ContentWriter>> openWriter(const std::string& ref, int64_t total,
                                                    const std::string& expected) const;
  // Reads a whole blob; fails with kResourceExhausted when it is larger than `max_size`.
  Result<std::string> readAll(const std::string& digest, int64_t max_size) const;
  // Streams a blob to `sink` chunk by chunk.
  Status read(const std::string& digest, const std::function<Status(std::string_view)>& sink) const;
  // Sets (merges) labels on a blob; other labels stay.
  Status setLabels(const std::string& digest, const Labels& labels) const;
  Result<std::vector<ContentInfo>> list(const std::vector<std::string>& filters = {}) const;
  // Deletes a blob; kNotFound when absent.
  Status remove(const std::string& digest) const;
  // Drops an unfinished ingest; succeeds when there is none.
  Status abortIngest(const std::string& ref) const;
  // Unfinished ingests.
  Result<std::vector<IngestStatus>> listIngests() const;
};

}  // namespace fleetlet::containerd
