#pragma once
// The kiosk's rules, apart from WebKit so they are unit-tested without a display: which
// navigations an app may make, how an app:// request maps to a file of its bundle, what
// window.ax holds. Pure functions, thread-safe.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::webview {

inline constexpr std::string_view kAppScheme = "app";

// "scheme://host[:port]" of an absolute URL, lower-cased; nullopt when it has no host
// (about:, data:, javascript:, file:///...).
std::optional<std::string> originOf(std::string_view uri);

// The origin of an app's own pages: "app://<name>".
std::string appOrigin(std::string_view app);

struct NavigationRules {
  std::string app;
  std::vector<std::string> allowed_origins;  // from fleetlet-app.json
};

// Whether the app's view may load `uri` (top frame or a subframe): its own origin, an
// allowed origin, or about:blank. Everything else is refused: other apps, file:, data:,
// any other host.
bool navigationAllowed(const NavigationRules& rules, std::string_view uri);

// The bundle file an app:// request path names: percent-decoded, query and fragment
// dropped, checked by the bundle path rules (no "..", no absolute path). "/" and a path
// ending in "/" name its index.html. kInvalidArgument for a path that leaves the bundle.
Result<std::string> bundlePathOf(std::string_view uri_path);

// Whether a missing path is a client-side route of the SPA (answered with the start page):
// its last component has no dot.
bool isClientRoute(std::string_view bundle_path);

// Content-Type of a bundle file by its extension; application/octet-stream when unknown.
std::string_view contentTypeOf(std::string_view path);

// Services an SPA reaches through its own origin: app://<name>/.ax/<service>/<path>.
inline constexpr std::string_view kServicePrefix = "/.ax/";
bool isServiceName(std::string_view name);  // events, blobs, logs

struct ServiceRoute {
  std::string service;  // events, blobs, logs
  std::string path;     // what follows, with its query: "/api/v2/events/publish?x=1"
};
// The service route of an app:// request path (with its query), nullopt when the path is
// not under /.ax/. kInvalidArgument for an unknown service, a path with ".." or '%', or a
// character outside printable ASCII (a space, CR, LF, ...) anywhere in path or query.
Result<std::optional<ServiceRoute>> serviceRouteOf(std::string_view path_and_query);

struct AxInfo {
  std::string app;
  std::string display_name;
  Json settings = Json::object();
  // Service URIs by name ("events", "blobs", "logs"), as the page must use them.
  std::map<std::string, std::string> services;
  int heartbeat_interval_ms = 1000;
};

// The user script run at document start of every page of the app, before the page's own
// scripts: defines a frozen window.ax (appName, displayName, settings, eventServiceUri,
// blobServiceUri, consoleServiceUri), forwards console messages and uncaught errors to the
// host (message handler "fleetletConsole") and posts a heartbeat every interval (message
// handler "fleetletHeartbeat"): a page whose main thread hangs stops beating; about:blank
// neither beats nor forwards its console.
std::string axScript(const AxInfo& info);

// Whether GPU (GL) compositing is worth having: a DRM render node (renderD*) exists in
// `dev_dri`. Without one, GL is Mesa's software rasteriser (llvmpipe), which costs the web
// process ~80 ms of CPU at each start and paints no faster than WebKit's non-GL path.
bool haveRenderNode(const std::filesystem::path& dev_dri = "/dev/dri");

}  // namespace fleetlet::webview
