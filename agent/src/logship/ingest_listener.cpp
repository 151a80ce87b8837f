#include "logship/ingest_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fleetlet::logship {

Result<UniqueFd> listenIngest(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& text = path.native();
  if (text.empty() || text.size() >= sizeof(address.sun_path)) {
    return fail(ErrorCode::kInvalidArgument, "ingest socket path {} must be 1 to {} bytes", text,
                sizeof(address.sun_path) - 1);
  }
  std::memcpy(address.sun_path, text.data(), text.size());
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return failErrno(ec.value(), "create {}", path.parent_path().string());
  if (::chmod(path.parent_path().c_str(), 0700) != 0) {
    return failErrno(errno, "chmod {}", path.parent_path().string());
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket for {}", text);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return failErrno(errno, "remove {}", text);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return failErrno(errno, "bind {}", text);
  }
  if (::chmod(path.c_str(), 0600) != 0) return failErrno(errno, "chmod {}", text);
  if (::listen(fd.get(), 64) != 0) return failErrno(errno, "listen on {}", text);
  return fd;
}

}  // namespace fleetlet::logship
