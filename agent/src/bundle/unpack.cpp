#include "bundle/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <map>
#include <memory>
#include <system_error>

#include "os/unique_fd.h"

namespace fleetlet::bundle {
namespace {

constexpr size_t kMaxComponentLength = 255;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// A path from the archive as it may appear in a message: control bytes escaped.
std::string printable(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string archiveError(archive* a) {
  const char* e = archive_error_string(a);
  return e != nullptr ? e : "malformed archive";
}

ArchivePtr newReader() {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  return a;
}

// Receives the checked entries of an archive, in archive order. Parents come before
// children only if the archive lists them so: a sink creates missing parents itself.
class EntrySink {
 public:
  virtual ~EntrySink() = default;
  virtual Status directory(const std::string& path) = 0;
  virtual Status beginFile(const std::string& path, bool executable) = 0;
  virtual Status write(std::string_view chunk) = 0;
  virtual Status endFile() = 0;
  // `target` is an earlier file of the archive.
  virtual Status hardlink(const std::string& path, const std::string& target) = 0;
};

enum class Kind : uint8_t { kDirectory, kFile };

// Records `path`'s parents as directories; fails when one of them is a file.
Status claimParents(const std::string& path, std::map<std::string, Kind>& seen) {
  for (size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string parent = path.substr(0, slash);
    auto [it, inserted] = seen.emplace(parent, Kind::kDirectory);
    if (!inserted && it->second != Kind::kDirectory) {
      return fail(ErrorCode::kInvalidArgument, "entry {}: its parent {} is a file", printable(path),
                  printable(parent));
    }
  }
  return {};
}

std::string_view typeName(mode_t type) {
  switch (type) {
    case AE_IFCHR:
      return "character device";
    case AE_IFBLK:
      return "block device";
    case AE_IFIFO:
      return "fifo";
    case AE_IFSOCK:
      return "socket";
    default:
      return "special file";
  }
}

Result<UnpackSummary> walk(archive* a, const UnpackLimits& limits, EntrySink& sink) {
  UnpackSummary summary;
  std::map<std::string, Kind> seen;
  uint64_t entries = 0;
  std::vector<char> buffer(size_t{64} * 1024);
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return fail(ErrorCode::kInvalidArgument, "malformed archive: {}", archiveError(a));
    }
    if (++entries > limits.max_files) {
      return fail(ErrorCode::kResourceExhausted, "archive has more than {} entries (the limit)",
                  limits.max_files);
    }
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) return fail(ErrorCode::kInvalidArgument, "entry {} has no path", entries);
    FLEETLET_ASSIGN_OR_RETURN(std::string path, checkEntryPath(raw, limits));
    const mode_t type = archive_entry_filetype(entry);
    const char* link = archive_entry_hardlink(entry);
    if (path.empty()) {
      if (type == AE_IFDIR && link == nullptr) continue;  // the archive's "./"
      return fail(ErrorCode::kInvalidArgument,
                  "entry {} names the bundle's root but is no directory", printable(raw));
    }
    FLEETLET_RETURN_IF_ERROR(claimParents(path, seen));
    if (auto it = seen.find(path); it != seen.end()) {
      if (it->second == Kind::kDirectory && type == AE_IFDIR && link == nullptr) continue;
      return fail(ErrorCode::kInvalidArgument, "entry {} appears twice", printable(path));
    }
    if (link != nullptr) {
      FLEETLET_ASSIGN_OR_RETURN(std::string target, checkEntryPath(link, limits));
      auto it = seen.find(target);
      if (target.empty() || it == seen.end() || it->second != Kind::kFile) {
        return fail(ErrorCode::kInvalidArgument,
                    "entry {} is a hard link to {}, which is no earlier file of the archive",
                    printable(path), printable(link));
      }
      FLEETLET_RETURN_IF_ERROR(sink.hardlink(path, target));
      seen.emplace(path, Kind::kFile);
      ++summary.files;
      summary.paths.push_back(path);
      continue;
    }
    switch (type) {
      case AE_IFDIR:
        FLEETLET_RETURN_IF_ERROR(sink.directory(path));
        seen.emplace(path, Kind::kDirectory);
        ++summary.directories;
        break;
      case AE_IFREG: {
        const bool executable = (archive_entry_perm(entry) & 0111) != 0;
        FLEETLET_RETURN_IF_ERROR(sink.beginFile(path, executable));
        for (;;) {
          la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
          if (n < 0) {
            return fail(ErrorCode::kInvalidArgument, "entry {}: {}", printable(path),
                        archiveError(a));
          }
          if (n == 0) break;
          summary.bytes += static_cast<uint64_t>(n);
          if (summary.bytes > limits.max_total_bytes) {
            return fail(ErrorCode::kResourceExhausted,
                        "archive unpacks to more than {} bytes (the limit), at entry {}",
                        limits.max_total_bytes, printable(path));
          }
          FLEETLET_RETURN_IF_ERROR(
              sink.write(std::string_view(buffer.data(), static_cast<size_t>(n))));
        }
        FLEETLET_RETURN_IF_ERROR(sink.endFile());
        seen.emplace(path, Kind::kFile);
        ++summary.files;
        summary.paths.push_back(path);
        break;
      }
      case AE_IFLNK: {
        const char* to = archive_entry_symlink(entry);
        return fail(ErrorCode::kInvalidArgument,
                    "entry {} is a symbolic link (to {}): bundles may not contain symbolic links",
                    printable(path), printable(to != nullptr ? to : ""));
      }
      default:
        return fail(ErrorCode::kInvalidArgument,
                    "entry {} is a {}: bundles hold only files, directories and hard links",
                    printable(path), typeName(type));
    }
  }
  return summary;
}

// Checks only; writes nothing.
class NullSink final : public EntrySink {
 public:
  Status directory(const std::string& /*path*/) override { return {}; }
  Status beginFile(const std::string& /*path*/, bool /*executable*/) override { return {}; }
  Status write(std::string_view /*chunk*/) override { return {}; }
  Status endFile() override { return {}; }
  Status hardlink(const std::string& /*path*/, const std::string& /*target*/) override {
    return {};
  }
};

// Writes under a directory that it created itself and that holds no symbolic link (the
// walker refuses them), so a checked relative path cannot resolve outside it. Every open
// still uses O_NOFOLLOW, as a second line.
class DirectorySink final : public EntrySink {
 public:
  explicit DirectorySink(UniqueFd root) : root_(std::move(root)) {}

  Status directory(const std::string& path) override {
    FLEETLET_ASSIGN_OR_RETURN(UniqueFd dir, openDirectory(path));
    return {};
  }

  Status beginFile(const std::string& path, bool executable) override {
    auto [parent_path, name] = split(path);
    FLEETLET_ASSIGN_OR_RETURN(UniqueFd parent, openDirectory(parent_path));
    int fd =
        ::openat(parent.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 executable ? 0755 : 0644);
    if (fd < 0) return failErrno(errno, "create {}", printable(path));
    file_.reset(fd);
    file_path_ = path;
    return {};
  }

  Status write(std::string_view chunk) override {
    while (!chunk.empty()) {
      ssize_t n = ::write(file_.get(), chunk.data(), chunk.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return failErrno(errno, "write {}", printable(file_path_));
      }
      chunk.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  Status endFile() override {
    if (::close(file_.release()) != 0) return failErrno(errno, "close {}", printable(file_path_));
    return {};
  }

  Status hardlink(const std::string& path, const std::string& target) override {
    auto [parent_path, name] = split(path);
    FLEETLET_ASSIGN_OR_RETURN(UniqueFd parent, openDirectory(parent_path));
    if (::linkat(root_.get(), target.c_str(), parent.get(), name.c_str(), 0) != 0) {
      return failErrno(errno, "link {} to {}", printable(path), printable(target));
    }
    return {};
  }

 private:
  static std::pair<std::string, std::string> split(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return {"", path};
    return {path.substr(0, slash), path.substr(slash + 1)};
  }

  // Opens (creating as needed) the directory at `path` below the root; "" is the root.
  Result<UniqueFd> openDirectory(const std::string& path) {
    UniqueFd dir(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    if (!dir) return failErrno(errno, "dup");
    size_t start = 0;
    while (start < path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string::npos) end = path.size();
      std::string name = path.substr(start, end - start);
      if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return failErrno(errno, "create directory {}", printable(path.substr(0, end)));
      }
      int fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return failErrno(errno, "open directory {}", printable(path.substr(0, end)));
      dir.reset(fd);
      start = end + 1;
    }
    return dir;
  }

  UniqueFd root_;
  UniqueFd file_;
  std::string file_path_;
};

}  // namespace

Result<std::string> checkEntryPath(std::string_view path, const UnpackLimits& limits) {
  auto bad = [&](std::string_view why) {
    return fail(ErrorCode::kInvalidArgument, "entry {}: {}", printable(path), why);
  };
  if (path.empty()) return bad("empty path");
  if (path.size() > limits.max_path_length) {
    return bad(fmt::format("longer than {} bytes", limits.max_path_length));
  }
  if (path.front() == '/') return bad("absolute path");
  std::string_view rest = path;
  while (rest.starts_with("./")) rest.remove_prefix(2);
  if (rest == ".") return std::string();
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty()) return std::string();
  size_t depth = 0;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t end = rest.find('/', start);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view component = rest.substr(start, end - start);
    if (component.empty()) return bad("empty path component (\"//\")");
    if (component == "..") return bad("\"..\" component (path traversal)");
    if (component == ".") return bad("\".\" component inside the path");
    if (component.size() > kMaxComponentLength) {
      return bad(fmt::format("a component longer than {} bytes", kMaxComponentLength));
    }
    if (++depth > limits.max_depth) {
      return bad(fmt::format("deeper than {} components", limits.max_depth));
    }
    start = end + 1;
  }
  return std::string(rest);
}

Result<UnpackSummary> unpackArchive(const std::filesystem::path& archive_path,
                                    const std::filesystem::path& dest, const UnpackLimits& limits) {
  ArchivePtr a = newReader();
  if (archive_read_open_filename(a.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return fail(ErrorCode::kInvalidArgument, "open archive {}: {}", archive_path.string(),
                archiveError(a.get()));
  }
  if (::mkdir(dest.c_str(), 0755) != 0) return failErrno(errno, "create {}", dest.string());
  UniqueFd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  auto result = [&]() -> Result<UnpackSummary> {
    if (!root) return failErrno(errno, "open {}", dest.string());
    DirectorySink sink(std::move(root));
    return walk(a.get(), limits, sink);
  }();
  if (!result) {
    std::error_code ignored;
    std::filesystem::remove_all(dest, ignored);
    return std::unexpected(result.error().wrap("archive {}", archive_path.string()));
  }
  return result;
}

Result<UnpackSummary> inspectArchive(std::string_view bytes, const UnpackLimits& limits) {
  ArchivePtr a = newReader();
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return fail(ErrorCode::kInvalidArgument, "open archive: {}", archiveError(a.get()));
  }
  NullSink sink;
  return walk(a.get(), limits, sink);
}

}  // namespace fleetlet::bundle
