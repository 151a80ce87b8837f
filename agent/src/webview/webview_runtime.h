#pragma once
// WebviewRuntime: fleetletd's side of `runtime: webview`. fleetlet-webview runs on the node's
// display either as fleetletd's native system app (KioskLaunch::kSystemApp, kioskSystemApp():
// containerd runs it, fleetletd's restart policy restarts it) or as this class's supervised
// child (KioskLaunch::kChild). WebviewRuntime fetches and verifies each webview app's bundle
// (bundle::BundleStore), hands the verified directory to the kiosk over its control socket,
// and reads the kiosk's status back into per-app states:
//
//   pending   not worked on yet
//   pulling   the bundle is being fetched, verified and unpacked
//   starting  handed to the kiosk; the page loads
//   running   the page has loaded and its heartbeat is fresh ("ready")
//   backoff   the page crashed, hung or failed to load and is being reloaded, or the bundle
//             could not be fetched (retried), or the kiosk is restarting, or the kiosk cannot
//             show any app (the `error` of its `list`: WebKit's sandbox cannot be set up);
//             `message` says why
//
// A bundle that cannot be fetched, fails its hash or is hostile is refused: an app that
// shows an earlier bundle keeps showing it (its state stays, `message` says what was
// refused). The previous bundle of an app is kept in the store until the new one runs.
// Rollback: a new bundle of an app that ran is on trial until it runs; when it has not run
// within `healthy_timeout`, or its page failed `rollback_failures` times, the previous bundle
// is handed back to the kiosk (event "rolledback") and the new one is not tried again until
// the desired state names another bundle. The new page is on screen during its trial.
// Every page recovery of the kiosk is counted in `restarts` and reported as an event
// ("restarted", "crashed: web process crashed"), as is every kiosk restart.
//
// Threads: one worker thread does all the blocking work; the public methods are thread-safe
// and return at once, except screenshot() and show(), which ask the kiosk (up to 10 s).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bundle/store.h"
#include "error/error.h"
#include "manifest/types.h"
#include "os/child_process.h"
#include "services/service_links.h"
#include "webview/child_log.h"
#include "webview/kiosk_client.h"

namespace fleetlet::webview {

// The name of the kiosk's native system app (and of its container, logs, status).
inline constexpr char kKioskAppName[] = "fleetlet-webview";

enum class KioskLaunch : std::uint8_t {
  // WebviewRuntime starts the kiosk as its child and stops it when it is destroyed. A kiosk
  // that ended or could not start is started again after the restart backoff of apps
  // (reconcile/restart_backoff.h: 1 s doubling to 5 min, back to 1 s after 10 min of running),
  // so a kiosk that cannot run (no display) does not flood the node events.
  kChild,
  // Someone else runs the kiosk (fleetletd: the native system app of kioskSystemApp()).
  // WebviewRuntime only talks to its control socket: a kiosk that does not answer makes the
  // apps "backoff"; a new instance (the `instance` of `list`) gets every app handed again and
  // counts as a restart of each; the first instance it meets is adopted as it is (the apps it
  // shows are handed again, which the kiosk takes as a no-op: no reload, no flicker).
  kSystemApp,
};

struct WebviewOptions {
  KioskLaunch launch = KioskLaunch::kChild;
  std::string display;                  // the X display the kiosk shows on (":0")
  std::filesystem::path binary;         // fleetlet-webview
  std::filesystem::path work_dir;       // control.sock, state/ (website data), log/ (child)
  bundle::StoreOptions bundles;         // root: <data>/bundles
  std::vector<std::string> kiosk_args;  // extra flags: --window WxH, --no-sandbox, ...
  std::chrono::milliseconds poll_interval{500};
  std::chrono::milliseconds retry_interval{10000};  // a refused bundle is tried again after
  std::chrono::milliseconds ready_heartbeat{5000};  // "running" needs a heartbeat this fresh
  // A new bundle that does not run within this long, or whose page failed this many times
  // since it was handed over, is rolled back to the previous bundle (see above).
  std::chrono::milliseconds healthy_timeout{60000};
  uint64_t rollback_failures = 3;
  // The node services (docs/webview.md, "Identity"): each webview app gets a unix listener per
  // service it lists, plus one of the console service for its console messages, under
  // <work_dir>/services/<app>/, handed to the services with its name. Null: no services.
  services::ServiceLinks* services = nullptr;
  // Node events (app, kind, message), from the worker thread.
  std::function<void(const std::string&, const std::string&, const std::string&)> on_event;
};

struct WebviewAppStatus {
  std::string name;
  std::string state = "pending";
  std::string message;
  uint64_t restarts = 0;
  std::string bundle;  // sha256 of the bundle handed to the kiosk, empty before
  bool shown = false;
  bool operator==(const WebviewAppStatus&) const = default;
};

// The kiosk as a native system app (docs/webview.md, "The kiosk as a system app"): named
// kKioskAppName, runtime native at sandbox level `process`, restart always, running
// `options.binary --socket <work_dir>/control.sock --state-dir <work_dir>/state` plus
// kiosk_args, with DISPLAY (and XAUTHORITY when fleetletd has one). Errors name the value.
Result<manifest::App> kioskSystemApp(const WebviewOptions& options);

// KioskLaunch::kChild: where the kiosk's output is logged, <work_dir>/log (see ChildLog): CRI
// records as in a system app's log directory, which `fleetletctl logs` reads.
std::filesystem::path kioskChildLogDir(const WebviewOptions& options);

// fleetlet-webview beside the running binary (installed), in the build tree's webview-host/
// (development), else /usr/libexec/fleetlet/fleetlet-webview.
std::filesystem::path defaultKioskBinary();

class WebviewRuntime {
 public:
  explicit WebviewRuntime(WebviewOptions options);
  // Stops the worker and the kiosk (SIGTERM, then SIGKILL after 3 s).
  ~WebviewRuntime();
  WebviewRuntime(const WebviewRuntime&) = delete;
  WebviewRuntime& operator=(const WebviewRuntime&) = delete;

  // The desired state; its webview apps are brought to the screen, webview apps it no
  // longer has are removed. Other runtimes' apps are ignored. The same pointer again is a
  // no-op, so callers may pass the current state as often as they like.
  void setDesired(std::shared_ptr<const manifest::NodeState> desired);

  // Status of every desired webview app, by name.
  std::map<std::string, WebviewAppStatus> apps() const;
  std::optional<WebviewAppStatus> app(const std::string& name) const;

  // A PNG of what the app's view shows (the shown app when `app` is empty).
  Result<std::string> screenshot(const std::string& app) const;
  // The kiosk's status of the app (docs/webview.md, "The control socket"): url, loadState,
  // heartbeatAgeMs, memoryMiB, failures, lastFailure... kNotFound when it does not have it.
  Result<Json> kioskStatus(const std::string& app) const;
  // Shows the app. kNotFound when the kiosk does not have it.
  Status show(const std::string& app);

  // Called whenever an app's status changed (from the worker thread).
  void onChange(std::function<void(const WebviewAppStatus&)> callback);

 private:
  struct Record {
    WebviewAppStatus status;
    std::string loaded;       // sha256 handed to the kiosk
    std::string loaded_key;   // what was handed: bundle, services and their sockets
    Json loaded_load;         // the load request handed (with the bundle's dir)
    uint64_t handed_seq = 0;  // when it was last handed over (higher: later)
    std::string previous;     // kept in the store until `loaded` runs
    // While a new bundle is on trial (previous set): the previous bundle's load request
    // (with its dir) and key, when it was handed over, and the kiosk's failure count then.
    Json previous_load;
    std::string previous_key;
    std::chrono::steady_clock::time_point handed_at{};
    uint64_t failures_at_hand = 0;
    uint64_t kiosk_failures = 0;
    std::string refused;  // the sha256 last refused, not tried again before retry_at
    std::chrono::steady_clock::time_point retry_at{};
  };

  void run(const std::stop_token& stop);
  void step(const std::stop_token& stop);
  bool ensureKiosk(const std::stop_token& stop);
  // The kiosk ended after running `ran_for` (0: it did not start): sets when it is started
  // again (reconcile::nextBackoff) and returns the delay.
  std::chrono::milliseconds holdKioskBack(std::chrono::milliseconds ran_for);
  // KioskLaunch::kSystemApp: true when the kiosk answers; notices a new instance.
  bool reachKiosk();
  // The kiosk is gone (`why`): every app it had is handed again to the next one, counted as
  // a restart of each.
  void kioskGone(const std::string& why);
  void converge(const manifest::NodeState* desired);
  // The load request of `app` (dir filled in by the caller): its services and console socket.
  Json loadRequest(const manifest::App& app);
  // Shows the loaded app of the highest display priority, among equals the latest handed.
  void showChosen(const manifest::NodeState& desired);
  void poll();
  // Hands the previous bundle of an app on trial back to the kiosk when the new one has not
  // become healthy (WebviewOptions::healthy_timeout, rollback_failures).
  void rollBackUnhealthy();
  void prune();
  void setStatus(const std::string& name, const std::function<void(WebviewAppStatus&)>& change);
  void event(const std::string& app, const std::string& kind, const std::string& message);

  WebviewOptions options_;
  bundle::BundleStore store_;
  KioskClient client_;

  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::shared_ptr<const manifest::NodeState> desired_;      // guarded by mu_
  bool dirty_ = false;                                      // guarded by mu_
  std::map<std::string, Record> records_;                   // guarded by mu_
  std::function<void(const WebviewAppStatus&)> on_change_;  // guarded by mu_

  // Worker thread only.
  std::optional<ChildLog> kiosk_log_;  // the child kiosk's output; before kiosk_: outlives it
  std::optional<ChildProcess> kiosk_;
  std::chrono::steady_clock::time_point kiosk_restart_at_{};
  std::chrono::steady_clock::time_point kiosk_started_at_{};
  std::chrono::milliseconds kiosk_backoff_{0};  // the last restart's delay; 0 before any
  uint64_t kiosk_starts_ = 0;
  std::string kiosk_instance_;  // kSystemApp: the instance last met; empty before
  bool kiosk_answering_ = false;
  // The kiosk's `error` (why it shows no app; empty: none): while set, every app is "backoff"
  // with it, its failures are not counted and no bundle is rolled back for it.
  std::string kiosk_error_;
  uint64_t handed_seq_ = 0;
  int64_t chosen_revision_ = -1;  // the manifest revision the shown app was last chosen for
  std::set<std::string> pruned_keep_;

  std::jthread worker_;  // last: stopped and joined before the members above go
};

}  // namespace fleetlet::webview
