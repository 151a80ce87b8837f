#include "api/log_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "os/unique_fd.h"

namespace fleetlet::api {
namespace {

constexpr const char* kCurrent = "current.log";

// Splits "<time> <stream> <F|P> <text>"; false for a malformed line.
bool splitCri(std::string_view line, std::string_view& time, std::string_view& stream,
              bool& partial, std::string_view& text) {
  auto s1 = line.find(' ');
  if (s1 == std::string_view::npos) return false;
  auto s2 = line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos) return false;
  time = line.substr(0, s1);
  stream = line.substr(s1 + 1, s2 - s1 - 1);
  auto rest = line.substr(s2 + 1);
  if (rest.empty() || (rest[0] != 'F' && rest[0] != 'P')) return false;
  partial = rest[0] == 'P';
  text = rest.size() > 1 && rest[1] == ' ' ? rest.substr(2) : std::string_view();
  return true;
}

}  // namespace

Json toJson(const LogLine& line) {
  return {{"time", line.time}, {"stream", line.stream}, {"log", line.text}};
}

Result<LogLine> logLineFromJson(const Json& j, std::string_view path) {
  LogLine l;
  FLEETLET_ASSIGN_OR_RETURN(l.time, requireString(j, "time", path));
  FLEETLET_ASSIGN_OR_RETURN(l.stream, requireString(j, "stream", path));
  FLEETLET_ASSIGN_OR_RETURN(l.text, requireString(j, "log", path));
  return l;
}

void LogReader::parse(std::string_view data, std::vector<LogLine>& out) {
  unterminated_.append(data);
  size_t start = 0;
  for (size_t nl; (nl = unterminated_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(unterminated_.data() + start, nl - start);
    std::string_view time, stream, text;
    bool partial = false;
    if (!splitCri(line, time, stream, partial, text)) continue;
    std::string& pending = stream == "stderr" ? pending_stderr_ : pending_stdout_;
    pending.append(text);
    if (partial) continue;
    out.push_back({std::string(time), std::string(stream), std::move(pending)});
    pending.clear();
  }
  unterminated_.erase(0, start);
}

Result<std::string> LogReader::readFrom(const std::filesystem::path& file, std::uint64_t offset,
                                        Position* end) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      if (end) *end = {};
      return std::string();
    }
    return failErrno(errno, "open {}", file.string());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failErrno(errno, "stat {}", file.string());
  std::string data;
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > offset) {
    data.resize(size - offset);
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n =
          ::pread(fd.get(), data.data() + got, data.size() - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return failErrno(errno, "read {}", file.string());
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    data.resize(got);
  }
  if (end) *end = {static_cast<std::uint64_t>(st.st_ino), offset + data.size()};
  return data;
}

Result<std::vector<LogLine>> LogReader::readTail(std::optional<std::size_t> tail) {
  unterminated_.clear();
  pending_stdout_.clear();
  pending_stderr_.clear();
  int oldest = 0;
  while (std::filesystem::exists(dir_ / fmt::format("{}.{}", kCurrent, oldest + 1))) ++oldest;
  std::vector<LogLine> all;
  for (int i = oldest; i >= 1; --i) {
    FLEETLET_ASSIGN_OR_RETURN(auto data,
                              readFrom(dir_ / fmt::format("{}.{}", kCurrent, i), 0, nullptr));
    parse(data, all);
    // A rotation ends a file at a line boundary; never glue two files' bytes together.
    unterminated_.clear();
  }
  FLEETLET_ASSIGN_OR_RETURN(auto data, readFrom(dir_ / kCurrent, 0, &position_));
  parse(data, all);
  if (tail && all.size() > *tail) all.erase(all.begin(), all.end() - static_cast<long>(*tail));
  return all;
}

Result<std::vector<LogLine>> LogReader::readNew() {
  std::vector<LogLine> out;
  struct stat st {};
  auto current = dir_ / kCurrent;
  bool exists = ::stat(current.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) return failErrno(errno, "stat {}", current.string());
  if (position_.inode != 0 &&
      (!exists || static_cast<std::uint64_t>(st.st_ino) != position_.inode)) {
    // Rotated: finish the old file (now current.log.1) if it is still the one we read.
    struct stat old {};
    auto rotated = dir_ / fmt::format("{}.1", kCurrent);
    if (::stat(rotated.c_str(), &old) == 0 &&
        static_cast<std::uint64_t>(old.st_ino) == position_.inode) {
      FLEETLET_ASSIGN_OR_RETURN(auto rest, readFrom(rotated, position_.offset, nullptr));
      parse(rest, out);
    }
    unterminated_.clear();
    position_ = {};
  }
  if (exists && position_.inode != 0 && static_cast<std::uint64_t>(st.st_size) < position_.offset) {
    position_.offset = 0;  // truncated in place
    unterminated_.clear();
  }
  Position end;
  FLEETLET_ASSIGN_OR_RETURN(auto data, readFrom(current, position_.offset, &end));
  position_ = end;
  parse(data, out);
  return out;
}

}  // namespace fleetlet::api
