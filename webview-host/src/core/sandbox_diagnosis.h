#pragma once
// Why WebKit's web process sandbox (bubblewrap) cannot be set up, in words an operator can act
// on. Pure: the facts are gathered by the kiosk (kiosk/sandbox_check.h) only after WebKit
// failed to start a sandboxed web process, never on the normal start path.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace fleetlet::webview {

// The bubblewrap WebKitGTK runs (its path is compiled into libwebkit2gtk, not looked up on
// PATH).
inline constexpr std::string_view kBubblewrapPath = "/usr/bin/bwrap";

struct SandboxFacts {
  bool bwrap_exists = true;
  bool bwrap_executable = true;
  uid_t uid = 0;
  bool cap_sys_admin = true;  // in the effective set
  bool cap_net_admin = true;
  // user.max_user_namespaces as this process sees it (its user namespace's limit).
  std::optional<long> max_user_namespaces;
  std::optional<long> unprivileged_userns_clone;              // Debian's kernel knob
  std::optional<long> apparmor_restrict_unprivileged_userns;  // Ubuntu's
  bool seccomp_filter = false;                                // "Seccomp: 2" in /proc/self/status
  bool in_user_namespace = false;  // /proc/self/uid_map is not the initial namespace's
  bool probe_ok = false;           // a bwrap with WebKit's namespaces started and exited 0
  std::string probe_error;         // bwrap's stderr when it did not (one line)
};

// Whether a fatal GLib message is WebKit's failure to launch a sandboxed web process: bwrap
// could not be spawned, or it ended before handing over the web process's pid.
bool isSandboxLaunchFailure(std::string_view glib_message);

// Reads the effective capabilities and the seccomp mode from /proc/self/status's text.
void parseProcStatus(std::string_view status, SandboxFacts& facts);
// Whether /proc/self/uid_map's text is that of the initial user namespace.
bool isInitialUidMap(std::string_view uid_map);

// One paragraph (no newline): what failed, the likely cause given `facts`, and how to fix it.
// `webkit_error` is WebKit's own message, quoted when bubblewrap itself seems fine.
std::string explainSandboxFailure(const SandboxFacts& facts, std::string_view webkit_error);

}  // namespace fleetlet::webview
