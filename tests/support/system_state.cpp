#include "support/system_state.h"

#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string_view>

#include "crypto/sha256.h"

namespace fleetlet::testing {
namespace {

namespace fs = std::filesystem;

// Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as \ooo.
std::string unescapeMountPath(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      auto octal = s.substr(i + 1, 3);
      if (std::all_of(octal.begin(), octal.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(
            static_cast<char>((octal[0] - '0') * 64 + (octal[1] - '0') * 8 + (octal[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool isUnder(const fs::path& path, const fs::path& dir) {
  auto [dir_end, path_it] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return dir_end == dir.end();
}

}  // namespace

Result<std::vector<fs::path>> mountsUnder(const fs::path& dir) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return failErrno(errno, "open /proc/self/mountinfo");
  const fs::path base = dir.lexically_normal();
  std::vector<fs::path> mounts;
  std::string line;
  while (std::getline(in, line)) {
    // Fields: id parent major:minor root mount-point ...
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    if (!(fields >> id >> parent >> dev >> root >> mount_point)) continue;
    fs::path mp = fs::path(unescapeMountPath(mount_point)).lexically_normal();
    if (isUnder(mp, base)) mounts.push_back(mp);
  }
  // Deepest first; a path mounted several times appears several times.
  std::stable_sort(mounts.begin(), mounts.end(), [](const fs::path& a, const fs::path& b) {
    return a.string().size() > b.string().size();
  });
  return mounts;
}

Status unmountAllUnder(const fs::path& dir) {
  FLEETLET_ASSIGN_OR_RETURN(auto mounts, mountsUnder(dir));
  Status first;
  for (const auto& mp : mounts) {
    if (::umount2(mp.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT && first) {
      first = failErrno(errno, "umount {}", mp.string());
    }
  }
  return first;
}

bool processAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string content;
  if (!std::getline(stat, content)) return false;
  // "pid (comm) S ...": the state follows the last ')'.
  auto close = content.rfind(')');
  if (close == std::string::npos || close + 2 >= content.size()) return false;
  char state = content[close + 2];
  return state != 'Z' && state != 'X';
}

std::vector<std::string> processCmdline(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::vector<std::string> argv;
  std::string arg;
  while (std::getline(in, arg, '\0')) argv.push_back(arg);
  return argv;
}

std::vector<pid_t> shimsOf(const fs::path& socket) {
  std::vector<pid_t> shims;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = std::stoi(name);
    auto argv = processCmdline(pid);
    if (argv.empty() || !fs::path(argv[0]).filename().string().starts_with("containerd-shim")) {
      continue;
    }
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i - 1] == "-address" && argv[i] == socket.string()) {
        shims.push_back(pid);
        break;
      }
    }
  }
  return shims;
}

namespace {

std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", parent), ec)) {
    std::ifstream in(task.path() / "children");
    pid_t child = 0;
    while (in >> child) children.push_back(child);
  }
  return children;
}

// The value following `flag` in argv, or "".
std::string flagValue(const std::vector<std::string>& argv, std::string_view flag) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i - 1] == flag) return argv[i];
  }
  return {};
}

// What a SIGKILLed shim of `socket` leaves in /run/containerd: its socket (containerd 1.6
// names it sha256(<address>/<ns>/<id>)) and runc's state dir, which is removed only when its
// rootfs lies under the instance's directory (the socket's parent).
void removeShimLeftovers(const fs::path& socket, const std::string& ns, const std::string& id) {
  if (ns.empty() || id.empty()) return;
  std::error_code ec;
  fs::remove(fs::path("/run/containerd/s") / sha256Hex((socket / ns / id).string()), ec);
  const fs::path runc_state = fs::path("/run/containerd/runc") / ns / id;
  std::ifstream in(runc_state / "state.json");
  std::stringstream state;
  state << in.rdbuf();
  const std::string owned = fmt::format("\"rootfs\":\"{}/", socket.parent_path().string());
  if (state.str().find(owned) != std::string::npos) fs::remove_all(runc_state, ec);
}

}  // namespace

int killShimsOf(const fs::path& socket, std::chrono::milliseconds timeout) {
  auto shims = shimsOf(socket);
  std::vector<pid_t> victims;
  std::vector<std::pair<std::string, std::string>> containers;
  for (pid_t shim : shims) {
    auto argv = processCmdline(shim);
    containers.emplace_back(flagValue(argv, "-namespace"), flagValue(argv, "-id"));
    for (pid_t child : childrenOf(shim)) victims.push_back(child);
    victims.push_back(shim);
  }
  for (pid_t pid : victims) ::kill(pid, SIGKILL);
  waitFor(
      [&] {
        return std::none_of(victims.begin(), victims.end(),
                            [](pid_t p) { return processAlive(p); });
      },
      timeout);
  for (const auto& [ns, id] : containers) removeShimLeftovers(socket, ns, id);
  return static_cast<int>(shims.size());
}

}  // namespace fleetlet::testing
