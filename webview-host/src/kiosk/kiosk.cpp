#include "kiosk/kiosk.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <utility>

#include "bundle/app_config.h"
#include "kiosk/startup.h"

namespace fleetlet::webview {
namespace {

// No window manager under a bare X server: fullscreen alone leaves a small window, so the
// window is also sized to the monitor and placed at 0,0, undecorated.
void makeFullscreen(GtkWindow* window) {
  GdkDisplay* display = gdk_display_get_default();
  GdkMonitor* monitor = display != nullptr ? gdk_display_get_primary_monitor(display) : nullptr;
  if (monitor == nullptr && display != nullptr) monitor = gdk_display_get_monitor(display, 0);
  if (monitor != nullptr) {
    GdkRectangle geometry{};
    gdk_monitor_get_geometry(monitor, &geometry);
    gtk_window_set_default_size(window, geometry.width, geometry.height);
    gtk_window_move(window, geometry.x, geometry.y);
  }
  gtk_window_fullscreen(window);
}

void hideCursor(GtkWidget* widget, gpointer /*data*/) {
  GdkWindow* window = gtk_widget_get_window(widget);
  if (window == nullptr) return;
  GdkCursor* blank = gdk_cursor_new_for_display(gdk_window_get_display(window), GDK_BLANK_CURSOR);
  gdk_window_set_cursor(window, blank);
  g_object_unref(blank);
}

}  // namespace

Kiosk::Kiosk(KioskOptions options)
    : options_(std::move(options)),
      instance_(fmt::format("{}-{}", ::getpid(), g_get_real_time())),
      sandbox_error_(options_.sandbox_error),
      sandbox_failing_since_(std::chrono::steady_clock::now()),
      sandbox_recheck_at_(sandbox_failing_since_ + options_.sandbox_recheck_interval) {
  watchdog_.reset(g_timeout_add(
      static_cast<guint>(options_.watchdog_interval.count()),
      [](gpointer self) -> gboolean {
        static_cast<Kiosk*>(self)->tick();
        return G_SOURCE_CONTINUE;
      },
      this));
}

void Kiosk::ensureWindow() {
  if (window_ != nullptr) return;
  window_ = gtk_window_new(GTK_WINDOW_TOPLEVEL);
  gtk_window_set_title(GTK_WINDOW(window_), "fleetlet-webview");
  gtk_window_set_decorated(GTK_WINDOW(window_), FALSE);
  if (options_.fullscreen) {
    makeFullscreen(GTK_WINDOW(window_));
  } else {
    gtk_window_set_default_size(GTK_WINDOW(window_), options_.width, options_.height);
    gtk_window_move(GTK_WINDOW(window_), 0, 0);
  }
  g_signal_connect(window_, "realize", G_CALLBACK(&hideCursor), nullptr);
  GtkCssProvider* css = gtk_css_provider_new();
  gtk_css_provider_load_from_data(css, "window { background-color: black; }", -1, nullptr);
  gtk_style_context_add_provider(gtk_widget_get_style_context(window_), GTK_STYLE_PROVIDER(css),
                                 GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_unref(css);
  stack_ = gtk_stack_new();
  gtk_container_add(GTK_CONTAINER(window_), stack_);
  gtk_widget_show(stack_);
}

Kiosk::~Kiosk() {
  watchdog_.reset();
  for (auto& [name, view] : apps_) gtk_container_remove(GTK_CONTAINER(stack_), view->widget());
  apps_.clear();
  if (window_ != nullptr) gtk_widget_destroy(window_);
}

void Kiosk::showWindow() {
  if (window_shown_) return;
  ensureWindow();
  window_shown_ = true;
  gtk_widget_show(window_);
}

void Kiosk::tick() {
  for (auto& [name, view] : apps_) view->tick();
  maybeRestoreTheme();
  recheckSandbox();
}

void Kiosk::recheckSandbox() {
  if (sandbox_error_.empty() || !options_.sandbox_recheck) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < sandbox_recheck_at_) return;
  sandbox_recheck_at_ = now + options_.sandbox_recheck_interval;
  if (auto why = options_.sandbox_recheck()) {
    if (*why != sandbox_error_) {
      spdlog::error("{}", *why);
      sandbox_error_ = std::move(*why);
      if (notice_ != nullptr) showNotice();
    }
    return;
  }
  spdlog::info("loading the {} app(s) that waited for the sandbox", waiting_.size());
  sandbox_error_.clear();
  if (notice_ != nullptr) {
    gtk_container_remove(GTK_CONTAINER(stack_), notice_);  // drops the stack's reference
    notice_ = nullptr;
  }
  auto waiting = std::move(waiting_);
  waiting_.clear();
  const std::string shown = std::exchange(shown_, std::string());
  for (const auto& [name, spec] : waiting) {
    if (auto ok = load(spec); !ok) spdlog::error("{}", ok.error().message());
  }
  if (!shown.empty() && apps_.contains(shown)) (void)show(shown);
}

void Kiosk::showNotice() {
  ensureWindow();
  if (notice_ == nullptr) {
    notice_ = gtk_label_new(nullptr);
    gtk_label_set_line_wrap(GTK_LABEL(notice_), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(notice_), 72);
    gtk_label_set_justify(GTK_LABEL(notice_), GTK_JUSTIFY_CENTER);
    GtkCssProvider* css = gtk_css_provider_new();
    gtk_css_provider_load_from_data(css, "label { color: white; font-size: 20px; }", -1, nullptr);
    gtk_style_context_add_provider(gtk_widget_get_style_context(notice_), GTK_STYLE_PROVIDER(css),
                                   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(css);
    gtk_stack_add_named(GTK_STACK(stack_), notice_, "fleetlet-sandbox-notice");
    gtk_widget_show(notice_);
  }
  const std::string text = fmt::format("This screen cannot show its apps.\n\n{}", sandbox_error_);
  gtk_label_set_text(GTK_LABEL(notice_), text.c_str());
  gtk_stack_set_visible_child(GTK_STACK(stack_), notice_);
}

Json Kiosk::waitingStatus(const AppSpec& spec) const {
  const double since =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sandbox_failing_since_)
          .count();
  return {{"app", spec.name},
          {"displayName", spec.name},
          {"dir", spec.dir.string()},
          {"shown", shown_ == spec.name},
          {"url", ""},
          {"title", ""},
          {"loadState", toString(LoadState::kFailed)},
          {"heartbeatAgeMs", nullptr},
          {"responsive", false},
          {"failures", 0},
          {"consecutiveFailures", 0},
          {"refusedNavigations", 0},
          {"memoryLimitMiB", spec.memory_limit_mib},
          {"memoryMiB", nullptr},
          {"console", nullptr},
          {"lastFailure",
           {{"state", toString(LoadState::kFailed)},
            {"reason", sandbox_error_},
            {"secondsAgo", since}}}};
}

void Kiosk::maybeRestoreTheme() {
  if (theme_restored_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!theme_due_) {
    for (const auto& [name, view] : apps_) {
      if (view->loadState() == LoadState::kLoaded) {
        theme_due_ = now + std::chrono::seconds(1);
        break;
      }
    }
    return;
  }
  if (now < *theme_due_) return;
  theme_restored_ = true;
  restoreGtkTheme();
}

Status Kiosk::load(const AppSpec& spec) {
  if (!sandbox_error_.empty()) {
    // Refused as it would be with a sandbox; kept until the sandbox works.
    if (auto config = bundle::loadAppConfig(spec.dir); !config) {
      return std::unexpected(
          config.error().wrap("app {}: bundle {}", spec.name, spec.dir.string()));
    }
    waiting_[spec.name] = spec;
    if (shown_.empty()) shown_ = spec.name;
    showNotice();
    showWindow();
    spdlog::warn("[{}] waits for the web process sandbox", spec.name);
    return {};
  }
  if (auto it = apps_.find(spec.name); it != apps_.end()) {
    if (it->second->spec() == spec) return {};
    return it->second->update(spec);
  }
  ViewOptions view_options{.data_dir = options_.state_dir / "apps" / spec.name,
                           .sandbox = options_.sandbox,
                           .recovery = options_.recovery,
                           .heartbeat_interval_ms = options_.heartbeat_interval_ms,
                           .extensions_dir = options_.extensions_dir,
                           .hardware_acceleration = options_.hardware_acceleration,
                           .spare_web_process = options_.spare_web_process};
  FLEETLET_ASSIGN_OR_RETURN(auto view, AppView::create(spec, view_options));
  ensureWindow();
  gtk_stack_add_named(GTK_STACK(stack_), view->widget(), spec.name.c_str());
  gtk_widget_show(view->widget());
  showWindow();  // after the view started loading: its web process starts meanwhile
  spdlog::info("[{}] loaded bundle {}", spec.name, spec.dir.string());
  apps_.emplace(spec.name, std::move(view));
  if (shown_.empty()) return show(spec.name);
  // gtk_stack_add shows the first child added; keep the shown app on top.
  gtk_stack_set_visible_child_name(GTK_STACK(stack_), shown_.c_str());
  return {};
}

Status Kiosk::unload(const std::string& app) {
  if (waiting_.erase(app) > 0) {
    if (shown_ == app) shown_ = waiting_.empty() ? std::string() : waiting_.begin()->first;
    return {};
  }
  auto it = apps_.find(app);
  if (it == apps_.end()) return fail(ErrorCode::kNotFound, "no app \"{}\"", app);
  gtk_container_remove(GTK_CONTAINER(stack_), it->second->widget());
  apps_.erase(it);
  if (shown_ == app) {
    shown_.clear();
    if (!apps_.empty()) return show(apps_.begin()->first);
  }
  return {};
}

Status Kiosk::show(const std::string& app) {
  if (waiting_.contains(app)) {
    shown_ = app;
    return {};
  }
  auto it = apps_.find(app);
  if (it == apps_.end()) return fail(ErrorCode::kNotFound, "no app \"{}\"", app);
  for (auto& [name, view] : apps_) view->setShown(name == app);
  gtk_stack_set_visible_child_name(GTK_STACK(stack_), app.c_str());
  if (shown_ != app) spdlog::info("[{}] shown", app);
  shown_ = app;
  return {};
}

Status Kiosk::reload(const std::string& app) {
  if (waiting_.contains(app)) return {};  // loaded once the sandbox works
  auto it = apps_.find(app);
  if (it == apps_.end()) return fail(ErrorCode::kNotFound, "no app \"{}\"", app);
  it->second->reload("requested");
  return {};
}

Result<Json> Kiosk::status(const std::string& app) const {
  if (auto it = waiting_.find(app); it != waiting_.end()) return waitingStatus(it->second);
  auto it = apps_.find(app);
  if (it == apps_.end()) return fail(ErrorCode::kNotFound, "no app \"{}\"", app);
  return it->second->status();
}

Json Kiosk::list() const {
  Json apps = Json::array();
  for (const auto& [name, view] : apps_) apps.push_back(view->status());
  for (const auto& [name, spec] : waiting_) apps.push_back(waitingStatus(spec));
  return {{"instance", instance_},
          {"pid", ::getpid()},
          {"error", sandbox_error_.empty() ? Json(nullptr) : Json(sandbox_error_)},
          {"shown", shown_.empty() ? Json(nullptr) : Json(shown_)},
          {"apps", apps}};
}

void Kiosk::screenshot(const std::string& app, std::function<void(Result<std::string>)> done) {
  const std::string name = app.empty() ? shown_ : app;
  if (waiting_.contains(name)) {
    if (notice_ == nullptr || !gtk_widget_get_realized(notice_)) {
      done(fail(ErrorCode::kUnavailable, "app {} is not shown: {}", name, sandbox_error_));
      return;
    }
    done(drawPng(notice_));
    return;
  }
  auto it = apps_.find(name);
  if (it == apps_.end()) {
    done(name.empty() ? fail(ErrorCode::kNotFound, "no app is shown")
                      : fail(ErrorCode::kNotFound, "no app \"{}\"", name));
    return;
  }
  it->second->snapshot(std::move(done));
}

void Kiosk::handle(const ControlRequest& request, std::function<void(std::string)> answer) {
  const Json ok = {{"ok", true}};
  auto reply = [&](const Status& status) {
    answer(status ? ok.dump() : controlError(status.error()));
  };
  const std::string& cmd = request.command;
  if (cmd == "list") {
    Json body = list();
    body["ok"] = true;
    answer(body.dump());
  } else if (cmd == "status") {
    auto s = status(request.app);
    answer(s ? Json{{"ok", true}, {"status", *s}}.dump() : controlError(s.error()));
  } else if (cmd == "show") {
    reply(show(request.app));
  } else if (cmd == "reload") {
    reply(reload(request.app));
  } else if (cmd == "load") {
    reply(load(AppSpec{.name = request.app,
                       .dir = request.dir,
                       .services = request.services,
                       .memory_limit_mib = request.memory_limit_mib,
                       .console = request.console}));
  } else if (cmd == "unload") {
    reply(unload(request.app));
  } else if (cmd == "screenshot") {
    const std::string name = request.app.empty() ? shown_ : request.app;
    screenshot(name, [answer, name](Result<std::string> png) {
      if (!png) {
        answer(controlError(png.error()));
        return;
      }
      gchar* encoded = g_base64_encode(reinterpret_cast<const guchar*>(png->data()), png->size());
      answer(Json{{"ok", true}, {"app", name}, {"png", encoded}}.dump());
      g_free(encoded);
    });
  } else {
    answer(controlError(Error(ErrorCode::kInvalidArgument, "unknown command " + cmd)));
  }
}

}  // namespace fleetlet::webview
