#include "logs/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "logs/rotating_writer.h"

namespace fleetlet::logs {
namespace {

constexpr size_t kReadChunk = size_t{64} * 1024;

Result<std::string> readWhole(int fd) {
  std::string out;
  std::string buf(kReadChunk, '\0');
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "read log file");
    }
    if (n == 0) return out;
    out.append(buf.data(), size_t(n));
  }
}

// Complete entries (F records) in `content`.
size_t countFull(std::string_view content) {
  size_t count = 0;
  while (!content.empty()) {
    size_t nl = content.find('\n');
    if (nl == std::string_view::npos) break;
    if (auto record = parseCriLine(content.substr(0, nl)); record && !record->partial) ++count;
    content.remove_prefix(nl + 1);
  }
  return count;
}

}  // namespace

std::optional<LogEntry> EntryAssembler::add(std::string_view line) {
  auto record = parseCriLine(line);
  if (!record) {
    ++malformed_;
    return std::nullopt;
  }
  Pending& pending = pending_[record->stream == Stream::kStdout ? 0 : 1];
  std::optional<LogEntry> head;
  // A partial record that would make the entry overlong ends it early: the entry so far
  // comes out, and this record starts the next one.
  if (pending.active && record->partial &&
      pending.text.size() + record->text.size() > kMaxEntryBytes) {
    head = LogEntry{pending.time, record->stream, std::move(pending.text)};
    pending.active = false;
  }
  if (!pending.active) {
    pending.active = true;
    pending.time = record->time;
    pending.text.clear();
  }
  pending.text.append(record->text);
  if (record->partial) return head;
  pending.active = false;
  return LogEntry{pending.time, record->stream, std::move(pending.text)};
}

Result<std::vector<OpenLog>> openLogChain(const std::filesystem::path& dir) {
  // A missing file comes back without an fd.
  auto openLog = [](const std::filesystem::path& path) -> Result<OpenLog> {
    OpenLog log;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) return log;
      return failErrno(err, "open {}", path.string());
    }
    log.fd.reset(fd);
    struct stat st {};
    if (::fstat(log.fd.get(), &st) != 0) return failErrno(errno, "stat {}", path.string());
    log.dev = st.st_dev;
    log.ino = st.st_ino;
    return log;
  };
  // current.log first, then the rotated files newest first: a rotation in the middle then
  // shows a file twice (dropped below) rather than hiding one.
  FLEETLET_ASSIGN_OR_RETURN(auto current, openLog(logFilePath(dir, 0)));
  FLEETLET_ASSIGN_OR_RETURN(auto indexes, rotatedLogIndexes(dir));
  std::vector<OpenLog> rotated;
  for (int k : indexes) {
    FLEETLET_ASSIGN_OR_RETURN(auto log, openLog(logFilePath(dir, k)));
    if (log.fd) rotated.push_back(std::move(log));
  }
  std::vector<OpenLog> chain;  // oldest first
  auto push = [&](OpenLog log) {
    for (const auto& have : chain) {
      if (have.same(log)) return;
    }
    chain.push_back(std::move(log));
  };
  for (auto it = rotated.rbegin(); it != rotated.rend(); ++it) push(std::move(*it));
  if (current.fd) push(std::move(current));
  return chain;
}

void LogFollower::addLines(std::string& partial, std::vector<LogEntry>& out) {
  size_t start = 0;
  for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (auto entry = assembler_.add(std::string_view(partial).substr(start, nl - start))) {
      out.push_back(std::move(*entry));
    }
  }
  partial.erase(0, start);
}

void LogFollower::endOfFile(std::string& partial, std::vector<LogEntry>& out) {
  // A file that will not grow again ends with a record cut short (the logger died mid-write):
  // what parses of it still counts.
  if (partial.empty()) return;
  if (auto entry = assembler_.add(partial)) out.push_back(std::move(*entry));
  partial.clear();
}

Status LogFollower::readFrom(const OpenLog& file, off_t& offset, std::string& partial,
                             std::vector<LogEntry>& out) {
  std::string buf(kReadChunk, '\0');
  while (true) {
    ssize_t n = ::pread(file.fd.get(), buf.data(), buf.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "read {}", dir_.string());
    }
    if (n == 0) return {};
    offset += n;
    partial.append(buf.data(), size_t(n));
    addLines(partial, out);
  }
}

Result<LogFollower> LogFollower::open(const std::filesystem::path& dir, size_t tail) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return fail(ErrorCode::kNotFound, "log directory {} does not exist", dir.string());
  }
  LogFollower follower(dir);
  FLEETLET_ASSIGN_OR_RETURN(auto chain, openLogChain(dir));
  if (chain.empty()) return follower;

  // Newest first until `tail` entries are complete, then one older file for a line that
  // started there.
  std::vector<std::string> contents(chain.size());
  size_t first = chain.size();
  size_t complete = 0;
  bool enough = false;
  for (size_t i = chain.size(); i-- > 0;) {
    FLEETLET_ASSIGN_OR_RETURN(contents[i], readWhole(chain[i].fd.get()));
    first = i;
    if (enough) break;
    complete += countFull(contents[i]);
    enough = complete >= tail;
  }
  std::vector<LogEntry> entries;
  for (size_t i = first; i + 1 < chain.size(); ++i) {
    follower.addLines(contents[i], entries);
    follower.endOfFile(contents[i], entries);
  }
  follower.offset_ = off_t(contents.back().size());
  follower.partial_ = std::move(contents.back());
  follower.addLines(follower.partial_, entries);
  follower.current_ = std::move(chain.back());
  if (entries.size() > tail) entries.erase(entries.begin(), entries.end() - ptrdiff_t(tail));
  follower.queued_ = std::move(entries);
  return follower;
}

Result<std::vector<LogEntry>> LogFollower::poll() {
  std::vector<LogEntry> out = std::move(queued_);
  queued_.clear();
  // Each round reads the followed file to its end, then moves on if it was rotated away. A
  // few rounds cover rotations that happen while this runs; the rest waits for the next poll.
  for (int round = 0; round < 4; ++round) {
    if (current_.fd) {
      struct stat st {};
      if (::fstat(current_.fd.get(), &st) != 0) return failErrno(errno, "stat {}", dir_.string());
      if (st.st_size < offset_) {
        offset_ = 0;
        partial_.clear();
        ++truncations_;
      }
      FLEETLET_RETURN_IF_ERROR(readFrom(current_, offset_, partial_, out));
    }
    auto path = logFilePath(dir_, 0);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) break;  // mid-rotation, or no log yet
      return failErrno(errno, "stat {}", path.string());
    }
    if (current_.fd && st.st_dev == current_.dev && st.st_ino == current_.ino) break;

    FLEETLET_ASSIGN_OR_RETURN(auto chain, openLogChain(dir_));
    size_t start = 0;  // without a followed file, or when it was dropped, all are newer
    if (current_.fd) {
      for (size_t i = 0; i < chain.size(); ++i) {
        if (chain[i].same(current_)) start = i + 1;
      }
    }
    if (start >= chain.size()) break;
    endOfFile(partial_, out);
    for (size_t i = start; i + 1 < chain.size(); ++i) {
      off_t offset = 0;
      std::string partial;
      FLEETLET_RETURN_IF_ERROR(readFrom(chain[i], offset, partial, out));
      endOfFile(partial, out);
    }
    current_ = std::move(chain.back());
    offset_ = 0;
    partial_.clear();
  }
  return out;
}

Result<std::vector<LogEntry>> LogFollower::wait(Sleeper& sleeper,
                                                std::chrono::milliseconds interval,
                                                std::chrono::milliseconds max_wait) {
  std::chrono::milliseconds slept{0};
  while (true) {
    auto entries = poll();
    if (!entries || !entries->empty() || slept >= max_wait) return entries;
    sleeper.sleepFor(interval);
    slept += interval;
  }
}

Result<TailResult> readTail(const std::filesystem::path& dir, size_t n) {
  FLEETLET_ASSIGN_OR_RETURN(auto follower, LogFollower::open(dir, n));
  return TailResult{std::move(follower.queued_), follower.malformed()};
}

Result<TailResult> readRange(const std::filesystem::path& dir, const TimeRange& range) {
  FLEETLET_ASSIGN_OR_RETURN(auto follower, LogFollower::open(dir, SIZE_MAX));
  TailResult out{.entries = {}, .malformed = follower.malformed()};
  for (auto& e : follower.queued_) {
    if (range.contains(e.time)) out.entries.push_back(std::move(e));
  }
  return out;
}

void keepOnly(std::vector<LogEntry>& entries, std::string_view only, size_t count) {
  if (!only.empty()) {
    std::erase_if(entries,
                  [only](const LogEntry& e) { return e.text.find(only) == std::string::npos; });
  }
  if (entries.size() > count) {
    entries.erase(entries.begin(), entries.end() - static_cast<ptrdiff_t>(count));
  }
}

}  // namespace fleetlet::logs
