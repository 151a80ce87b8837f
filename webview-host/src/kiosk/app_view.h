#pragma once
// AppView: one SPA in the kiosk. It owns a WebKitWebContext of its own (so its own web
// process and its own website data directory, kept across bundle updates), the app:// scheme
// handler that serves the verified bundle directory, the lockdown (navigation, popups,
// downloads) and the recovery of its page (crash, hang, load failure).
//
// Threads: everything runs on the GTK main thread.

#include <gtk/gtk.h>
#include <webkit2/webkit2.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "bundle/app_config.h"
#include "core/policy.h"
#include "core/recovery.h"
#include "error/error.h"
#include "http/client.h"
#include "json/json.h"
#include "kiosk/console_sink.h"
#include "kiosk/gobject_ptr.h"

namespace fleetlet::webview {

struct AppSpec {
  std::string name;
  std::filesystem::path dir;  // a verified bundle directory (BundleStore)
  // Service (events, blobs, logs) → the unix socket of that service's listener for this app.
  std::map<std::string, std::string> services;
  uint32_t memory_limit_mib = 0;  // 0: none; fixed when the view is built
  std::string console;            // the app's console-service socket (ConsoleSink); empty: none
  bool operator==(const AppSpec&) const = default;
};

// Request bodies forwarded to a service are at most this large (413 beyond).
inline constexpr size_t kMaxServiceBodyBytes = size_t{8} * 1024 * 1024;

// The PNG encoding of `surface`.
std::string encodePng(cairo_surface_t* surface);
// A PNG of what `widget` (realized) draws at its size, over the kiosk's black background.
Result<std::string> drawPng(GtkWidget* widget);

struct ViewOptions {
  std::filesystem::path data_dir;  // website data of this app (localStorage, IndexedDB, ...)
  bool sandbox = true;             // bubblewrap sandbox for the web process
  RecoveryOptions recovery;
  int heartbeat_interval_ms = 1000;
  std::filesystem::path extensions_dir;  // the web process extension (memory use); empty: none
  // false: WebKit's non-accelerated path (no GL in the web or UI process). Without a GPU,
  // GL is Mesa's llvmpipe, which costs ~80 ms of CPU per web process start and paints slower.
  bool hardware_acceleration = true;
  // A spare view with its web process started (on about:blank), made `spare_delay` after the
  // page loaded: when the page's web process ends, the spare takes over and the start page
  // is loaded in it, without waiting for a new web process (one more idle web process per
  // app: ~150 MiB RSS, ~25 MiB of it its own, the rest shared library pages).
  bool spare_web_process = true;
  Millis spare_delay{1000};
};

class AppView {
  // One forwarded service request, from the main loop to its thread and back.
  struct ServiceCall {
    GObjectPtr<WebKitURISchemeRequest> request;
    std::string socket;
    http::ClientRequest call;
    int status = 0;
    std::string content_type;
    std::string body;
    int body_fd = -1;  // streamed: the page's end of the body (a socket), else -1
    // Streamed: ends the call; requested when WebKit drops the page's end (the page stopped
    // reading) or the view goes.
    std::shared_ptr<std::stop_source> call_stop;
  };

 public:
  // Reads the bundle's fleetlet-app.json, builds the view and starts loading the start page.
  // kInvalidArgument when the bundle directory is not usable.
  static Result<std::unique_ptr<AppView>> create(const AppSpec& spec, const ViewOptions& options);
  ~AppView();
  AppView(const AppView&) = delete;
  AppView& operator=(const AppView&) = delete;

  const std::string& name() const { return spec_.name; }
  const AppSpec& spec() const { return spec_; }
  GtkWidget* widget() const { return box_; }

  // Switches to another bundle directory or services: the page is loaded afresh. On error
  // the current bundle stays.
  Status update(const AppSpec& spec);
  void reload(std::string_view why);
  // The kiosk shows or hides this view (only the shown view is hang-watched).
  void setShown(bool shown);
  // Called periodically by the kiosk: hang detection.
  void tick();

  Json status() const;
  LoadState loadState() const { return recovery_.state(); }
  // A PNG of what the view shows now; `done` runs on the main thread.
  void snapshot(std::function<void(Result<std::string>)> done);

 private:
  AppView(AppSpec spec, ViewOptions options, bundle::AppConfig config);
  void build();
  WebKitWebView* newView();  // a view of this app's context, sunk: one reference ours
  void connectView();        // view_'s signals
  void scheduleSpare();
  void makeSpare();
  // Puts the spare view in place of view_ (destroyed from the main loop); false without one.
  bool swapInSpare();
  static void onSpareTerminated(WebKitWebView* view, WebKitWebProcessTerminationReason reason,
                                gpointer self);
  void installScripts();
  void loadStartPage();
  void recover(LoadState state, std::string reason);
  void scheduleReload(Millis delay);
  // Runs `action` once after `delay`; `timer` holds the source (reset: not run).
  void after(SourceId& timer, Millis delay, void (AppView::*action)());
  std::string startUri() const;

  // Forwards a request for app://<name>/.ax/<service>/... to the app's own listener of
  // that service (AppSpec::services), answering 404 when the app has none.
  void forwardToService(WebKitURISchemeRequest* request, const ServiceRoute& route);
  // Asks the web process extension for the web process's resident set (memory_bytes_).
  void sampleMemory();
  static void onMemoryReply(GObject* view, GAsyncResult* result, gpointer self);

  static void onSchemeRequest(WebKitURISchemeRequest* request, gpointer self);
  static gboolean onDecidePolicy(WebKitWebView* view, WebKitPolicyDecision* decision,
                                 WebKitPolicyDecisionType type, gpointer self);
  static GtkWidget* onCreate(WebKitWebView* view, WebKitNavigationAction* action, gpointer self);
  static void onLoadChanged(WebKitWebView* view, WebKitLoadEvent event, gpointer self);
  static gboolean onLoadFailed(WebKitWebView* view, WebKitLoadEvent event, gchar* uri,
                               GError* error, gpointer self);
  static void onTerminated(WebKitWebView* view, WebKitWebProcessTerminationReason reason,
                           gpointer self);
  static void onResponsive(GObject* view, GParamSpec* pspec, gpointer self);
  static void onHeartbeat(WebKitUserContentManager* manager, WebKitJavascriptResult* result,
                          gpointer self);
  static void onConsole(WebKitUserContentManager* manager, WebKitJavascriptResult* result,
                        gpointer self);
  static void onDownload(WebKitWebContext* context, WebKitDownload* download, gpointer self);

  AppSpec spec_;
  ViewOptions options_;
  bundle::AppConfig config_;
  Recovery recovery_;
  GObjectPtr<WebKitWebContext> context_;
  GObjectPtr<WebKitUserContentManager> content_;
  GObjectPtr<WebKitSettings> settings_;
  GtkWidget* box_ = nullptr;        // the view's container (widget()); we hold one reference
  WebKitWebView* view_ = nullptr;   // a floating widget sunk by ref: we hold one reference
  WebKitWebView* spare_ = nullptr;  // the spare view (ViewOptions::spare_web_process), ditto
  SourceId spare_timer_;
  SourceId reload_timer_;
  bool shown_ = false;
  bool terminating_for_hang_ = false;
  uint64_t refused_navigations_ = 0;
  std::unique_ptr<ConsoleSink> console_;  // when spec_.console is set
  // The web process's resident set, last sampled (tick()); none before the first answer and
  // after the web process ended.
  std::optional<uint64_t> memory_bytes_;
  bool memory_pending_ = false;
  GObjectPtr<GCancellable> memory_cancel_;  // cancelled with the view: no reply reaches a dead one
  // Stopped with the view: service calls still streaming to it end (forwardToService).
  std::stop_source calls_stop_;
};

}  // namespace fleetlet::webview
