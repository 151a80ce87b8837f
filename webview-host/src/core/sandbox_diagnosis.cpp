#include "core/sandbox_diagnosis.h"

#include <fmt/format.h>

#include <cstdint>
#include <sstream>

namespace fleetlet::webview {
namespace {

constexpr int kCapNetAdmin = 12;
constexpr int kCapSysAdmin = 21;

// The cause and its fix, given what bubblewrap needs for the kiosk's user.
std::string causeOf(const SandboxFacts& f) {
  const std::string bwrap(kBubblewrapPath);
  if (!f.bwrap_exists) {
    return fmt::format(
        "bubblewrap is not installed ({} is missing). Fix: install it (apt-get install "
        "bubblewrap)",
        bwrap);
  }
  if (!f.bwrap_executable) {
    return fmt::format(
        "{} cannot be executed. Fix: reinstall bubblewrap (apt-get install --reinstall "
        "bubblewrap), or mount its file system without noexec",
        bwrap);
  }
  if (f.uid == 0) {
    // bubblewrap run by root makes the namespaces with root's capabilities (no user namespace).
    if (!f.cap_sys_admin || !f.cap_net_admin) {
      const char* missing = !f.cap_sys_admin && !f.cap_net_admin ? "CAP_SYS_ADMIN and CAP_NET_ADMIN"
                            : !f.cap_sys_admin                   ? "CAP_SYS_ADMIN"
                                                                 : "CAP_NET_ADMIN";
      return fmt::format(
          "the kiosk runs as root without {}, which bubblewrap needs to create the web process's "
          "namespaces (CAP_NET_ADMIN for its loopback). Fix: give the kiosk CAP_SYS_ADMIN and "
          "CAP_NET_ADMIN (fleetletd's system app fleetlet-webview has both; a container or "
          "service unit that runs the kiosk must grant them too)",
          missing);
    }
  } else {
    // Anyone else needs an unprivileged user namespace for bubblewrap.
    if (f.max_user_namespaces && *f.max_user_namespaces == 0) {
      return fmt::format(
          "the kiosk runs as uid {}, so bubblewrap needs an unprivileged user namespace, and "
          "user.max_user_namespaces is 0 {}. Fix: allow user namespaces (sysctl -w "
          "user.max_user_namespaces=15000, and the same in /etc/sysctl.d/ to keep it)",
          f.uid,
          f.in_user_namespace ? "in the user namespace (container) it runs in" : "on this node");
    }
    if (f.unprivileged_userns_clone && *f.unprivileged_userns_clone == 0) {
      return fmt::format(
          "the kiosk runs as uid {}, so bubblewrap needs an unprivileged user namespace, and "
          "kernel.unprivileged_userns_clone is 0. Fix: sysctl -w "
          "kernel.unprivileged_userns_clone=1 (and the same in /etc/sysctl.d/)",
          f.uid);
    }
    if (f.apparmor_restrict_unprivileged_userns && *f.apparmor_restrict_unprivileged_userns != 0) {
      return fmt::format(
          "the kiosk runs as uid {}, so bubblewrap needs an unprivileged user namespace, and "
          "AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns=1). Fix: an "
          "AppArmor profile for {} that allows userns, or set that sysctl to 0",
          f.uid, bwrap);
    }
  }
  if (f.seccomp_filter) {
    return "the kiosk runs under a seccomp filter (a container's profile?) that may forbid "
           "creating namespaces. Fix: run it with a profile that allows clone/unshare of "
           "namespaces (bubblewrap needs mount, PID, network, IPC and UTS namespaces)";
  }
  if (f.in_user_namespace) {
    return "the kiosk runs in a user namespace (a container) that does not let it create "
           "namespaces. Fix: run it on the host or in a container that allows nested "
           "namespaces";
  }
  return "namespaces cannot be created here (see bubblewrap's message). Fix: allow them for "
         "the kiosk (user.max_*_namespaces, the container's seccomp and AppArmor profiles)";
}

}  // namespace

bool isSandboxLaunchFailure(std::string_view glib_message) {
  return glib_message.find("readPIDFromPeer") != std::string_view::npos ||
         (glib_message.find("child process") != std::string_view::npos &&
          glib_message.find(kBubblewrapPath) != std::string_view::npos);
}

void parseProcStatus(std::string_view status, SandboxFacts& facts) {
  std::istringstream in{std::string(status)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("CapEff:")) {
      const uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
      facts.cap_sys_admin = ((caps >> kCapSysAdmin) & 1U) != 0;
      facts.cap_net_admin = ((caps >> kCapNetAdmin) & 1U) != 0;
    } else if (line.starts_with("Seccomp:")) {
      facts.seccomp_filter = std::stoi(line.substr(8)) == 2;
    }
  }
}

bool isInitialUidMap(std::string_view uid_map) {
  std::istringstream in{std::string(uid_map)};
  uint64_t inside = 1, outside = 1, count = 0;
  in >> inside >> outside >> count;
  return inside == 0 && outside == 0 && count == 4294967295ULL;
}

std::string explainSandboxFailure(const SandboxFacts& facts, std::string_view webkit_error) {
  std::string what = fmt::format("WebKit's web process sandbox (bubblewrap, {}) cannot be set up",
                                 kBubblewrapPath);
  if (!facts.probe_error.empty()) {
    what += fmt::format(" ({})", facts.probe_error);
  }
  if (facts.probe_ok && facts.bwrap_exists && facts.bwrap_executable) {
    // bubblewrap works on its own: the cause is elsewhere; say what WebKit said.
    return fmt::format(
        "WebKit could not start its sandboxed web process ({}), although bubblewrap ({}) "
        "works on its own; see the kiosk's log for bubblewrap's message. No web content is "
        "shown until it starts",
        webkit_error, kBubblewrapPath);
  }
  return fmt::format(
      "{}: {}. No web content is shown until then (--no-sandbox would show it unsandboxed: "
      "not recommended)",
      what, causeOf(facts));
}

}  // namespace fleetlet::webview
