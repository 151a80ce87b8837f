#pragma once
// Kiosk: the one fullscreen window and the app views in it (a GtkStack: one view shown at a
// time). It runs the hang watchdog over the views and answers the control commands.
//
// Threads: everything runs on the GTK main thread (gtk_init must have run).

#include <gtk/gtk.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/control_protocol.h"
#include "error/error.h"
#include "json/json.h"
#include "kiosk/app_view.h"
#include "kiosk/gobject_ptr.h"

namespace fleetlet::webview {

struct KioskOptions {
  std::filesystem::path state_dir;  // <state_dir>/apps/<name>/ holds each app's website data
  bool fullscreen = true;           // else a window of width x height
  int width = 1280;
  int height = 800;
  bool sandbox = true;
  RecoveryOptions recovery;
  Millis watchdog_interval{500};
  int heartbeat_interval_ms = 1000;
  // Where fleetlet-webview's web process extension lives (memory use); empty: none.
  std::filesystem::path extensions_dir;
  bool hardware_acceleration = true;  // ViewOptions::hardware_acceleration
  bool spare_web_process = true;      // ViewOptions::spare_web_process
  // Non-empty: WebKit's web process sandbox cannot be set up (kiosk/sandbox_check.h), and this
  // says why. No view is made: apps loaded wait, reported "failed" with this reason and listed
  // with it as the kiosk's "error", and `sandbox_recheck` is asked every
  // `sandbox_recheck_interval` whether it works now (nullopt: yes; then the apps are loaded).
  std::string sandbox_error;
  std::function<std::optional<std::string>()> sandbox_recheck;
  Millis sandbox_recheck_interval{30000};
};

class Kiosk {
 public:
  explicit Kiosk(KioskOptions options);
  ~Kiosk();
  Kiosk(const Kiosk&) = delete;
  Kiosk& operator=(const Kiosk&) = delete;

  // Maps the window (once). The constructor neither creates nor maps it, so that the first
  // app's network and web processes start before the window is built and while it is being
  // mapped: load() and main() call it.
  void showWindow();
  // Adds the app or switches it to another bundle. The first app loaded is shown. The spec
  // the app already has is a no-op (no reload): a restarted fleetletd hands every app again.
  Status load(const AppSpec& spec);
  Status unload(const std::string& app);
  Status show(const std::string& app);
  Status reload(const std::string& app);
  Result<Json> status(const std::string& app) const;
  // {"instance", "pid", "shown", "error", "apps"}: `instance` differs between two runs of the
  // kiosk (pid and start time), so that fleetletd sees a restart it did not do itself;
  // `error` is why no app can be shown (KioskOptions::sandbox_error), else null.
  Json list() const;
  // A PNG of the app's view (the shown app when `app` is empty); of an app waiting for the
  // sandbox, a PNG of the notice shown instead.
  void screenshot(const std::string& app, std::function<void(Result<std::string>)> done);

  // Executes one control request; `answer` receives the JSON line (maybe later: screenshot).
  void handle(const ControlRequest& request, std::function<void(std::string)> answer);

 private:
  void tick();
  // Creates the window and its stack (once): the first load() does, after its view started.
  void ensureWindow();
  // Without a sandbox (KioskOptions::sandbox_error): checks it again when due, and loads the
  // waiting apps once it works.
  void recheckSandbox();
  // While no sandbox can be set up: a full-window text on the screen saying so (the
  // explanation in sandbox_error_), on top of the stack; created once, updated.
  void showNotice();
  Json waitingStatus(const AppSpec& spec) const;
  // Loads GTK's real theme (restoreGtkTheme) a second after the first page loaded: after
  // its first frames, before anyone opens a <select>.
  void maybeRestoreTheme();

  KioskOptions options_;
  GtkWidget* window_ = nullptr;  // owned by GTK's toplevel list; destroyed in ~Kiosk (lazy)
  GtkWidget* stack_ = nullptr;   // child of window_; set with it
  std::map<std::string, std::unique_ptr<AppView>> apps_;
  std::string shown_;
  std::string instance_;
  bool window_shown_ = false;
  std::optional<SteadyTime> theme_due_;
  bool theme_restored_ = false;
  SourceId watchdog_;
  std::string sandbox_error_;               // KioskOptions::sandbox_error, until it works
  std::map<std::string, AppSpec> waiting_;  // apps loaded while sandbox_error_ is set
  GtkWidget* notice_ = nullptr;             // a label in stack_ while apps wait (showNotice)
  SteadyTime sandbox_failing_since_;
  SteadyTime sandbox_recheck_at_;
};

}  // namespace fleetlet::webview
