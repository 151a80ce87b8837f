#include "executor/attachment_cache.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "os/unique_fd.h"
#include "spec/types.h"

namespace fleetlet::cni {
namespace {

constexpr std::string_view kKind = "fleetletCniCacheV1";
constexpr std::string_view kSuffix = ".json";

Status writeAll(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "write {}", path.string());
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// A temp file of a put() ("<name>.json.tmp-<pid>") whose writer is gone: killed mid-write.
bool isStaleTemp(std::string_view name) {
  auto at = name.rfind(".tmp-");
  if (at == std::string_view::npos) return false;
  auto digits = name.substr(at + 5);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos ||
      digits.size() > 9) {
    return false;
  }
  pid_t pid = static_cast<pid_t>(std::stol(std::string(digits)));
  if (pid == ::getpid()) return false;
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace

std::filesystem::path AttachmentCache::pathOf(const std::string& container_id,
                                              const std::string& ifname) const {
  return dir_ / fmt::format("{}:{}{}", container_id, ifname, kSuffix);
}

Status AttachmentCache::put(const CachedAttachment& entry) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return failErrno(ec.value(), "create cache directory {}", dir_.string());
  ::chmod(dir_.c_str(), 0700);

  Json doc = {{"kind", kKind},
              {"containerId", entry.container_id},
              {"ifName", entry.ifname},
              {"app", entry.app},
              {"netns", entry.netns.string()},
              {"network", entry.network},
              {"capabilityArgs", entry.capability_args},
              {"cniArgs", entry.cni_args},
              {"meta", entry.meta},
              {"result", entry.result ? *entry.result : Json()}};
  auto path = pathOf(entry.container_id, entry.ifname);
  auto tmp = path;
  tmp += fmt::format(".tmp-{}", ::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return failErrno(errno, "create {}", tmp.string());
  if (auto st = writeAll(fd.get(), dumpJson(doc), tmp); !st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return failErrno(err, "fsync {}", tmp.string());
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return failErrno(err, "rename {} to {}", tmp.string(), path.string());
  }
  UniqueFd dirfd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd || ::fsync(dirfd.get()) != 0) return failErrno(errno, "fsync {}", dir_.string());
  return {};
}

Result<std::optional<CachedAttachment>> AttachmentCache::get(const std::string& container_id,
                                                             const std::string& ifname) const {
  auto path = pathOf(container_id, ifname);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::kInternal, "attachment cache {}: cannot open", path.string());
  std::stringstream text;
  text << in.rdbuf();
  auto doc = parseJson(text.str(), path.string());
  if (!doc) return std::unexpected(doc.error());
  std::string where = path.string();
  auto corrupt = [&](std::string_view what) {
    return fail(ErrorCode::kInvalidArgument, "attachment cache {}: {}", where, what);
  };
  if (!doc->is_object() || doc->value("kind", "") != kKind) return corrupt("not a cache entry");
  CachedAttachment out;
  auto str = [&](const char* key) -> Result<std::string> {
    auto it = doc->find(key);
    if (it == doc->end() || !it->is_string()) {
      return corrupt(fmt::format("{} missing or not a string", key));
    }
    return it->get<std::string>();
  };
  FLEETLET_ASSIGN_OR_RETURN(out.container_id, str("containerId"));
  FLEETLET_ASSIGN_OR_RETURN(out.ifname, str("ifName"));
  FLEETLET_ASSIGN_OR_RETURN(out.app, str("app"));
  FLEETLET_ASSIGN_OR_RETURN(std::string netns, str("netns"));
  out.netns = netns;
  FLEETLET_ASSIGN_OR_RETURN(out.cni_args, str("cniArgs"));
  if (out.container_id != container_id || out.ifname != ifname) {
    return corrupt("names another attachment");
  }
  out.network = doc->value("network", Json());
  if (!out.network.is_object()) return corrupt("network missing");
  out.capability_args = doc->value("capabilityArgs", Json::object());
  out.meta = doc->value("meta", Json::object());
  if (auto r = doc->find("result"); r != doc->end() && !r->is_null()) out.result = *r;
  return out;
}

Status AttachmentCache::remove(const std::string& container_id, const std::string& ifname) {
  auto path = pathOf(container_id, ifname);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return failErrno(errno, "remove {}", path.string());
  }
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> AttachmentCache::list() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return failErrno(ec.value(), "list {}", dir_.string());
  }
  for (const auto& file : it) {
    std::string name = file.path().filename().string();
    if (!name.ends_with(kSuffix)) {
      if (isStaleTemp(name)) ::unlink(file.path().c_str());
      continue;
    }
    name.resize(name.size() - kSuffix.size());
    auto colon = name.rfind(':');
    if (colon == std::string::npos) continue;
    out.emplace_back(name.substr(0, colon), name.substr(colon + 1));
  }
  std::ranges::sort(out);
  return out;
}

}  // namespace fleetlet::cni
