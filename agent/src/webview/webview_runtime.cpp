#include "webview/webview_runtime.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <system_error>
#include <utility>

#include "crypto/base64.h"
#include "manifest/parse.h"
#include "reconcile/restart_backoff.h"

namespace fleetlet::webview {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string shortSha(const std::string& sha) { return sha.substr(0, 12); }

// "4 s": a restart delay (whole seconds) in an event.
std::string seconds(std::chrono::milliseconds delay) {
  return fmt::format("{} s", std::chrono::duration_cast<std::chrono::seconds>(delay).count());
}

}  // namespace

fs::path kioskChildLogDir(const WebviewOptions& options) {
  return fs::absolute(options.work_dir) / "log";
}

Result<manifest::App> kioskSystemApp(const WebviewOptions& options) {
  Json args = {"--socket", (options.work_dir / "control.sock").string(), "--state-dir",
               (options.work_dir / "state").string()};
  for (const auto& arg : options.kiosk_args) args.push_back(arg);
  Json env = {{"DISPLAY", options.display}};
  if (const char* xauthority = std::getenv("XAUTHORITY"); xauthority != nullptr && *xauthority) {
    env["XAUTHORITY"] = xauthority;
  }
  // Level `process`: WebKit's own sandbox (bubblewrap) makes the web process's mount, PID
  // and network namespaces, which the `sandboxed` level's seccomp filter refuses; the kiosk
  // needs the X socket, the DRI render node and fleetletd's data directory as they are on the
  // host. bubblewrap run by root makes them with CAP_SYS_ADMIN (namespaces, mounts) and
  // CAP_NET_ADMIN (loopback in the new network namespace), beyond the default set
  // (docs/webview.md, "The kiosk as a system app").
  const Json state = {
      {"apiVersion", "fleetlet.io/v1"},
      {"kind", "NodeState"},
      {"revision", 1},
      {"apps",
       {{kKioskAppName,
         {{"runtime", "native"},
          {"exec", {{"path", options.binary.string()}, {"args", args}}},
          {"env", env},
          {"sandbox", {{"level", "process"}, {"capabilities", {"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}}}},
          {"restart", {{"policy", "always"}}},
          // A kiosk whose control socket is gone (fleetletd's data directory removed under
          // it) runs on unreachable: started again, it makes the socket anew.
          {"health",
           {{"exec",
             {{"command", {"/usr/bin/test", "-S", (options.work_dir / "control.sock").string()}}}},
            {"interval", "10s"},
            {"failures", 3}}},
          {"stopGracePeriod", "3s"}}}}}};
  FLEETLET_ASSIGN_OR_RETURN(auto parsed,
                            manifest::parseNodeState(state.dump(), "the kiosk's system app"));
  return std::move(parsed.apps.at(kKioskAppName));
}

std::filesystem::path defaultKioskBinary() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate :
       {self / "fleetlet-webview",
        self.parent_path().parent_path() / "webview-host" / "fleetlet-webview"}) {
    if (fs::exists(candidate, ec)) return candidate;
  }
  return "/usr/libexec/fleetlet/fleetlet-webview";
}

WebviewRuntime::WebviewRuntime(WebviewOptions options)
    : options_(std::move(options)),
      store_(options_.bundles),
      client_(options_.work_dir / "control.sock") {
  worker_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
}

WebviewRuntime::~WebviewRuntime() {
  worker_.request_stop();
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void WebviewRuntime::setDesired(std::shared_ptr<const manifest::NodeState> desired) {
  {
    std::lock_guard lock(mu_);
    if (desired == desired_) return;
    desired_ = std::move(desired);
    dirty_ = true;
    if (desired_) {
      for (const auto& [name, app] : desired_->apps) {
        if (app.runtime == manifest::Runtime::kWebview) records_[name].status.name = name;
      }
    }
  }
  wake_.notify_all();
}

std::map<std::string, WebviewAppStatus> WebviewRuntime::apps() const {
  std::lock_guard lock(mu_);
  std::map<std::string, WebviewAppStatus> out;
  if (!desired_) return out;
  for (const auto& [name, app] : desired_->apps) {
    if (app.runtime != manifest::Runtime::kWebview) continue;
    auto it = records_.find(name);
    out[name] = it != records_.end() ? it->second.status : WebviewAppStatus{.name = name};
  }
  return out;
}

std::optional<WebviewAppStatus> WebviewRuntime::app(const std::string& name) const {
  auto all = apps();
  auto it = all.find(name);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

Result<std::string> WebviewRuntime::screenshot(const std::string& app) const {
  Json request = {{"cmd", "screenshot"}};
  if (!app.empty()) request["app"] = app;
  FLEETLET_ASSIGN_OR_RETURN(Json answer, client_.call(request));
  if (!answer.contains("png") || !answer["png"].is_string()) {
    return fail(ErrorCode::kInternal, "kiosk answered a screenshot without png");
  }
  auto png = base64Decode(answer["png"].get<std::string>());
  if (!png) return std::unexpected(png.error().wrap("kiosk screenshot"));
  return png;
}

Result<Json> WebviewRuntime::kioskStatus(const std::string& app) const {
  FLEETLET_ASSIGN_OR_RETURN(Json answer, client_.call({{"cmd", "status"}, {"app", app}}));
  if (!answer.contains("status") || !answer["status"].is_object()) {
    return fail(ErrorCode::kInternal, "kiosk answered a status without status");
  }
  return answer["status"];
}

Status WebviewRuntime::show(const std::string& app) {
  FLEETLET_ASSIGN_OR_RETURN(Json answer, client_.call({{"cmd", "show"}, {"app", app}}));
  (void)answer;
  return {};
}

void WebviewRuntime::onChange(std::function<void(const WebviewAppStatus&)> callback) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(callback);
}

void WebviewRuntime::event(const std::string& app, const std::string& kind,
                           const std::string& message) {
  if (kind == "error" || kind == "restarted" || kind == "kiosk-exited") {
    spdlog::warn("webview {}: {}: {}", app.empty() ? "kiosk" : app, kind, message);
  } else {
    spdlog::info("webview {}: {}: {}", app.empty() ? "kiosk" : app, kind, message);
  }
  if (options_.on_event) options_.on_event(app, kind, message);
}

void WebviewRuntime::setStatus(const std::string& name,
                               const std::function<void(WebviewAppStatus&)>& change) {
  std::function<void(const WebviewAppStatus&)> callback;
  WebviewAppStatus now;
  {
    std::lock_guard lock(mu_);
    auto& record = records_[name];
    record.status.name = name;
    WebviewAppStatus before = record.status;
    change(record.status);
    if (record.status == before) return;
    now = record.status;
    callback = on_change_;
  }
  if (callback) callback(now);
}

void WebviewRuntime::run(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    step(stop);
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, stop, options_.poll_interval, [this] { return dirty_; });
  }
  if (kiosk_) {  // KioskLaunch::kChild only
    kiosk_->stop(SIGTERM, 3s);
    kiosk_.reset();
  }
}

void WebviewRuntime::step(const std::stop_token& stop) {
  std::shared_ptr<const manifest::NodeState> desired;
  {
    std::lock_guard lock(mu_);
    desired = desired_;
    dirty_ = false;
  }
  if (!ensureKiosk(stop)) return;
  converge(desired.get());
  poll();
  rollBackUnhealthy();
  prune();
}

void WebviewRuntime::kioskGone(const std::string& why) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, record] : records_) {
      if (record.loaded.empty()) continue;
      record.loaded.clear();  // loaded again into the new kiosk
      record.loaded_key.clear();
      record.kiosk_failures = 0;
      record.handed_at = SteadyClock::now();  // a trial starts again with the new kiosk
      record.failures_at_hand = 0;
      names.push_back(name);
    }
  }
  for (const auto& name : names) {
    setStatus(name, [&](WebviewAppStatus& s) {
      s.state = "backoff";
      s.message = "the kiosk " + why;
      ++s.restarts;
      s.shown = false;
    });
  }
}

bool WebviewRuntime::reachKiosk() {
  auto list = client_.call({{"cmd", "list"}});
  if (!list) {
    if (kiosk_answering_) {
      kiosk_answering_ = false;
      event("", "kiosk-exited", list.error().message());
      std::vector<std::string> names;
      {
        std::lock_guard lock(mu_);
        for (const auto& [name, record] : records_) {
          if (!record.loaded.empty()) names.push_back(name);
        }
      }
      for (const auto& name : names) {
        setStatus(name, [&](WebviewAppStatus& s) {
          s.state = "backoff";
          s.message = "the kiosk does not answer (" + list.error().message() +
                      "); its system app " + kKioskAppName + " is restarted by fleetletd";
          s.shown = false;
        });
      }
    }
    return false;
  }
  kiosk_answering_ = true;
  const std::string instance = list->value("instance", "");
  if (instance == kiosk_instance_) return true;
  if (!kiosk_instance_.empty()) {
    kioskGone("restarted (was " + kiosk_instance_ + ", now " + instance + ")");
  }
  kiosk_instance_ = instance;
  ++kiosk_starts_;
  event("", "kiosk-started",
        fmt::format("{} pid {} on display {} (native system app {})", instance,
                    list->value("pid", 0), options_.display, kKioskAppName));
  return true;
}

bool WebviewRuntime::ensureKiosk(const std::stop_token& stop) {
  if (options_.launch == KioskLaunch::kSystemApp) return reachKiosk();
  if (kiosk_) {
    auto ended = kiosk_->poll();
    if (!ended) return true;
    kiosk_.reset();
    const auto delay = holdKioskBack(std::chrono::duration_cast<std::chrono::milliseconds>(
        SteadyClock::now() - kiosk_started_at_));
    event("", "kiosk-exited",
          fmt::format("{}; starting it again in {}", ended->describe(), seconds(delay)));
    kioskGone("exited (" + ended->describe() + "); restarting it");
  }
  if (SteadyClock::now() < kiosk_restart_at_) return false;
  std::error_code ec;
  fs::create_directories(options_.work_dir, ec);
  const fs::path socket = options_.work_dir / "control.sock";
  fs::remove(socket, ec);
  SpawnOptions spawn;
  // The kiosk ends with this process (also when it is killed): the next fleetletd starts the
  // only one (fleetlet-webview --help).
  spawn.argv = {options_.binary.string(),
                "--socket",
                socket.string(),
                "--state-dir",
                (options_.work_dir / "state").string(),
                "--exit-with-parent",
                std::to_string(::getpid())};
  for (const auto& arg : options_.kiosk_args) spawn.argv.push_back(arg);
  spawn.env = {{"DISPLAY", options_.display}};
  // The kiosk could not be started (`why`): an error event; tried again after the backoff.
  auto cannotStart = [this](const std::string& why) {
    event("", "error", fmt::format("{}; trying again in {}", why, seconds(holdKioskBack(0ms))));
    return false;
  };
  kiosk_log_.reset();  // the last kiosk's: what its pipe still held is logged
  auto log = ChildLog::start(kioskChildLogDir(options_));
  if (!log) return cannotStart(log.error().message());
  spawn.stdout_fd = log->stdoutFd();
  spawn.stderr_fd = log->stderrFd();
  auto child = ChildProcess::spawn(spawn);
  log->closeWriteEnds();
  kiosk_log_.emplace(std::move(*log));
  if (!child)
    return cannotStart(child.error().wrap("start {}", options_.binary.string()).message());
  for (int i = 0; i < 200 && !fs::exists(socket, ec) && !stop.stop_requested(); ++i) {
    if (child->poll()) break;
    std::this_thread::sleep_for(50ms);
  }
  if (!fs::exists(socket, ec)) {
    auto ended = child->stop(SIGTERM, 1s);
    return cannotStart(fmt::format("{} did not open its control socket ({}); see {}",
                                   options_.binary.string(), ended.describe(),
                                   (kioskChildLogDir(options_) / "current.log").string()));
  }
  ++kiosk_starts_;
  kiosk_started_at_ = SteadyClock::now();
  event("", "kiosk-started", fmt::format("pid {} on display {}", child->pid(), options_.display));
  kiosk_.emplace(std::move(*child));
  return true;
}

std::chrono::milliseconds WebviewRuntime::holdKioskBack(std::chrono::milliseconds ran_for) {
  kiosk_backoff_ = reconcile::nextBackoff(kiosk_backoff_, ran_for);
  kiosk_restart_at_ = SteadyClock::now() + kiosk_backoff_;
  return kiosk_backoff_;
}

Json WebviewRuntime::loadRequest(const manifest::App& app) {
  Json load = {{"cmd", "load"}, {"app", app.name}};
  // resources.memory is the web process's limit: above it the kiosk recycles it.
  if (app.resources.memory_bytes) {
    load["memoryLimitMiB"] =
        std::clamp<int64_t>(*app.resources.memory_bytes / (int64_t{1024} * 1024), 64, 65536);
  }
  if (options_.services == nullptr) return load;
  // The console service always: the page's console messages are its output, kept like a
  // container's. The others only when listed.
  std::vector<std::string> linked = app.services;
  if (std::find(linked.begin(), linked.end(), "logs") == linked.end()) linked.push_back("logs");
  auto sockets =
      options_.services->linkUnix(app.name, linked, options_.work_dir / "services" / app.name);
  if (!sockets) {
    spdlog::warn("webview {}: {}", app.name, sockets.error().message());
    return load;
  }
  Json services = Json::object();
  for (const auto& [service, socket] : *sockets) {
    if (std::find(app.services.begin(), app.services.end(), service) != app.services.end()) {
      services[service] = socket;
    }
  }
  load["services"] = std::move(services);
  if (auto it = sockets->find("logs"); it != sockets->end()) load["console"] = it->second;
  return load;
}

void WebviewRuntime::converge(const manifest::NodeState* desired) {
  std::set<std::string> wanted;
  bool handed = false;  // an app was handed to the kiosk: which one is shown is chosen again
  if (desired != nullptr) {
    for (const auto& [name, app] : desired->apps) {
      if (app.runtime != manifest::Runtime::kWebview || !app.bundle) continue;
      wanted.insert(name);
      const auto& bundle = *app.bundle;
      std::string loaded;
      std::string loaded_key;
      bool wait = false;
      {
        std::lock_guard lock(mu_);
        const auto& record = records_[name];
        loaded = record.loaded;
        loaded_key = record.loaded_key;
        wait = record.refused == bundle.sha256 && SteadyClock::now() < record.retry_at;
      }
      if (wait) continue;
      // Linking is idempotent and cheap: it makes again what a restarted service or a
      // removed socket file lost. A change of services reloads the app.
      Json load = loadRequest(app);
      const std::string key = bundle.sha256 + " " + load.dump();
      if (loaded == bundle.sha256 && loaded_key == key) continue;

      if (loaded.empty()) {
        setStatus(name, [&](WebviewAppStatus& s) {
          s.state = "pulling";
          s.message = "bundle " + bundle.url;
        });
      }
      auto installed = store_.ensure(bundle.url, bundle.sha256);
      if (installed) load["dir"] = installed->dir.string();
      Status loaded_ok =
          installed ? discardValue(client_.call(load)) : Status(std::unexpected(installed.error()));
      if (!loaded_ok) {
        const std::string why = loaded_ok.error().message();
        event(name, "error", why);
        {
          std::lock_guard lock(mu_);
          records_[name].refused = bundle.sha256;
          records_[name].retry_at = SteadyClock::now() + options_.retry_interval;
        }
        setStatus(name, [&](WebviewAppStatus& s) {
          if (loaded.empty()) {
            s.state = "backoff";
            s.message = fmt::format(
                "{}; retry in {}s", why,
                std::chrono::duration_cast<std::chrono::seconds>(options_.retry_interval).count());
          } else {
            s.message = fmt::format("bundle {} refused ({}); still showing {}",
                                    shortSha(bundle.sha256), why, shortSha(loaded));
          }
        });
        continue;
      }
      {
        std::lock_guard lock(mu_);
        auto& record = records_[name];
        if (!record.loaded.empty() && record.loaded != bundle.sha256) {
          // On trial: the bundle that was shown comes back if this one never runs. A bundle
          // replacing one that itself never ran goes back to the last that did.
          if (record.previous.empty() || record.status.state == "running") {
            record.previous = record.loaded;
            record.previous_load = record.loaded_load;
            record.previous_key = record.loaded_key;
          }
          record.handed_at = SteadyClock::now();
          record.failures_at_hand = record.kiosk_failures;
        }
        record.loaded_load = load;
        record.loaded = bundle.sha256;
        record.loaded_key = key;
        record.handed_seq = ++handed_seq_;
        // A new view in the kiosk counts from 0; an updated one keeps its count.
        if (loaded.empty()) record.kiosk_failures = 0;
      }
      event(name,
            loaded.empty()            ? "started"
            : loaded != bundle.sha256 ? "updated"
                                      : "reloaded",
            fmt::format("bundle {} handed to the kiosk", shortSha(bundle.sha256)));
      handed = true;
      setStatus(name, [&](WebviewAppStatus& s) {
        s.state = "starting";
        s.message = "";
        s.bundle = bundle.sha256;
      });
    }
  }
  // A new manifest (a display priority may have changed) or a new page: choose again. Between
  // those, an app shown by hand (fleetletctl show) stays shown.
  if (desired != nullptr && (handed || desired->revision != chosen_revision_)) {
    chosen_revision_ = desired->revision;
    showChosen(*desired);
  }
  std::vector<std::string> gone;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, record] : records_) {
      if (!wanted.contains(name)) gone.push_back(name);
    }
  }
  for (const auto& name : gone) {
    bool was_loaded = false;
    {
      std::lock_guard lock(mu_);
      was_loaded = !records_[name].loaded.empty();
      records_.erase(name);
    }
    if (options_.services != nullptr) {
      options_.services->unlink(name);
      std::error_code ec;
      fs::remove_all(options_.work_dir / "services" / name, ec);
    }
    if (!was_loaded) continue;
    if (auto r = client_.call({{"cmd", "unload"}, {"app", name}});
        !r && r.error().code() != ErrorCode::kNotFound) {
      event(name, "error", r.error().message());
    } else {
      event(name, "removed", "unloaded from the kiosk");
    }
  }
}

void WebviewRuntime::showChosen(const manifest::NodeState& desired) {
  std::string chosen;
  std::pair<int64_t, uint64_t> best{-1, 0};
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, record] : records_) {
      auto it = desired.apps.find(name);
      if (record.loaded.empty() || it == desired.apps.end()) continue;
      std::pair<int64_t, uint64_t> rank{it->second.display.value_or(manifest::Display{}).priority,
                                        record.handed_seq};
      if (rank > best) {
        best = rank;
        chosen = name;
      }
    }
  }
  if (chosen.empty()) return;
  if (auto shown = client_.call({{"cmd", "show"}, {"app", chosen}}); !shown) {
    event(chosen, "error", shown.error().message());
  }
}

void WebviewRuntime::poll() {
  auto list = client_.call({{"cmd", "list"}});
  if (!list) {
    spdlog::debug("webview: list: {}", list.error().message());
    return;
  }
  const std::string shown = (*list)["shown"].is_string() ? (*list)["shown"].get<std::string>() : "";
  const std::string kiosk_error = list->contains("error") && (*list)["error"].is_string()
                                      ? (*list)["error"].get<std::string>()
                                      : "";
  if (kiosk_error != kiosk_error_) {
    const std::string was = std::exchange(kiosk_error_, kiosk_error);
    if (!kiosk_error_.empty()) {
      event("", "error", "the kiosk cannot show apps: " + kiosk_error_);
    } else {
      event("", "recovered", "the kiosk shows apps again (it could not: " + was + ")");
      std::vector<std::string> names;
      {
        std::lock_guard lock(mu_);
        for (auto& [name, record] : records_) {
          record.handed_at = SteadyClock::now();  // a bundle's trial starts now
          names.push_back(name);
        }
      }
      for (const auto& name : names) {
        setStatus(name, [&](WebviewAppStatus& st) {
          if (st.message == was) st.message.clear();
        });
      }
    }
  }
  for (const Json& s : (*list)["apps"]) {
    const std::string name = s.value("app", "");
    if (!kiosk_error_.empty()) {
      {
        std::lock_guard lock(mu_);
        auto it = records_.find(name);
        if (it == records_.end() || it->second.loaded.empty()) continue;
      }
      setStatus(name, [&](WebviewAppStatus& st) {
        st.state = "backoff";
        st.message = kiosk_error_;
        st.shown = false;
      });
      continue;
    }
    uint64_t failures = s.value("failures", uint64_t{0});
    uint64_t new_failures = 0;
    {
      std::lock_guard lock(mu_);
      auto it = records_.find(name);
      if (it == records_.end() || it->second.loaded.empty()) continue;
      if (failures > it->second.kiosk_failures) new_failures = failures - it->second.kiosk_failures;
      it->second.kiosk_failures = failures;
    }
    std::string reason;
    if (s.contains("lastFailure") && s["lastFailure"].is_object()) {
      reason = fmt::format("{}: {}", s["lastFailure"].value("state", ""),
                           s["lastFailure"].value("reason", ""));
    }
    if (new_failures > 0) event(name, "restarted", reason);
    const std::string load_state = s.value("loadState", "");
    const bool beating = s.contains("heartbeatAgeMs") && s["heartbeatAgeMs"].is_number() &&
                         s["heartbeatAgeMs"].get<int64_t>() < options_.ready_heartbeat.count();
    bool became_ready = false;
    setStatus(name, [&](WebviewAppStatus& st) {
      st.restarts += new_failures;
      st.shown = name == shown;
      if (load_state == "loaded" && beating) {
        became_ready = st.state != "running";
        st.state = "running";
        if (st.message.starts_with("the kiosk") || st.message.starts_with("crashed") ||
            st.message.starts_with("hung") || st.message.starts_with("failed")) {
          st.message.clear();
        }
      } else if (load_state == "loading" || load_state == "idle" || load_state == "loaded") {
        if (st.state != "running" || load_state != "loaded") st.state = "starting";
      } else {
        st.state = "backoff";
        st.message = reason;
      }
    });
    if (became_ready) {
      std::lock_guard lock(mu_);
      auto& record = records_[name];
      record.previous.clear();  // the new bundle runs: the previous may go
      record.previous_load = nullptr;
      record.previous_key.clear();
    }
  }
}

void WebviewRuntime::rollBackUnhealthy() {
  struct Rollback {
    std::string app, bad, good, why;
    Json load;
  };
  if (!kiosk_error_.empty()) return;  // no bundle is at fault
  std::vector<Rollback> due;
  {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    for (auto& [name, record] : records_) {
      if (record.previous.empty() || !record.previous_load.is_object() || record.loaded.empty() ||
          record.status.state == "running") {
        continue;
      }
      const uint64_t failed = record.kiosk_failures >= record.failures_at_hand
                                  ? record.kiosk_failures - record.failures_at_hand
                                  : 0;
      std::string why;
      if (failed >= options_.rollback_failures) {
        why = fmt::format("its page failed {} times ({})", failed, record.status.message);
      } else if (now - record.handed_at >= options_.healthy_timeout) {
        why = fmt::format(
            "it did not run within {} s ({})",
            std::chrono::duration_cast<std::chrono::seconds>(options_.healthy_timeout).count(),
            record.status.message.empty() ? record.status.state : record.status.message);
      } else {
        continue;
      }
      due.push_back({name, record.loaded, record.previous, why, record.previous_load});
    }
  }
  for (auto& r : due) {
    if (auto back = client_.call(r.load); !back) {
      event(r.app, "error", back.error().wrap("roll back to {}", shortSha(r.good)).message());
      continue;
    }
    {
      std::lock_guard lock(mu_);
      auto& record = records_[r.app];
      record.loaded = r.good;
      record.loaded_key = record.previous_key;
      record.loaded_load = r.load;
      record.previous.clear();
      record.previous_load = nullptr;
      record.previous_key.clear();
      // Not tried again until the desired state names another bundle.
      record.refused = r.bad;
      record.retry_at = SteadyClock::time_point::max();
      record.handed_seq = ++handed_seq_;
    }
    const std::string message =
        fmt::format("bundle {} rolled back to {}: {}", shortSha(r.bad), shortSha(r.good), r.why);
    event(r.app, "rolledback", message);
    setStatus(r.app, [&](WebviewAppStatus& s) {
      s.state = "starting";
      s.message = message;
      s.bundle = r.good;
    });
  }
}

void WebviewRuntime::prune() {
  std::set<std::string> keep;
  std::shared_ptr<const manifest::NodeState> desired;
  {
    std::lock_guard lock(mu_);
    desired = desired_;
    for (const auto& [name, record] : records_) {
      if (!record.loaded.empty()) keep.insert(record.loaded);
      if (!record.previous.empty()) keep.insert(record.previous);
    }
  }
  if (desired) {
    for (const auto& [name, app] : desired->apps) {
      if (app.bundle) keep.insert(app.bundle->sha256);
    }
  }
  if (keep == pruned_keep_) return;
  if (auto st = store_.prune(keep); !st) {
    spdlog::warn("webview: prune bundles: {}", st.error().message());
    return;
  }
  pruned_keep_ = std::move(keep);
}

}  // namespace fleetlet::webview
