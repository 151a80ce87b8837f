// fleetlet-webview: the kiosk that shows single-page app bundles fullscreen (WebKitGTK),
// driven through its control socket by fleetletd (docs/webview.md).
#include <glib-unix.h>
#include <gtk/gtk.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "kiosk/control_server.h"
#include "kiosk/kiosk.h"
#include "kiosk/parent_watch.h"
#include "kiosk/sandbox_check.h"
#include "kiosk/startup.h"
#include "log/log.h"
#include "version/version.h"

int main(int argc, char** argv) {
  // Before any thread or child process: WebKit's helpers inherit it (kiosk/startup.h).
  const auto preloaded = fleetlet::webview::preloadSelfBindingLibrariesForHelpers();
  CLI::App cli{"fleetlet-webview: fullscreen WebKitGTK kiosk for SPA bundles"};
  cli.set_version_flag("--version", fleetlet::versionLine("fleetlet-webview"));
  std::string socket_path = "/run/fleetlet/webview.sock";
  std::string state_dir = "/var/lib/fleetlet/webview";
  std::vector<std::string> apps;
  std::string show;
  std::string window;
  bool no_sandbox = false;
  int hang_timeout_ms = 5000;
  int heartbeat_ms = 1000;
  std::string log_level = "info";
  cli.add_option("--socket", socket_path, "control socket (unix)");
  cli.add_option("--state-dir", state_dir, "per-app website data lives under <dir>/apps/<name>");
  cli.add_option("--app", apps, "NAME=DIR: load the verified bundle directory DIR as app NAME");
  cli.add_option("--show", show, "the app shown first (default: the first loaded)");
  cli.add_option("--window", window, "WxH: a window of this size instead of fullscreen");
  cli.add_flag("--no-sandbox", no_sandbox, "run web processes without the bubblewrap sandbox");
  cli.add_option("--hang-timeout-ms", hang_timeout_ms, "no heartbeat for this long = hung")
      ->check(CLI::Range(500, 600000));
  cli.add_option("--heartbeat-ms", heartbeat_ms, "page heartbeat interval")
      ->check(CLI::Range(100, 60000));
  cli.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  std::string gpu = "auto";
  cli.add_option("--gpu", gpu,
                 "auto|on|off: GPU (GL) compositing; auto = on when a DRM render node exists "
                 "(/dev/dri/renderD*), else off (software GL is slower than none)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  bool no_spare = false;
  cli.add_flag(
      "--no-spare", no_spare,
      "no spare web process per app (it makes crash recovery faster; costs ~25 MiB of its own)");
  std::string extensions_dir;
  cli.add_option("--extensions-dir", extensions_dir,
                 "the web process extension's directory (memory use per app) [webview-extensions "
                 "beside the binary, else /usr/lib/fleetlet/webview-extensions]");
  int sandbox_recheck_ms = 30000;
  cli.add_option("--sandbox-recheck-ms", sandbox_recheck_ms,
                 "while WebKit's sandbox cannot be set up, check it this often")
      ->check(CLI::Range(100, 3600000));
  pid_t parent = 0;
  cli.add_option("--exit-with-parent", parent,
                 "PID: stop (as on SIGTERM) when process PID, which started the kiosk, ends — "
                 "for a kiosk run as a supervisor's child (fleetletd's webviewChild)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(cli, argc, argv);
  if (auto ok = fleetlet::setupLogging("webview", log_level); !ok) {
    (void)std::fprintf(stderr, "fleetlet-webview: %s\n", ok.error().message().c_str());
    return 2;
  }
  if (parent > 0) {
    if (auto ok = fleetlet::webview::endWithParent(parent); !ok) {
      spdlog::error("{}; not starting", ok.error().message());
      return 1;
    }
  }

  fleetlet::webview::KioskOptions options;
  options.state_dir = state_dir;
  options.sandbox = !no_sandbox;
  options.recovery.hang_timeout = std::chrono::milliseconds(hang_timeout_ms);
  options.heartbeat_interval_ms = heartbeat_ms;
  options.extensions_dir = extensions_dir;
  options.spare_web_process = !no_spare;
  options.hardware_acceleration =
      gpu == "on" || (gpu == "auto" && fleetlet::webview::haveRenderNode());
  if (extensions_dir.empty()) {
    std::error_code exists_ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", exists_ec).parent_path() /
                      "webview-extensions";
    options.extensions_dir = std::filesystem::exists(self, exists_ec)
                                 ? self
                                 : std::filesystem::path("/usr/lib/fleetlet/webview-extensions");
  }
  if (std::error_code exists_ec; !std::filesystem::exists(options.extensions_dir, exists_ec)) {
    spdlog::warn("no web process extension in {}: memory use is not reported",
                 options.extensions_dir.string());
    options.extensions_dir.clear();
  }
  if (!window.empty()) {
    if (std::sscanf(window.c_str(), "%dx%d", &options.width, &options.height) != 2 ||
        options.width <= 0 || options.height <= 0) {
      (void)std::fprintf(stderr, "fleetlet-webview: --window \"%s\" is not WxH\n", window.c_str());
      return 2;
    }
    options.fullscreen = false;
  }
  // Without GL compositing GTK needs no GL either: skips its GLX visual probe (~30 ms of CPU
  // at start here). An explicit GDK_GL in the environment wins.
  if (!options.hardware_acceleration) g_setenv("GDK_GL", "disable", FALSE);
  // Nor WebKit's DMA-BUF renderer (how the UI process receives composited frames; without GL
  // compositing there are none, the page arrives as bitmaps): with it, creating the web context
  // loads Mesa (EGL, swrast, LLVM: ~40 ms of CPU) before the view can start its processes;
  // without it, WebKit loads Mesa later, while the web process starts. Same rule as GDK_GL.
  if (!options.hardware_acceleration) g_setenv("WEBKIT_DISABLE_DMABUF_RENDERER", "1", FALSE);
  if (options.sandbox) {
    // Only a run before this one that could not set up WebKit's sandbox makes this start
    // check it; while it fails, the kiosk waits without web views (kiosk/sandbox_check.h).
    const auto marker = fleetlet::webview::sandboxFailureMarker(state_dir);
    options.sandbox_recheck_interval = std::chrono::milliseconds(sandbox_recheck_ms);
    if (auto why = fleetlet::webview::sandboxStillFailing(marker)) {
      spdlog::error("{}; checking again every {} ms", *why, sandbox_recheck_ms);
      options.sandbox_error = std::move(*why);
      options.sandbox_recheck = [marker] { return fleetlet::webview::sandboxStillFailing(marker); };
    }
    fleetlet::webview::exitClearlyWhenTheSandboxFails(marker);
  }
  fleetlet::webview::startWithKioskTheme();  // GTK's own once a page is up (startup.h)
  if (!gtk_init_check(&argc, &argv)) {
    (void)std::fprintf(stderr, "fleetlet-webview: cannot open the display (DISPLAY=%s)\n",
                       g_getenv("DISPLAY") != nullptr ? g_getenv("DISPLAY") : "");
    return 1;
  }
  fleetlet::webview::settleKioskTheme();

  fleetlet::webview::Kiosk kiosk(options);
  for (const auto& app : apps) {
    auto eq = app.find('=');
    if (eq == std::string::npos) {
      (void)std::fprintf(stderr, "fleetlet-webview: --app \"%s\" is not NAME=DIR\n", app.c_str());
      return 2;
    }
    fleetlet::webview::AppSpec spec{app.substr(0, eq), app.substr(eq + 1), {}};
    if (auto ok = kiosk.load(spec); !ok) {
      spdlog::error("{}", ok.error().message());
      return 1;
    }
  }
  if (!show.empty()) {
    if (auto ok = kiosk.show(show); !ok) spdlog::error("{}", ok.error().message());
  }
  kiosk.showWindow();  // black until fleetletd loads an app
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(socket_path).parent_path(), ec);
  auto server = fleetlet::webview::ControlServer::listen(socket_path, kiosk);
  if (!server) {
    spdlog::error("{}", server.error().message());
    return 1;
  }
  auto quit = [](gpointer) -> gboolean {
    gtk_main_quit();
    return G_SOURCE_REMOVE;
  };
  g_unix_signal_add(SIGTERM, quit, nullptr);
  g_unix_signal_add(SIGINT, quit, nullptr);
  spdlog::info("control socket {}; GPU compositing {}", socket_path,
               options.hardware_acceleration ? "on" : "off");
  for (const auto& library : preloaded) spdlog::debug("helper processes preload {}", library);
  gtk_main();
  spdlog::info("stopping");
  return 0;
}
