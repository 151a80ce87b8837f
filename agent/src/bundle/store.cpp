#include "bundle/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <optional>
#include <system_error>

#include "crypto/sha256.h"
#include "http/router.h"
#include "os/unique_fd.h"

namespace fleetlet::bundle {
namespace fs = std::filesystem;
namespace {

bool isSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "file:///a/b%20c" → "/a/b c"; nullopt for anything but an absolute local path.
std::optional<std::string> filePath(std::string_view url) {
  std::string_view rest = url.substr(7);  // after "file://"
  if (rest.starts_with("localhost/")) rest.remove_prefix(9);
  if (!rest.starts_with('/')) return std::nullopt;
  auto path = http::percentDecode(rest, /*plus_is_space=*/false);
  if (!path || path->find('\0') != std::string::npos) return std::nullopt;
  return *path;
}

Result<uint64_t> fileSize(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return failErrno(errno, "stat {}", path.string());
  return static_cast<uint64_t>(st.st_size);
}

// The last byte of a file, to compare with what a server sends for the same offset.
Result<char> lastByte(const fs::path& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failErrno(errno, "open {}", path.string());
  char c = 0;
  if (::pread(fd.get(), &c, 1, static_cast<off_t>(size - 1)) != 1) {
    return failErrno(errno, "read {}", path.string());
  }
  return c;
}

Status writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Error httpError(long status, const std::string& body) {
  std::string text = body.substr(0, 200);
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Error(status == 404 ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
               fmt::format("HTTP {}{}{}", status, text.empty() ? "" : ": ", text));
}

std::atomic<uint64_t> tmp_counter{0};

}  // namespace

BundleStore::BundleStore(StoreOptions options) : options_(std::move(options)) {
  std::error_code ignored;
  fs::remove_all(options_.root / "tmp", ignored);
}

fs::path BundleStore::directoryOf(const std::string& sha256) const {
  return options_.root / "sha256" / sha256;
}

bool BundleStore::installed(const std::string& sha256) const {
  std::error_code ec;
  return isSha256Hex(sha256) && fs::is_directory(directoryOf(sha256), ec);
}

std::shared_ptr<std::mutex> BundleStore::lockFor(const std::string& sha256) {
  std::lock_guard guard(locks_mutex_);
  auto& lock = locks_[sha256];
  if (!lock) lock = std::make_shared<std::mutex>();
  return lock;
}

Result<InstalledBundle> BundleStore::ensure(const std::string& url, const std::string& sha256) {
  if (!isSha256Hex(sha256)) {
    return fail(ErrorCode::kInvalidArgument, "bundle {}: sha256 \"{}\" is not 64 lower-case hex",
                url, sha256);
  }
  auto lock = lockFor(sha256);
  std::lock_guard guard(*lock);
  if (installed(sha256)) {
    auto config = loadAppConfig(directoryOf(sha256));
    if (!config) return std::unexpected(config.error().wrap("bundle {}", url));
    return InstalledBundle{sha256, directoryOf(sha256), std::move(*config)};
  }
  std::error_code ec;
  for (const char* sub : {"sha256", "downloads", "tmp"}) {
    fs::create_directories(options_.root / sub, ec);
    if (ec) {
      return fail(ErrorCode::kInternal, "bundle store: create {}: {}",
                  (options_.root / sub).string(), ec.message());
    }
  }
  auto archive = fetch(url, sha256);
  if (!archive) return std::unexpected(archive.error().wrap("bundle {}", url));
  auto result = install(*archive, sha256);
  if (!result) return std::unexpected(result.error().wrap("bundle {}", url));
  if (!url.starts_with("file://")) fs::remove(*archive, ec);
  return result;
}

std::string originOf(std::string_view url) {
  std::string_view scheme;
  if (url.starts_with("http://")) {
    scheme = "http";
  } else if (url.starts_with("https://")) {
    scheme = "https";
  } else {
    return "";
  }
  std::string_view rest = url.substr(scheme.size() + 3);
  std::string host(rest.substr(0, rest.find_first_of("/?#")));
  if (host.empty() || host.find('@') != std::string::npos) return "";
  std::ranges::transform(host, host.begin(), [](unsigned char c) { return std::tolower(c); });
  // The default port is the same origin as none.
  if (scheme == "https" && host.ends_with(":443")) host.resize(host.size() - 4);
  if (scheme == "http" && host.ends_with(":80")) host.resize(host.size() - 3);
  return fmt::format("{}://{}", scheme, host);
}

Result<fs::path> BundleStore::fetch(const std::string& url, const std::string& sha256) {
  fs::path archive;
  if (url.starts_with("file://")) {
    auto path = filePath(url);
    if (!path) {
      return fail(ErrorCode::kInvalidArgument, "a file URL must name an absolute local path");
    }
    archive = *path;
    FLEETLET_ASSIGN_OR_RETURN(uint64_t size, fileSize(archive));
    if (size > options_.max_download_bytes) {
      return fail(ErrorCode::kResourceExhausted,
                  "the archive has {} bytes, more than the {} allowed", size,
                  options_.max_download_bytes);
    }
  } else if (url.starts_with("http://") || url.starts_with("https://")) {
    http::ClientOptions client = options_.client;
    if (!options_.cloud_origin.empty() && originOf(url) == options_.cloud_origin) {
      client.tls = options_.cloud_tls;
    }
    FLEETLET_ASSIGN_OR_RETURN(archive, download(url, sha256, client));
  } else if (url.starts_with("blob://")) {
    const std::string handle = url.substr(std::string_view("blob://").size());
    if (handle.empty() || handle.size() > 128 ||
        handle.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
            std::string::npos) {
      return fail(ErrorCode::kInvalidArgument,
                  "a blob URL is blob://<handle> (letters, digits, '-', '_', '.')");
    }
    FLEETLET_ASSIGN_OR_RETURN(
        archive, download(options_.blob_service_url + handle, sha256, options_.client));
  } else {
    return fail(ErrorCode::kInvalidArgument, "unsupported URL scheme (http, https, file or blob)");
  }
  FLEETLET_ASSIGN_OR_RETURN(std::string actual, sha256File(archive.string()));
  if (actual != sha256) {
    std::error_code ec;
    if (!url.starts_with("file://")) fs::remove(archive, ec);
    return fail(ErrorCode::kInvalidArgument,
                "sha256 mismatch: the manifest says {}, the archive is {}", sha256, actual);
  }
  return archive;
}

Result<fs::path> BundleStore::download(const std::string& url, const std::string& sha256,
                                       const http::ClientOptions& client_options) {
  fs::path partial = options_.root / "downloads" / (sha256 + ".partial");
  http::Client client(client_options);
  uint64_t offset = 0;
  std::error_code ec;
  if (fs::exists(partial, ec)) {
    FLEETLET_ASSIGN_OR_RETURN(offset, fileSize(partial));
  }
  // The client hands body bytes over before it reports the status, so whether the server
  // honours Range is learnt first: ask for exactly the last byte we have. That byte back
  // with 206 means resume; a whole body (cut off) or another byte means start again.
  if (offset > 0) {
    FLEETLET_ASSIGN_OR_RETURN(char have, lastByte(partial, offset));
    std::string got;
    http::ClientRequest probe;
    probe.url = url;
    probe.headers.add("Range", fmt::format("bytes={}-{}", offset - 1, offset - 1));
    auto response = client.stream(probe, [&](std::string_view chunk) {
      got.append(chunk);
      return got.size() <= 1;
    });
    const bool resumable = response && response->status == 206 && got.size() == 1 && got[0] == have;
    if (!resumable) offset = 0;
  }
  UniqueFd fd(::open(partial.c_str(),
                     O_WRONLY | O_CREAT | O_CLOEXEC | (offset > 0 ? O_APPEND : O_TRUNC), 0644));
  if (!fd) return failErrno(errno, "open {}", partial.string());

  uint64_t written = offset;
  std::optional<Error> sink_error;
  http::ClientRequest request;
  request.url = url;
  if (offset > 0) request.range_start = offset;
  auto response = client.stream(request, [&](std::string_view chunk) {
    written += chunk.size();
    if (written > options_.max_download_bytes) {
      sink_error = Error(ErrorCode::kResourceExhausted,
                         fmt::format("the archive is larger than the {} bytes allowed",
                                     options_.max_download_bytes));
      return false;
    }
    if (auto ok = writeAll(fd.get(), chunk); !ok) {
      sink_error = ok.error().wrap("write {}", partial.string());
      return false;
    }
    return true;
  });
  if (sink_error) {
    if (sink_error->code() == ErrorCode::kResourceExhausted) fs::remove(partial, ec);
    return std::unexpected(*sink_error);
  }
  if (!response) return std::unexpected(response.error());
  // 416: the partial file already holds the whole archive; the hash check decides.
  if (!(response->status == 416 && offset > 0) &&
      (response->status < 200 || response->status >= 300)) {
    return std::unexpected(httpError(response->status, response->body));
  }
  if (::fsync(fd.get()) != 0) return failErrno(errno, "fsync {}", partial.string());
  return partial;
}

Result<InstalledBundle> BundleStore::install(const fs::path& archive, const std::string& sha256) {
  const fs::path tmp = options_.root / "tmp" /
                       fmt::format("{}-{}-{}", sha256.substr(0, 16), ::getpid(), ++tmp_counter);
  std::error_code ec;
  FLEETLET_ASSIGN_OR_RETURN(UnpackSummary summary, unpackArchive(archive, tmp, options_.limits));
  (void)summary;
  auto config = loadAppConfig(tmp);
  if (!config) {
    fs::remove_all(tmp, ec);
    return std::unexpected(config.error());
  }
  const fs::path dir = directoryOf(sha256);
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    int err = errno;
    fs::remove_all(tmp, ec);
    if (err != EEXIST && err != ENOTEMPTY) return failErrno(err, "publish {}", dir.string());
  }
  return InstalledBundle{sha256, dir, std::move(*config)};
}

Status BundleStore::prune(const std::set<std::string>& keep) {
  std::error_code ec;
  for (const char* sub : {"sha256", "downloads"}) {
    const fs::path dir = options_.root / sub;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      std::string sha = name.substr(0, name.find('.'));
      if (keep.contains(sha)) continue;
      auto lock = lockFor(sha);
      std::lock_guard guard(*lock);
      fs::remove_all(entry.path(), ec);
      if (ec)
        return fail(ErrorCode::kInternal, "remove {}: {}", entry.path().string(), ec.message());
    }
  }
  return {};
}

}  // namespace fleetlet::bundle
