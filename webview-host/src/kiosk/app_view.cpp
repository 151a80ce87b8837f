#include "kiosk/app_view.h"

#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <linux/openat2.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "http/client.h"
#include "os/unique_fd.h"

namespace fleetlet::webview {
namespace {

namespace fs = std::filesystem;

SteadyTime now() { return std::chrono::steady_clock::now(); }

// Reads a file of the bundle. openat2 with RESOLVE_BENEATH refuses any path that resolves
// outside `dir` (symlinks included, though bundles have none).
Result<std::string> readBundleFile(const fs::path& dir, const std::string& relative) {
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return failErrno(errno, "open {}", dir.string());
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(
      static_cast<int>(::syscall(SYS_openat2, root.get(), relative.c_str(), &how, sizeof(how))));
  if (!fd) return failErrno(errno, "open {}", relative);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failErrno(errno, "stat {}", relative);
  if (!S_ISREG(st.st_mode)) return fail(ErrorCode::kNotFound, "{} is not a file", relative);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failErrno(errno, "read {}", relative);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

// Answers `request` with `stream` as the body (`size` bytes, -1: until its end).
void respondWith(WebKitURISchemeRequest* request, int status, std::string_view content_type,
                 GInputStream* stream, gint64 size) {
  GObjectPtr<WebKitURISchemeResponse> response(webkit_uri_scheme_response_new(stream, size));
  webkit_uri_scheme_response_set_status(response.get(), static_cast<guint>(status), nullptr);
  webkit_uri_scheme_response_set_content_type(response.get(), std::string(content_type).c_str());
  SoupMessageHeaders* headers = soup_message_headers_new(SOUP_MESSAGE_HEADERS_RESPONSE);
  soup_message_headers_append(headers, "Cache-Control", "no-cache");
  soup_message_headers_append(headers, "X-Content-Type-Options", "nosniff");
  webkit_uri_scheme_response_set_http_headers(response.get(), headers);  // takes ownership
  webkit_uri_scheme_request_finish_with_response(request, response.get());
}

void respond(WebKitURISchemeRequest* request, int status, std::string_view content_type,
             std::string body) {
  auto size = static_cast<gint64>(body.size());
  auto owned = std::make_unique<std::string>(std::move(body));
  const char* data = owned->data();
  const size_t length = owned->size();
  GBytes* bytes = g_bytes_new_with_free_func(
      data, length,
      [](gpointer p) { std::unique_ptr<std::string> freed(static_cast<std::string*>(p)); },
      owned.release());
  GObjectPtr<GInputStream> stream(g_memory_input_stream_new_from_bytes(bytes));
  g_bytes_unref(bytes);
  respondWith(request, status, content_type, stream.get(), size);
}

// Writes all of `chunk` to the page's end of a streamed answer; false when the page closed it.
bool writeAll(int fd, std::string_view chunk) {
  while (!chunk.empty()) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    chunk.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string_view reasonOf(WebKitWebProcessTerminationReason reason) {
  switch (reason) {
    case WEBKIT_WEB_PROCESS_CRASHED:
      return "web process crashed";
    case WEBKIT_WEB_PROCESS_EXCEEDED_MEMORY_LIMIT:
      return "web process exceeded the memory limit";
    case WEBKIT_WEB_PROCESS_TERMINATED_BY_API:
      return "web process terminated";
  }
  return "web process ended";
}

std::string jsString(WebKitJavascriptResult* result) {
  JSCValue* value = webkit_javascript_result_get_js_value(result);
  if (!jsc_value_is_string(value)) return {};
  gchar* text = jsc_value_to_string(value);
  std::string out = text != nullptr ? text : "";
  g_free(text);
  return out;
}

}  // namespace

Result<std::unique_ptr<AppView>> AppView::create(const AppSpec& spec, const ViewOptions& options) {
  auto config = bundle::loadAppConfig(spec.dir);
  if (!config)
    return std::unexpected(config.error().wrap("app {}: bundle {}", spec.name, spec.dir.string()));
  std::error_code ec;
  for (const char* sub : {"data", "cache"}) {
    fs::create_directories(options.data_dir / sub, ec);
    if (ec) {
      return fail(ErrorCode::kInternal, "app {}: create {}: {}", spec.name,
                  (options.data_dir / sub).string(), ec.message());
    }
  }
  std::unique_ptr<AppView> view(new AppView(spec, options, std::move(*config)));
  view->build();
  view->loadStartPage();
  return view;
}

AppView::AppView(AppSpec spec, ViewOptions options, bundle::AppConfig config)
    : spec_(std::move(spec)),
      options_(std::move(options)),
      config_(std::move(config)),
      recovery_(options_.recovery) {
  if (!spec_.console.empty()) console_ = std::make_unique<ConsoleSink>(spec_.console);
}

AppView::~AppView() {
  calls_stop_.request_stop();
  if (memory_cancel_) g_cancellable_cancel(memory_cancel_.get());
  reload_timer_.reset();
  spare_timer_.reset();
  g_signal_handlers_disconnect_by_data(view_, this);
  g_signal_handlers_disconnect_by_data(content_.get(), this);
  g_signal_handlers_disconnect_by_data(context_.get(), this);
  if (spare_ != nullptr) {
    g_signal_handlers_disconnect_by_data(spare_, this);
    gtk_widget_destroy(GTK_WIDGET(spare_));
    g_object_unref(spare_);
  }
  gtk_widget_destroy(box_);  // and view_ in it
  g_object_unref(view_);
  g_object_unref(box_);
}

void AppView::build() {
  const std::string data_dir = (options_.data_dir / "data").string();
  const std::string cache_dir = (options_.data_dir / "cache").string();
  GObjectPtr<WebKitWebsiteDataManager> data(webkit_website_data_manager_new(
      "base-data-directory", data_dir.c_str(), "base-cache-directory", cache_dir.c_str(), nullptr));
  if (spec_.memory_limit_mib > 0) {
    // WebKit frees caches from half the limit on and ends the web process at the limit
    // (web-process-terminated: EXCEEDED_MEMORY_LIMIT), checked every second.
    WebKitMemoryPressureSettings* memory = webkit_memory_pressure_settings_new();
    webkit_memory_pressure_settings_set_memory_limit(memory, spec_.memory_limit_mib);
    webkit_memory_pressure_settings_set_conservative_threshold(memory, 0.5);
    webkit_memory_pressure_settings_set_strict_threshold(memory, 0.8);
    webkit_memory_pressure_settings_set_kill_threshold(memory, 1.0);
    webkit_memory_pressure_settings_set_poll_interval(memory, 1.0);
    context_.reset(
        WEBKIT_WEB_CONTEXT(g_object_new(WEBKIT_TYPE_WEB_CONTEXT, "website-data-manager", data.get(),
                                        "memory-pressure-settings", memory, nullptr)));
    webkit_memory_pressure_settings_free(memory);
  } else {
    context_.reset(webkit_web_context_new_with_website_data_manager(data.get()));
  }
  webkit_web_context_set_sandbox_enabled(context_.get(), options_.sandbox ? TRUE : FALSE);
  if (!options_.extensions_dir.empty()) {
    webkit_web_context_set_web_extensions_directory(context_.get(),
                                                    options_.extensions_dir.c_str());
  }
  memory_cancel_.reset(g_cancellable_new());
  webkit_web_context_set_cache_model(context_.get(), WEBKIT_CACHE_MODEL_DOCUMENT_VIEWER);
  webkit_web_context_register_uri_scheme(context_.get(), std::string(kAppScheme).c_str(),
                                         &AppView::onSchemeRequest, this, nullptr);
  WebKitSecurityManager* security = webkit_web_context_get_security_manager(context_.get());
  webkit_security_manager_register_uri_scheme_as_secure(security, "app");
  webkit_security_manager_register_uri_scheme_as_cors_enabled(security, "app");
  g_signal_connect(context_.get(), "download-started", G_CALLBACK(&AppView::onDownload), this);

  content_.reset(webkit_user_content_manager_new());
  webkit_user_content_manager_register_script_message_handler(content_.get(), "fleetletHeartbeat");
  webkit_user_content_manager_register_script_message_handler(content_.get(), "fleetletConsole");
  g_signal_connect(content_.get(), "script-message-received::fleetletHeartbeat",
                   G_CALLBACK(&AppView::onHeartbeat), this);
  g_signal_connect(content_.get(), "script-message-received::fleetletConsole",
                   G_CALLBACK(&AppView::onConsole), this);
  installScripts();

  WebKitSettings* settings = webkit_settings_new_with_settings(
      "enable-developer-extras", FALSE, "javascript-can-open-windows-automatically", FALSE,
      "allow-file-access-from-file-urls", FALSE, "allow-universal-access-from-file-urls", FALSE,
      "allow-modal-dialogs", FALSE, nullptr);
  if (!options_.hardware_acceleration) {
    webkit_settings_set_hardware_acceleration_policy(settings,
                                                     WEBKIT_HARDWARE_ACCELERATION_POLICY_NEVER);
  }
  settings_.reset(settings);
  box_ = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  g_object_ref_sink(box_);
  gtk_widget_show(box_);
  view_ = newView();
  connectView();
  gtk_box_pack_start(GTK_BOX(box_), GTK_WIDGET(view_), TRUE, TRUE, 0);
  gtk_widget_show(GTK_WIDGET(view_));
}

WebKitWebView* AppView::newView() {
  auto* view = WEBKIT_WEB_VIEW(g_object_new(WEBKIT_TYPE_WEB_VIEW, "web-context", context_.get(),
                                            "user-content-manager", content_.get(), "settings",
                                            settings_.get(), nullptr));
  g_object_ref_sink(view);
  return view;
}

void AppView::connectView() {
  g_signal_connect(view_, "decide-policy", G_CALLBACK(&AppView::onDecidePolicy), this);
  g_signal_connect(view_, "create", G_CALLBACK(&AppView::onCreate), this);
  g_signal_connect(view_, "load-changed", G_CALLBACK(&AppView::onLoadChanged), this);
  g_signal_connect(view_, "load-failed", G_CALLBACK(&AppView::onLoadFailed), this);
  g_signal_connect(view_, "web-process-terminated", G_CALLBACK(&AppView::onTerminated), this);
  g_signal_connect(view_, "notify::is-web-process-responsive", G_CALLBACK(&AppView::onResponsive),
                   this);
}

namespace {
// Destroys a view we hold a reference on, from the main loop: not inside its own signal.
void destroyLater(WebKitWebView* view) {
  g_idle_add(
      [](gpointer v) -> gboolean {
        gtk_widget_destroy(GTK_WIDGET(v));
        g_object_unref(v);
        return G_SOURCE_REMOVE;
      },
      view);
}
}  // namespace

void AppView::scheduleSpare() {
  if (!options_.spare_web_process || spare_ != nullptr || spare_timer_.active()) return;
  after(spare_timer_, options_.spare_delay, &AppView::makeSpare);
}

void AppView::makeSpare() {
  if (spare_ != nullptr) return;
  spare_ = newView();
  g_signal_connect(spare_, "web-process-terminated", G_CALLBACK(&AppView::onSpareTerminated), this);
  // A blank page starts the spare's web process now; the start page replaces it when the
  // spare takes over, in the same process (it never committed a page of another site).
  webkit_web_view_load_uri(spare_, "about:blank");
}

void AppView::onSpareTerminated(WebKitWebView* view, WebKitWebProcessTerminationReason /*reason*/,
                                gpointer data) {
  auto* self = static_cast<AppView*>(data);
  if (view != self->spare_) return;
  g_signal_handlers_disconnect_by_data(view, self);
  self->spare_ = nullptr;
  destroyLater(view);
  self->scheduleSpare();
}

bool AppView::swapInSpare() {
  if (spare_ == nullptr) return false;
  WebKitWebView* dead = view_;
  g_signal_handlers_disconnect_by_data(dead, this);
  gtk_container_remove(GTK_CONTAINER(box_), GTK_WIDGET(dead));  // our own reference stays
  g_signal_handlers_disconnect_by_data(spare_, this);
  view_ = spare_;
  spare_ = nullptr;
  connectView();
  gtk_box_pack_start(GTK_BOX(box_), GTK_WIDGET(view_), TRUE, TRUE, 0);
  gtk_widget_show(GTK_WIDGET(view_));
  destroyLater(dead);
  return true;
}

void AppView::installScripts() {
  webkit_user_content_manager_remove_all_scripts(content_.get());
  webkit_user_content_manager_remove_all_style_sheets(content_.get());
  // The page reaches each of its services through its own origin (forwardToService), so
  // the service sees the app's own listener: its identity.
  std::map<std::string, std::string> uris;
  for (const auto& [service, socket] : spec_.services) {
    uris[service] = appOrigin(spec_.name) + std::string(kServicePrefix) + service;
  }
  AxInfo info{.app = spec_.name,
              .display_name = config_.display_name,
              .settings = config_.settings,
              .services = std::move(uris),
              .heartbeat_interval_ms = options_.heartbeat_interval_ms};
  const std::string source = axScript(info);
  WebKitUserScript* script =
      webkit_user_script_new(source.c_str(), WEBKIT_USER_CONTENT_INJECT_TOP_FRAME,
                             WEBKIT_USER_SCRIPT_INJECT_AT_DOCUMENT_START, nullptr, nullptr);
  webkit_user_content_manager_add_script(content_.get(), script);
  webkit_user_script_unref(script);
  WebKitUserStyleSheet* sheet = webkit_user_style_sheet_new(
      "* { cursor: none !important; }", WEBKIT_USER_CONTENT_INJECT_ALL_FRAMES,
      WEBKIT_USER_STYLE_LEVEL_USER, nullptr, nullptr);
  webkit_user_content_manager_add_style_sheet(content_.get(), sheet);
  webkit_user_style_sheet_unref(sheet);
}

std::string AppView::startUri() const { return appOrigin(spec_.name) + "/" + config_.start_page; }

void AppView::loadStartPage() {
  terminating_for_hang_ = false;
  // "loading" from now on, not from WebKit's later load-changed: a status read in between
  // must not report the previous page as loaded.
  recovery_.loadStarted(now());
  webkit_web_view_load_uri(view_, startUri().c_str());
}

Status AppView::update(const AppSpec& spec) {
  auto config = bundle::loadAppConfig(spec.dir);
  if (!config)
    return std::unexpected(config.error().wrap("app {}: bundle {}", spec.name, spec.dir.string()));
  if (spec.console != spec_.console) {
    console_ = spec.console.empty() ? nullptr : std::make_unique<ConsoleSink>(spec.console);
  }
  spec_ = spec;
  config_ = std::move(*config);
  installScripts();
  spdlog::info("[{}] bundle {}: loading {}", spec_.name, spec_.dir.filename().string(), startUri());
  reload_timer_.reset();
  loadStartPage();
  return {};
}

void AppView::reload(std::string_view why) {
  spdlog::info("[{}] reload ({})", spec_.name, why);
  reload_timer_.reset();
  loadStartPage();
}

void AppView::setShown(bool shown) {
  shown_ = shown;
  if (shown) recovery_.watchFrom(now());
}

void AppView::sampleMemory() {
  if (memory_pending_ || options_.extensions_dir.empty()) return;
  memory_pending_ = true;
  webkit_web_view_send_message_to_page(view_, webkit_user_message_new("fleetlet.memory", nullptr),
                                       memory_cancel_.get(), &AppView::onMemoryReply, this);
}

void AppView::onMemoryReply(GObject* view, GAsyncResult* result, gpointer data) {
  GError* error = nullptr;
  WebKitUserMessage* reply =
      webkit_web_view_send_message_to_page_finish(WEBKIT_WEB_VIEW(view), result, &error);
  if (error != nullptr) {
    const bool cancelled = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_error_free(error);
    if (cancelled) return;  // the AppView is gone
    auto* self = static_cast<AppView*>(data);
    self->memory_pending_ = false;
    self->memory_bytes_.reset();  // no web process, or no extension in it
    return;
  }
  auto* self = static_cast<AppView*>(data);
  self->memory_pending_ = false;
  GVariant* parameters = webkit_user_message_get_parameters(reply);
  if (parameters != nullptr && g_variant_is_of_type(parameters, G_VARIANT_TYPE_UINT64)) {
    self->memory_bytes_ = g_variant_get_uint64(parameters);
  }
  g_object_unref(reply);
}

void AppView::tick() {
  sampleMemory();
  if (!shown_ || terminating_for_hang_ || reload_timer_.active()) return;
  const auto t = now();
  if (!recovery_.hung(t)) return;
  auto age = recovery_.heartbeatAge(t);
  std::string reason =
      webkit_web_view_get_is_web_process_responsive(view_)
          ? fmt::format("no heartbeat for {} ms",
                        age ? age->count() : options_.recovery.hang_timeout.count())
          : std::string("web process unresponsive");
  terminating_for_hang_ = true;
  recover(LoadState::kHung, reason);
  webkit_web_view_terminate_web_process(view_);
}

void AppView::recover(LoadState state, std::string reason) {
  Millis delay = recovery_.failed(state, reason, now());
  spdlog::warn("[{}] {}: {}; reloading in {} ms (failure {}, {} in a row)", spec_.name,
               toString(state), reason, delay.count(), recovery_.failures(),
               recovery_.consecutiveFailures());
  scheduleReload(delay);
}

void AppView::scheduleReload(Millis delay) { after(reload_timer_, delay, &AppView::loadStartPage); }

void AppView::after(SourceId& timer, Millis delay, void (AppView::*action)()) {
  struct Job {
    AppView* self;
    SourceId* timer;
    void (AppView::*action)();
  };
  // The job is freed with the source (fired or removed with the timer).
  timer.reset(g_timeout_add_full(
      G_PRIORITY_DEFAULT, static_cast<guint>(delay.count()),
      [](gpointer data) -> gboolean {
        auto* job = static_cast<Job*>(data);
        job->timer->released();
        (job->self->*job->action)();
        return G_SOURCE_REMOVE;
      },
      std::make_unique<Job>(Job{this, &timer, action}).release(),
      [](gpointer data) { std::unique_ptr<Job> owned(static_cast<Job*>(data)); }));
}

Json AppView::status() const {
  const auto t = now();
  auto age = recovery_.heartbeatAge(t);
  const char* uri = webkit_web_view_get_uri(view_);
  const char* title = webkit_web_view_get_title(view_);
  Json last = nullptr;
  if (auto at = recovery_.lastFailureAt()) {
    last = {{"state", toString(recovery_.lastFailure())},
            {"reason", recovery_.lastFailureReason()},
            {"secondsAgo", std::chrono::duration<double>(t - *at).count()}};
  }
  return {
      {"app", spec_.name},
      {"displayName", config_.display_name.empty() ? spec_.name : config_.display_name},
      {"dir", spec_.dir.string()},
      {"shown", shown_},
      {"url", uri != nullptr ? uri : ""},
      {"title", title != nullptr ? title : ""},
      {"loadState", toString(recovery_.state())},
      {"heartbeatAgeMs", age ? Json(age->count()) : Json(nullptr)},
      {"responsive", webkit_web_view_get_is_web_process_responsive(view_) != FALSE},
      {"failures", recovery_.failures()},
      {"consecutiveFailures", recovery_.consecutiveFailures()},
      {"refusedNavigations", refused_navigations_},
      {"memoryLimitMiB", spec_.memory_limit_mib},
      {"memoryMiB", memory_bytes_ ? Json(static_cast<double>(*memory_bytes_) / (1024.0 * 1024.0))
                                  : Json(nullptr)},
      {"console", console_ ? Json{{"sent", console_->sent()}, {"dropped", console_->dropped()}}
                           : Json(nullptr)},
      {"lastFailure", last}};
}

std::string encodePng(cairo_surface_t* surface) {
  std::string png;
  cairo_surface_write_to_png_stream(
      surface,
      [](void* closure, const unsigned char* bytes, unsigned int length) {
        static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(bytes), length);
        return CAIRO_STATUS_SUCCESS;
      },
      &png);
  return png;
}

Result<std::string> drawPng(GtkWidget* widget) {
  const int width = gtk_widget_get_allocated_width(widget);
  const int height = gtk_widget_get_allocated_height(widget);
  if (width <= 1 || height <= 1) return fail(ErrorCode::kUnavailable, "not drawn yet");
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_paint(cr);
  gtk_widget_draw(widget, cr);
  cairo_destroy(cr);
  std::string png = encodePng(surface);
  cairo_surface_destroy(surface);
  return png;
}

void AppView::snapshot(std::function<void(Result<std::string>)> done) {
  using Done = std::function<void(Result<std::string>)>;
  webkit_web_view_get_snapshot(
      view_, WEBKIT_SNAPSHOT_REGION_VISIBLE, WEBKIT_SNAPSHOT_OPTIONS_NONE, nullptr,
      [](GObject* source, GAsyncResult* result, gpointer data) {
        std::unique_ptr<Done> job(static_cast<Done*>(data));
        GError* error = nullptr;
        cairo_surface_t* surface =
            webkit_web_view_get_snapshot_finish(WEBKIT_WEB_VIEW(source), result, &error);
        if (surface == nullptr) {
          std::string message = error != nullptr ? error->message : "no surface";
          if (error != nullptr) g_error_free(error);
          (*job)(fail(ErrorCode::kUnavailable, "snapshot: {}", message));
          return;
        }
        std::string png = encodePng(surface);
        cairo_surface_destroy(surface);
        (*job)(std::move(png));
      },
      std::make_unique<Done>(std::move(done)).release());
}

void AppView::onSchemeRequest(WebKitURISchemeRequest* request, gpointer data) {
  auto* self = static_cast<AppView*>(data);
  const char* uri = webkit_uri_scheme_request_get_uri(request);
  auto origin = originOf(uri != nullptr ? uri : "");
  if (!origin || *origin != appOrigin(self->spec_.name)) {
    spdlog::warn("[{}] refused request for {}: another app's origin", self->spec_.name,
                 uri != nullptr ? uri : "");
    respond(request, 403, "text/plain; charset=utf-8", "another app's origin\n");
    return;
  }
  const char* path = webkit_uri_scheme_request_get_path(request);
  std::string path_and_query = path != nullptr ? path : "/";
  if (const char* query = std::strchr(uri, '?')) path_and_query += query;
  auto route = serviceRouteOf(path_and_query);
  if (!route) {
    respond(request, 400, "text/plain; charset=utf-8", route.error().message() + "\n");
    return;
  }
  if (const std::optional<ServiceRoute>& service = *route; service.has_value()) {
    self->forwardToService(request, *service);
    return;
  }
  auto relative = bundlePathOf(path != nullptr ? path : "/");
  if (!relative) {
    respond(request, 400, "text/plain; charset=utf-8", relative.error().message() + "\n");
    return;
  }
  auto body = readBundleFile(self->spec_.dir, *relative);
  if (!body && body.error().code() == ErrorCode::kNotFound && isClientRoute(*relative)) {
    // A client-side route of the SPA (history API): answer with the start page.
    relative = self->config_.start_page;
    body = readBundleFile(self->spec_.dir, *relative);
  }
  if (!body) {
    const int status = body.error().code() == ErrorCode::kNotFound ? 404 : 403;
    respond(request, status, "text/plain; charset=utf-8", body.error().message() + "\n");
    return;
  }
  respond(request, 200, contentTypeOf(*relative), std::move(*body));
}

void AppView::forwardToService(WebKitURISchemeRequest* request, const ServiceRoute& route) {
  auto it = spec_.services.find(route.service);
  if (it == spec_.services.end()) {
    respond(request, 404, "text/plain; charset=utf-8",
            fmt::format("app {} has no service {}\n", spec_.name, route.service));
    return;
  }
  auto job = std::make_unique<ServiceCall>();
  job->request = retain(request);
  job->socket = it->second;
  job->call.method = webkit_uri_scheme_request_get_http_method(request) != nullptr
                         ? webkit_uri_scheme_request_get_http_method(request)
                         : "GET";
  job->call.url = "http://localhost" + route.path;
  job->call.follow_redirects = false;
  if (SoupMessageHeaders* headers = webkit_uri_scheme_request_get_http_headers(request)) {
    for (const char* name : {"Content-Type", "Accept"}) {
      if (const char* value = soup_message_headers_get_one(headers, name)) {
        job->call.headers.add(name, value);
      }
    }
  }
  if (GInputStream* body = webkit_uri_scheme_request_get_http_body(request)) {
    std::string data(kMaxServiceBodyBytes + 1, '\0');
    gsize read = 0;
    g_input_stream_read_all(body, data.data(), data.size(), &read, nullptr, nullptr);
    g_object_unref(body);
    if (read > kMaxServiceBodyBytes) {
      respond(request, 413, "text/plain; charset=utf-8",
              fmt::format("request body over {} bytes\n", kMaxServiceBodyBytes));
      return;
    }
    data.resize(read);
    job->call.body = std::move(data);
  }
  // The answer streams, so that a long-lived answer (an event subscription) reaches the page
  // as it is written: the call runs on a thread of its own; once a 2xx answer's head is known,
  // the main loop answers the page with the status, content type and one end of a socket
  // pair as the body, and each chunk of the service's body is written into the other end as
  // it arrives. The page's end closing (the page stopped reading, reloaded, went away) fails
  // the next write and ends the call, and so does WebKit letting go of the page's end (a
  // quiet subscription has no next write); so does the view's end (calls_stop_). Other answers
  // (errors, an empty 2xx body) go back whole. Connecting may take 5 s; a streamed answer
  // has no time limit.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    respond(request, 500, "text/plain; charset=utf-8",
            fmt::format("socketpair: {}\n", std::strerror(errno)));
    return;
  }
  UniqueFd page_end(pair[0]);
  UniqueFd service_end(pair[1]);
  std::thread([job = std::move(job), page_end = std::move(page_end),
               service_end = std::move(service_end), stop = calls_stop_.get_token(),
               app = spec_.name, route_path = route.path]() mutable {
    auto call_stop = std::make_shared<std::stop_source>();
    std::stop_callback view_gone(stop, [call_stop] { call_stop->request_stop(); });
    http::Client client({.unix_socket = job->socket,
                         .connect_timeout = std::chrono::seconds(5),
                         .stop = call_stop->get_token()});
    bool started = false;
    auto answer = client.stream(
        job->call, [&](std::string_view chunk) { return writeAll(service_end.get(), chunk); },
        [&](const http::ClientResponse& head) {
          started = true;
          auto head_job = std::make_unique<ServiceCall>();
          head_job->request = std::move(job->request);  // released on the main loop only
          head_job->status = static_cast<int>(head.status);
          head_job->content_type =
              head.headers.find("Content-Type").value_or("application/octet-stream");
          head_job->body_fd = page_end.release();
          head_job->call_stop = call_stop;
          g_idle_add(
              [](gpointer data) -> gboolean {
                std::unique_ptr<ServiceCall> done(static_cast<ServiceCall*>(data));
                GObjectPtr<GInputStream> body(g_unix_input_stream_new(done->body_fd, TRUE));
                // WebKit lets go of the body when the page stopped reading (or read it all):
                // the call ends then (within a second: curl's progress check), not at the
                // next chunk, which a quiet subscription may never send.
                g_object_weak_ref(
                    G_OBJECT(body.get()),
                    [](gpointer source, GObject* /*gone*/) {
                      std::unique_ptr<std::shared_ptr<std::stop_source>> owned(
                          static_cast<std::shared_ptr<std::stop_source>*>(source));
                      (*owned)->request_stop();
                    },
                    std::make_unique<std::shared_ptr<std::stop_source>>(done->call_stop).release());
                respondWith(done->request.get(), done->status, done->content_type, body.get(), -1);
                return G_SOURCE_REMOVE;
              },
              head_job.release());
        });
    service_end.reset();  // the end of the streamed body
    if (started) {
      // An SPA that polls ends a streamed answer every few seconds: only one that ended early
      // (the page let go, the service failed) is worth a line at the default level.
      if (answer) {
        spdlog::debug("[{}] streamed answer of {} ended: complete", app, route_path);
      } else {
        spdlog::info("[{}] streamed answer of {} ended: {}", app, route_path,
                     answer.error().message());
      }
      return;
    }
    if (answer) {
      job->status = static_cast<int>(answer->status);
      job->content_type = answer->headers.find("Content-Type").value_or("application/octet-stream");
      job->body = std::move(answer->body);
    } else {
      job->status = 502;
      job->content_type = "text/plain; charset=utf-8";
      job->body = answer.error().message() + "\n";
    }
    g_idle_add(
        [](gpointer data) -> gboolean {
          std::unique_ptr<ServiceCall> done(static_cast<ServiceCall*>(data));
          respond(done->request.get(), done->status, done->content_type, std::move(done->body));
          return G_SOURCE_REMOVE;
        },
        job.release());
  }).detach();
}

gboolean AppView::onDecidePolicy(WebKitWebView* /*view*/, WebKitPolicyDecision* decision,
                                 WebKitPolicyDecisionType type, gpointer data) {
  auto* self = static_cast<AppView*>(data);
  switch (type) {
    case WEBKIT_POLICY_DECISION_TYPE_NAVIGATION_ACTION: {
      WebKitNavigationAction* action = webkit_navigation_policy_decision_get_navigation_action(
          WEBKIT_NAVIGATION_POLICY_DECISION(decision));
      const char* uri = webkit_uri_request_get_uri(webkit_navigation_action_get_request(action));
      NavigationRules rules{self->spec_.name, self->config_.allowed_origins};
      if (uri != nullptr && navigationAllowed(rules, uri)) return FALSE;
      ++self->refused_navigations_;
      spdlog::warn("[{}] refused navigation to {}", self->spec_.name, uri != nullptr ? uri : "");
      webkit_policy_decision_ignore(decision);
      return TRUE;
    }
    case WEBKIT_POLICY_DECISION_TYPE_NEW_WINDOW_ACTION:
      ++self->refused_navigations_;
      spdlog::warn("[{}] refused a new window", self->spec_.name);
      webkit_policy_decision_ignore(decision);
      return TRUE;
    case WEBKIT_POLICY_DECISION_TYPE_RESPONSE:
      if (webkit_response_policy_decision_is_mime_type_supported(
              WEBKIT_RESPONSE_POLICY_DECISION(decision))) {
        return FALSE;
      }
      ++self->refused_navigations_;
      spdlog::warn("[{}] refused a download", self->spec_.name);
      webkit_policy_decision_ignore(decision);
      return TRUE;
  }
  return FALSE;
}

GtkWidget* AppView::onCreate(WebKitWebView* /*view*/, WebKitNavigationAction* action,
                             gpointer data) {
  auto* self = static_cast<AppView*>(data);
  ++self->refused_navigations_;
  const char* uri = webkit_uri_request_get_uri(webkit_navigation_action_get_request(action));
  spdlog::warn("[{}] refused window.open({})", self->spec_.name, uri != nullptr ? uri : "");
  return nullptr;
}

void AppView::onLoadChanged(WebKitWebView* view, WebKitLoadEvent event, gpointer data) {
  auto* self = static_cast<AppView*>(data);
  // A spare view that took over may still finish its blank page: not the app's page.
  const char* uri = webkit_web_view_get_uri(view);
  if (uri != nullptr && std::string_view(uri) == "about:blank") return;
  if (event == WEBKIT_LOAD_STARTED) {
    self->recovery_.loadStarted(now());
  } else if (event == WEBKIT_LOAD_FINISHED) {
    if (self->recovery_.state() == LoadState::kLoading) {
      self->recovery_.loadFinished(now());
      spdlog::info("[{}] loaded {}", self->spec_.name, webkit_web_view_get_uri(self->view_));
      self->scheduleSpare();  // after the page, not competing with it
    }
  }
}

gboolean AppView::onLoadFailed(WebKitWebView* /*view*/, WebKitLoadEvent /*event*/, gchar* uri,
                               GError* error, gpointer data) {
  auto* self = static_cast<AppView*>(data);
  // A navigation we refused or replaced is no failure of the page on screen.
  if (g_error_matches(error, WEBKIT_NETWORK_ERROR, WEBKIT_NETWORK_ERROR_CANCELLED) ||
      error->domain == WEBKIT_POLICY_ERROR) {
    return FALSE;
  }
  if (self->terminating_for_hang_ || self->reload_timer_.active()) return TRUE;
  self->recover(LoadState::kFailed,
                fmt::format("loading {} failed: {}", uri != nullptr ? uri : "", error->message));
  return TRUE;
}

void AppView::onTerminated(WebKitWebView* /*view*/, WebKitWebProcessTerminationReason reason,
                           gpointer data) {
  auto* self = static_cast<AppView*>(data);
  self->memory_bytes_.reset();
  // The spare view's web process is running already: it takes over, and the reload below
  // (or the hang watchdog's, already scheduled) loads the start page in it.
  if (self->swapInSpare()) spdlog::info("[{}] the spare web process takes over", self->spec_.name);
  if (self->terminating_for_hang_) return;  // our own watchdog: already counted and scheduled
  self->recover(reason == WEBKIT_WEB_PROCESS_EXCEEDED_MEMORY_LIMIT ? LoadState::kRecycled
                                                                   : LoadState::kCrashed,
                std::string(reasonOf(reason)));
}

void AppView::onResponsive(GObject* /*view*/, GParamSpec* /*pspec*/, gpointer data) {
  auto* self = static_cast<AppView*>(data);
  const bool responsive = webkit_web_view_get_is_web_process_responsive(self->view_) != FALSE;
  if (!responsive) spdlog::warn("[{}] web process unresponsive", self->spec_.name);
  self->recovery_.responsive(responsive, now());
}

void AppView::onHeartbeat(WebKitUserContentManager* /*manager*/, WebKitJavascriptResult* /*result*/,
                          gpointer data) {
  static_cast<AppView*>(data)->recovery_.heartbeat(now());
}

void AppView::onConsole(WebKitUserContentManager* /*manager*/, WebKitJavascriptResult* result,
                        gpointer data) {
  auto* self = static_cast<AppView*>(data);
  auto message = parseJson(jsString(result), "console message");
  if (!message || !message->is_object()) return;
  const std::string level = message->value("level", "log");
  const std::string text = message->value("text", "");
  if (self->console_) self->console_->post(level, text);
  if (level == "error") {
    spdlog::error("[{}] console.error: {}", self->spec_.name, text);
  } else if (level == "warn") {
    spdlog::warn("[{}] console.warn: {}", self->spec_.name, text);
  } else {
    spdlog::info("[{}] console.{}: {}", self->spec_.name, level, text);
  }
}

void AppView::onDownload(WebKitWebContext* /*context*/, WebKitDownload* download, gpointer data) {
  auto* self = static_cast<AppView*>(data);
  ++self->refused_navigations_;
  spdlog::warn("[{}] refused a download", self->spec_.name);
  webkit_download_cancel(download);
}

}  // namespace fleetlet::webview
