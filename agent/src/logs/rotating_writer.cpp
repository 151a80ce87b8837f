#include "logs/rotating_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace fleetlet::logs {
namespace {

// Writes all of `data`; on failure `written` says how much went out.
Status writeAll(int fd, std::string_view data, uint64_t& written) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(errnoError(errno, "write"));
    }
    written += uint64_t(n);
    data.remove_prefix(size_t(n));
  }
  return {};
}

// Writes are flushed once this much is buffered, so memory stays bounded between flushes.
constexpr size_t kFlushThreshold = size_t{64} * 1024;

}  // namespace

std::filesystem::path logFilePath(const std::filesystem::path& dir, int k) {
  if (k == 0) return dir / kCurrentLogName;
  return dir / (std::string(kCurrentLogName) + "." + std::to_string(k));
}

Result<std::vector<int>> rotatedLogIndexes(const std::filesystem::path& dir) {
  // The rotation index k of "current.log.<k>", or 0 for any other name.
  auto index = [](std::string_view name) {
    const std::string prefix = std::string(kCurrentLogName) + ".";
    if (!name.starts_with(prefix) || name.size() == prefix.size() ||
        name.size() > prefix.size() + 6) {
      return 0;
    }
    int k = 0;
    for (char c : name.substr(prefix.size())) {
      if (c < '0' || c > '9') return 0;
      k = k * 10 + (c - '0');
    }
    return k;
  };
  std::vector<int> indexes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (int k = index(entry.path().filename().native()); k > 0) indexes.push_back(k);
  }
  if (ec) return failErrno(ec.value(), "list {}", dir.string());
  std::sort(indexes.begin(), indexes.end());
  return indexes;
}

Status makeLogDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failErrno(ec.value(), "create log directory {}", dir.string());
  if (::chmod(dir.c_str(), 0750) != 0)
    return failErrno(errno, "chmod log directory {}", dir.string());
  return {};
}

Result<RotatingWriter> RotatingWriter::open(const std::filesystem::path& dir,
                                            RotationPolicy policy) {
  if (policy.max_size == 0 || policy.max_files < 1) {
    return fail(ErrorCode::kInvalidArgument, "rotation needs max_size > 0 and max_files >= 1");
  }
  RotatingWriter writer(dir, policy, UniqueFd(), 0);
  FLEETLET_RETURN_IF_ERROR(writer.openCurrent());
  return writer;
}

RotatingWriter::~RotatingWriter() {
  if (fd_) (void)flush();
}

Status RotatingWriter::openCurrent() {
  auto path = logFilePath(dir_, 0);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return failErrno(errno, "open {}", path.string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failErrno(errno, "stat {}", path.string());
  fd_ = std::move(fd);
  size_ = uint64_t(st.st_size);
  return {};
}

Status RotatingWriter::append(std::string_view record) {
  if (record.size() > policy_.max_size) {
    ++dropped_;
    return fail(ErrorCode::kInvalidArgument, "a record of {} bytes exceeds the {}-byte file cap",
                record.size(), policy_.max_size);
  }
  if (currentSize() + record.size() > policy_.max_size) {
    Status st = flush();
    if (st && !fd_) st = openCurrent();
    if (st && size_ > 0) st = rotate();
    if (!st) {
      ++dropped_;
      return st;
    }
  }
  buffer_.append(record);
  ++buffered_records_;
  if (buffer_.size() >= kFlushThreshold) return flush();
  return {};
}

bool RotatingWriter::currentWasRemoved() const {
  struct stat st {};
  return fd_ && ::fstat(fd_.get(), &st) == 0 && st.st_nlink == 0;
}

Status RotatingWriter::flush() {
  if (buffer_.empty()) return {};
  if (currentWasRemoved()) {
    // current.log (or its whole directory: the node's data directory was removed) is gone:
    // what would be written to the open file could never be read. Made again, and the
    // directory with it (0750, as loggerIo makes it), instead.
    fd_.reset();
    cut_record_ = false;
    (void)makeLogDir(dir_);  // a failure shows as openCurrent()'s
    ++recreations_;
  }
  Status st = fd_ ? Status() : openCurrent();
  if (st && cut_record_) {
    // A failed write left a record without its '\n': end it so it does not swallow the next.
    uint64_t written = 0;
    st = writeAll(fd_.get(), "\n", written);
    size_ += written;
    if (st) cut_record_ = false;
  }
  uint64_t written = 0;
  if (st) {
    st = writeAll(fd_.get(), buffer_, written);
    size_ += written;
    if (!st && written > 0 && buffer_[written - 1] != '\n') cut_record_ = true;
  }
  if (!st) {
    auto whole = std::count(buffer_.begin(), buffer_.begin() + ptrdiff_t(written), '\n');
    dropped_ += buffered_records_ - uint64_t(whole);
  }
  buffer_.clear();
  buffered_records_ = 0;
  if (!st) return std::unexpected(st.error().wrap("write {}", logFilePath(dir_, 0).string()));
  return {};
}

Status RotatingWriter::rotate() {
  // Everything in current.log reaches the disk before it stops being the file written.
  if (fd_ && ::fsync(fd_.get()) != 0)
    return failErrno(errno, "fsync {}", logFilePath(dir_, 0).string());
  fd_.reset();
  for (int k = policy_.max_files - 1; k >= 0; --k) {
    auto from = logFilePath(dir_, k);
    auto to = logFilePath(dir_, k + 1);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      return failErrno(errno, "rotate {} to {}", from.string(), to.string());
    }
  }
  FLEETLET_RETURN_IF_ERROR(openCurrent());
  cut_record_ = false;
  UniqueFd dir_fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd || ::fsync(dir_fd.get()) != 0) return failErrno(errno, "fsync {}", dir_.string());
  ++rotations_;
  return {};
}

}  // namespace fleetlet::logs
