#include "logship/tailer.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "crypto/sha256.h"
#include "logs/reader.h"
#include "logs/rotating_writer.h"

namespace fleetlet::logship {
namespace {

constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
constexpr std::size_t kIdPrefix = 256;

Result<std::size_t> preadAll(int fd, char* buf, std::size_t size, std::uint64_t offset) {
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, buf + got, size - got, off_t(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "read log file");
    }
    if (n == 0) break;
    got += std::size_t(n);
  }
  return got;
}

// How many of the first `take` bytes of `text` to keep so that the cut is not inside a UTF-8
// character: back over at most 3 continuation bytes; text that is not UTF-8 is cut anywhere.
std::size_t utf8Cut(std::string_view text, std::size_t take) {
  if (take >= text.size()) return text.size();
  for (std::size_t back = 0; back < 4 && back < take; ++back) {
    if ((static_cast<unsigned char>(text[take - back]) & 0xC0) != 0x80) return take - back;
  }
  return take;
}

bool before(const Position& a, std::uint64_t a_seq, const Position& b, std::uint64_t b_seq) {
  return a_seq != b_seq ? a_seq < b_seq : a.offset < b.offset;
}

}  // namespace

Result<std::string> LogTailer::fileId(File& file) {
  if (!file.id.empty()) return file.id;
  std::string head(kIdPrefix, '\0');
  FLEETLET_ASSIGN_OR_RETURN(std::size_t n, preadAll(file.fd.get(), head.data(), head.size(), 0));
  head.resize(n);
  std::size_t nl = head.find('\n');
  if (nl == std::string::npos && n < kIdPrefix) return std::string();  // no first line yet
  if (nl != std::string::npos) head.resize(nl + 1);
  file.id =
      fmt::format("{}-{}", static_cast<std::uint64_t>(file.ino), sha256Hex(head).substr(0, 16));
  return file.id;
}

Result<std::vector<LogTailer::File>> LogTailer::openChain(const std::filesystem::path& dir) {
  FLEETLET_ASSIGN_OR_RETURN(auto chain, logs::openLogChain(dir));
  std::vector<File> out;
  out.reserve(chain.size());
  for (auto& log : chain) {
    File f;
    static_cast<logs::OpenLog&>(f) = std::move(log);
    out.push_back(std::move(f));
  }
  return out;
}

Result<LogTailer> LogTailer::open(const std::filesystem::path& dir, const Position& from,
                                  TailerLimits limits) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return fail(ErrorCode::kNotFound, "log directory {} does not exist", dir.string());
  }
  limits.max_message = std::max<std::size_t>(limits.max_message, 16);
  limits.max_messages = std::max<std::size_t>(limits.max_messages, 1);
  LogTailer tailer(dir, limits);
  FLEETLET_ASSIGN_OR_RETURN(auto chain, openChain(dir));
  if (chain.empty()) return tailer;
  std::size_t start = 0;
  if (!from.file.empty()) {
    bool found = false;
    for (std::size_t i = 0; i < chain.size() && !found; ++i) {
      FLEETLET_ASSIGN_OR_RETURN(auto id, fileId(chain[i]));
      if (id == from.file) {
        start = i;
        found = true;
      }
    }
    tailer.lost_file_ = !found;
  }
  tailer.cur_ = std::move(chain[start]);
  if (!tailer.lost_file_ && !from.file.empty()) {
    struct stat st {};
    if (::fstat(tailer.cur_.fd.get(), &st) != 0) return failErrno(errno, "stat {}", dir.string());
    tailer.offset_ = from.offset <= std::uint64_t(st.st_size) ? from.offset : 0;
  }
  return tailer;
}

bool LogTailer::full(const std::vector<Message>& out) const {
  return out.size() >= limits_.max_messages || (!out.empty() && out_bytes_ >= limits_.max_bytes);
}

void LogTailer::emit(Pending& p, logs::Stream stream, bool last, std::vector<Message>& out) {
  Message m;
  // fmt rather than "+" + std::to_string(): GCC 12 at -O3 reports a false -Wrestrict inside
  // operator+(const char*, std::string&&).
  m.key = fmt::format("{}:{}", p.part.file, p.part.offset);
  if (p.part_skip > 0) m.key += fmt::format("+{}", p.part_skip);
  m.time = p.time;
  m.stream = stream;
  m.text = std::move(p.text);
  p.text.clear();
  ++p.part_number;
  m.part = (last && p.part_number == 1) ? 0 : p.part_number;
  m.last = last;
  out_bytes_ += m.text.size();
  out.push_back(std::move(m));
  if (last) p = Pending{};
}

void LogTailer::addLine(const Place& at, std::string_view line, std::vector<Message>& out) {
  auto record = logs::parseCriLine(line);
  if (!record) {
    ++malformed_;
    return;
  }
  const auto stream = record->stream;
  Pending& p = pending_[stream == logs::Stream::kStdout ? 0 : 1];
  if (!p.active) {
    p.active = true;
    p.line = at;
    p.part = at.position;
    p.part_skip = 0;
    p.time = record->time;
    p.part_number = 0;
  }
  std::string_view text = record->text;
  std::size_t used = 0;
  while (p.text.size() + (text.size() - used) > limits_.max_message) {
    std::size_t room = limits_.max_message - p.text.size();
    std::size_t take = utf8Cut(text.substr(used), room);
    if (take == 0 && !p.text.empty()) {
      // Not even one character fits: the part ends before this record.
      emit(p, stream, false, out);
      p.part = at.position;
      p.part_skip = used;
      continue;
    }
    if (take == 0) take = room;
    p.text.append(text.substr(used, take));
    used += take;
    emit(p, stream, false, out);
    p.part = at.position;
    p.part_skip = used;
  }
  p.text.append(text.substr(used));
  if (!record->partial) emit(p, stream, true, out);
}

void LogTailer::endStale(std::vector<Message>& out) {
  for (std::size_t s = 0; s < pending_.size(); ++s) {
    Pending& p = pending_[s];
    if (p.active && p.line.file_seq + 2 <= file_seq_) {
      emit(p, s == 0 ? logs::Stream::kStdout : logs::Stream::kStderr, true, out);
    }
  }
}

Result<bool> LogTailer::readCurrent(std::vector<Message>& out) {
  struct stat st {};
  if (::fstat(cur_.fd.get(), &st) != 0) return failErrno(errno, "stat {}", dir_.string());
  if (std::uint64_t(st.st_size) < offset_) {
    // Truncated: read again from the start, as a new file (its first line may differ).
    ++truncations_;
    offset_ = 0;
    skipping_ = false;
    cur_.id.clear();
    for (std::size_t s = 0; s < pending_.size(); ++s) {
      if (pending_[s].active) {
        emit(pending_[s], s == 0 ? logs::Stream::kStdout : logs::Stream::kStderr, true, out);
      }
    }
  }
  std::string buf;
  while (!full(out)) {
    // Read from the end of the last line: at least a chunk, more when a line is longer.
    std::size_t want = std::max(kReadChunk, buf.size() * 2);
    buf.resize(want);
    FLEETLET_ASSIGN_OR_RETURN(std::size_t n, preadAll(cur_.fd.get(), buf.data(), want, offset_));
    buf.resize(n);
    if (n == 0) return true;
    std::size_t start = 0;
    bool any = false;
    for (std::size_t nl; !full(out) && (nl = buf.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      any = true;
      if (skipping_) {
        skipping_ = false;  // the end of an overlong line
        continue;
      }
      FLEETLET_ASSIGN_OR_RETURN(auto id, fileId(cur_));
      Place at{.position = {.file = id, .offset = offset_ + start}, .file_seq = file_seq_};
      addLine(at, std::string_view(buf).substr(start, nl - start), out);
    }
    offset_ += start;
    if (full(out)) return false;
    if (any) {
      buf.clear();
      continue;
    }
    // No complete line in what is there.
    if (n < want) return true;  // the rest of a line still being written
    if (buf.size() >= kMaxLineBytes) {
      if (!skipping_) ++malformed_;
      skipping_ = true;
      offset_ += n;
      buf.clear();
    }
  }
  return false;
}

Result<std::vector<Message>> LogTailer::poll() {
  std::vector<Message> out;
  out_bytes_ = 0;
  // Each round reads the file to its end, then moves on when it was rotated away. A few
  // rounds cover rotations that happen meanwhile; the rest waits for the next poll.
  for (int round = 0; round < 8 && !full(out); ++round) {
    if (!cur_.fd) {
      FLEETLET_ASSIGN_OR_RETURN(auto chain, openChain(dir_));
      if (chain.empty()) break;
      cur_ = std::move(chain.front());
      offset_ = 0;
    }
    FLEETLET_ASSIGN_OR_RETURN(bool at_end, readCurrent(out));
    if (!at_end) break;
    auto path = logs::logFilePath(dir_, 0);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) break;  // mid-rotation
      return failErrno(errno, "stat {}", path.string());
    }
    if (st.st_dev == cur_.dev && st.st_ino == cur_.ino) break;  // still the file written to
    FLEETLET_ASSIGN_OR_RETURN(auto chain, openChain(dir_));
    std::size_t next = 0;  // when cur_ was dropped already, every file is newer
    for (std::size_t i = 0; i < chain.size(); ++i) {
      if (chain[i].same(cur_)) next = i + 1;
    }
    if (next >= chain.size()) break;
    // cur_ was rotated away: it will not grow. A last line without '\n' was cut short (the
    // logger died mid-write); what parses of it counts.
    struct stat cst {};
    if (::fstat(cur_.fd.get(), &cst) != 0) return failErrno(errno, "stat {}", dir_.string());
    if (std::uint64_t(cst.st_size) > offset_ && !skipping_ &&
        std::uint64_t(cst.st_size) - offset_ < kMaxLineBytes) {
      std::string tail(std::size_t(std::uint64_t(cst.st_size) - offset_), '\0');
      FLEETLET_ASSIGN_OR_RETURN(std::size_t n,
                                preadAll(cur_.fd.get(), tail.data(), tail.size(), offset_));
      tail.resize(n);
      FLEETLET_ASSIGN_OR_RETURN(auto id, fileId(cur_));
      addLine({.position = {.file = id, .offset = offset_}, .file_seq = file_seq_}, tail, out);
      offset_ += n;
    }
    FLEETLET_ASSIGN_OR_RETURN(auto id, fileId(cur_));
    if (!id.empty()) previous_end_ = {.file = id, .offset = offset_};
    cur_ = std::move(chain[next]);
    offset_ = 0;
    skipping_ = false;
    ++file_seq_;
    endStale(out);
  }
  return out;
}

Position LogTailer::cursor() const {
  const Place* oldest = nullptr;
  for (const auto& p : pending_) {
    if (!p.active) continue;
    if (oldest == nullptr ||
        before(p.line.position, p.line.file_seq, oldest->position, oldest->file_seq)) {
      oldest = &p.line;
    }
  }
  if (oldest != nullptr) return oldest->position;
  if (!cur_.id.empty()) return {.file = cur_.id, .offset = offset_};
  return previous_end_;
}

}  // namespace fleetlet::logship
