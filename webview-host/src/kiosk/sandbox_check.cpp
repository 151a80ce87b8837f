#include "kiosk/sandbox_check.h"

#include <glib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "os/child_process.h"

namespace fleetlet::webview {
namespace {

namespace fs = std::filesystem;

std::string readSmallFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::optional<long> readSysctl(const fs::path& path) {
  std::ifstream in(path);
  long value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

// The last non-empty line of `text`, trimmed.
std::string lastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const auto start = text.rfind('\n');
  return std::string(start == std::string_view::npos ? text : text.substr(start + 1));
}

fs::path& markerPath() {
  static fs::path path;  // set once by exitClearlyWhenTheSandboxFails, before any thread
  return path;
}

[[noreturn]] void exitForTheSandbox(std::string_view webkit_error) {
  const std::string why = explainSandboxFailure(gatherSandboxFacts(), webkit_error);
  spdlog::error("{}", why);
  spdlog::error("exiting ({}; WebKit: {}): started again, the kiosk waits for the sandbox",
                kExitSandboxUnavailable, webkit_error);
  if (!markerPath().empty()) {
    std::ofstream(markerPath(), std::ios::trunc) << why << '\n';
  }
  spdlog::default_logger()->flush();
  // Not exit(): GTK and WebKit are mid-call on this thread; nothing of theirs must run on.
  ::_exit(kExitSandboxUnavailable);
}

GLogWriterOutput writeLog(GLogLevelFlags level, const GLogField* fields, gsize n_fields,
                          gpointer data) {
  if ((level & G_LOG_LEVEL_ERROR) != 0) {
    for (gsize i = 0; i < n_fields; ++i) {
      if (std::strcmp(fields[i].key, "MESSAGE") != 0 || fields[i].value == nullptr) continue;
      const auto* text = static_cast<const char*>(fields[i].value);
      const std::string_view message(
          text, fields[i].length < 0 ? std::strlen(text) : static_cast<size_t>(fields[i].length));
      if (isSandboxLaunchFailure(message)) exitForTheSandbox(message);
    }
  }
  return g_log_writer_default(level, fields, n_fields, data);
}

}  // namespace

fs::path sandboxFailureMarker(const fs::path& state_dir) { return state_dir / "sandbox-failure"; }

SandboxFacts gatherSandboxFacts() {
  SandboxFacts facts;
  const std::string bwrap(kBubblewrapPath);
  std::error_code ec;
  facts.bwrap_exists = fs::exists(bwrap, ec);
  facts.bwrap_executable = facts.bwrap_exists && ::access(bwrap.c_str(), X_OK) == 0;
  facts.uid = ::getuid();
  parseProcStatus(readSmallFile("/proc/self/status"), facts);
  facts.in_user_namespace = !isInitialUidMap(readSmallFile("/proc/self/uid_map"));
  facts.max_user_namespaces = readSysctl("/proc/sys/user/max_user_namespaces");
  facts.unprivileged_userns_clone = readSysctl("/proc/sys/kernel/unprivileged_userns_clone");
  facts.apparmor_restrict_unprivileged_userns =
      readSysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  if (!facts.bwrap_executable) return facts;
  // The namespaces WebKit's BubblewrapLauncher asks for, around a program that does nothing.
  RunOptions probe{
      .argv = {bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
               "--unshare-ipc", "--unshare-net", "--unshare-uts", "true"},
      .timeout = std::chrono::seconds(5)};
  auto ran = runCommand(probe);
  if (!ran) {
    facts.probe_error = ran.error().message();
    return facts;
  }
  facts.probe_ok = ran->status.success();
  if (!facts.probe_ok) {
    facts.probe_error = lastLine(ran->err);
    if (facts.probe_error.empty()) facts.probe_error = "bwrap " + ran->status.describe();
  }
  return facts;
}

std::optional<std::string> checkSandbox() {
  SandboxFacts facts = gatherSandboxFacts();
  if (facts.probe_ok) return std::nullopt;
  return explainSandboxFailure(facts, "");
}

std::optional<std::string> sandboxStillFailing(const fs::path& marker) {
  std::error_code ec;
  if (!fs::exists(marker, ec)) return std::nullopt;
  auto why = checkSandbox();
  if (!why) {
    fs::remove(marker, ec);
    spdlog::info("the web process sandbox can be set up again");
  }
  return why;
}

void exitClearlyWhenTheSandboxFails(fs::path marker) {
  markerPath() = std::move(marker);
  g_log_set_writer_func(&writeLog, nullptr, nullptr);
}

}  // namespace fleetlet::webview
