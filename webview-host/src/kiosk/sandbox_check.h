#pragma once
// When WebKit cannot set up its web process sandbox (bubblewrap: not installed, no user
// namespaces, no CAP_SYS_ADMIN, a container's seccomp profile), it aborts the kiosk with a
// fatal GLib error ("readPIDFromPeer: Unexpected short read from PID socket", or "Unable to
// spawn a new child process: ... /usr/bin/bwrap ..."); the UI process cannot carry on. The
// kiosk turns that into a diagnosis:
//
// - exitClearlyWhenTheSandboxFails() installs a GLib log writer that, on exactly those
//   errors, runs the diagnosis (gatherSandboxFacts: /proc and one bubblewrap run), logs the
//   explanation (core/sandbox_diagnosis.h), leaves it in a marker file and exits with
//   kExitSandboxUnavailable. Nothing runs before a failure: the writer passes every other
//   message on to GLib's default writer.
// - The next start sees the marker and checks the sandbox first (checkSandbox); while it
//   fails, the kiosk runs without web views and reports the explanation through its control
//   socket (Kiosk, KioskOptions::sandbox_error), checking again every 30 s
//   (--sandbox-recheck-ms). So a node without namespaces gets one exit, not a crash loop.
//
// Threads: the writer runs on whichever thread logs (WebKit's launcher: the main thread).

#include <filesystem>
#include <optional>
#include <string>

#include "core/sandbox_diagnosis.h"

namespace fleetlet::webview {

// The kiosk's exit code when the sandbox cannot be set up.
inline constexpr int kExitSandboxUnavailable = 3;

// Where the explanation is left for the next start: <state_dir>/sandbox-failure.
std::filesystem::path sandboxFailureMarker(const std::filesystem::path& state_dir);

// Reads /proc and runs bubblewrap once with the namespaces WebKit asks for (blocks while it
// runs: a few ms, at most 5 s).
SandboxFacts gatherSandboxFacts();

// nullopt when a sandbox can be set up now, else the explanation.
std::optional<std::string> checkSandbox();

// With the `marker` of a failed run: checkSandbox(), and the marker removed when the sandbox
// works. Without one, nullopt and nothing checked (one stat: the normal start).
std::optional<std::string> sandboxStillFailing(const std::filesystem::path& marker);

// Installs the GLib log writer above (once per process, before gtk_init). `marker` is
// written when it fires.
void exitClearlyWhenTheSandboxFails(std::filesystem::path marker);

}  // namespace fleetlet::webview
