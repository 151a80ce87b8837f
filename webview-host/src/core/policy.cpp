#include "core/policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "bundle/unpack.h"
#include "http/router.h"

namespace fleetlet::webview {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::ranges::transform(out, out.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::optional<std::string> originOf(std::string_view uri) {
  auto colon = uri.find("://");
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view scheme = uri.substr(0, colon);
  for (char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return std::nullopt;
    }
  }
  std::string_view rest = uri.substr(colon + 3);
  // As a browser reads it (WHATWG URL): in the special schemes a backslash ends the host as
  // a slash does ("https://evil.test\@docs.example.com/" is evil.test); in others it is
  // part of the user info ("app://demo\@other/" is other).
  const std::string scheme_lower = lower(scheme);
  const bool special = scheme_lower == "http" || scheme_lower == "https" || scheme_lower == "ws" ||
                       scheme_lower == "wss" || scheme_lower == "ftp" || scheme_lower == "file";
  auto end = rest.find_first_of(special ? std::string_view("/?#\\") : std::string_view("/?#"));
  std::string_view authority = rest.substr(0, end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.empty()) return std::nullopt;
  return scheme_lower + "://" + lower(authority);
}

std::string appOrigin(std::string_view app) { return std::string(kAppScheme) + "://" + lower(app); }

bool navigationAllowed(const NavigationRules& rules, std::string_view uri) {
  if (uri == "about:blank") return true;
  auto origin = originOf(uri);
  if (!origin) return false;
  if (*origin == appOrigin(rules.app)) return true;
  return std::ranges::find(rules.allowed_origins, *origin) != rules.allowed_origins.end();
}

Result<std::string> bundlePathOf(std::string_view uri_path) {
  std::string_view raw = uri_path.substr(0, uri_path.find_first_of("?#"));
  auto decoded_or = http::percentDecode(raw, /*plus_is_space=*/false);
  if (!decoded_or || decoded_or->find('\0') != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "bad escape in path \"{}\"", raw);
  }
  std::string decoded = std::move(*decoded_or);
  while (decoded.starts_with('/')) decoded.erase(0, 1);
  if (decoded.empty() || decoded.ends_with('/')) decoded += "index.html";
  auto checked = bundle::checkEntryPath(decoded, bundle::UnpackLimits{});
  if (!checked || checked->empty()) {
    return fail(ErrorCode::kInvalidArgument, "path \"{}\" leaves the bundle", raw);
  }
  return *checked;
}

bool isClientRoute(std::string_view bundle_path) {
  auto slash = bundle_path.rfind('/');
  std::string_view last =
      slash == std::string_view::npos ? bundle_path : bundle_path.substr(slash + 1);
  return last.find('.') == std::string_view::npos;
}

std::string_view contentTypeOf(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".otf", "font/otf"},
      {".wasm", "application/wasm"},
      {".txt", "text/plain; charset=utf-8"},
      {".mp4", "video/mp4"},
      {".webm", "video/webm"},
      {".mp3", "audio/mpeg"},
      {".wav", "audio/wav"},
  };
  const std::string lowered = lower(path);
  for (const auto& [ext, type] : kTypes) {
    if (lowered.ends_with(ext)) return type;
  }
  return "application/octet-stream";
}

bool isServiceName(std::string_view name) {
  return name == "events" || name == "blobs" || name == "logs";
}

Result<std::optional<ServiceRoute>> serviceRouteOf(std::string_view path_and_query) {
  if (!path_and_query.starts_with(kServicePrefix)) return std::optional<ServiceRoute>();
  std::string_view rest = path_and_query.substr(kServicePrefix.size());
  auto slash = rest.find_first_of("/?");
  std::string_view service = rest.substr(0, slash);
  if (!isServiceName(service)) {
    return fail(ErrorCode::kInvalidArgument,
                "unknown service \"{}\" (expected events, blobs or logs)", service);
  }
  // Formatted, not built with insert() and "/" + ...: GCC 12 at -O3 reports a false
  // -Wrestrict inside those.
  std::string_view tail =
      slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  std::string path = fmt::format("{}{}", tail.starts_with('?') ? "/" : "", tail);
  // Forwarded as the request target of an HTTP request to the service: nothing but the
  // printable ASCII a URL may hold (WebKit escapes the rest; a space, CR or LF here would
  // split the request line).
  if (auto bad = std::ranges::find_if(path, [](char c) { return c <= ' ' || c > '~'; });
      bad != path.end()) {
    return fail(ErrorCode::kInvalidArgument,
                "service path holds character 0x{:02x}, which a URL does not carry unescaped",
                static_cast<unsigned char>(*bad));
  }
  std::string_view bare = std::string_view(path).substr(0, path.find('?'));
  if (fmt::format("/{}/", bare).find("/../") != std::string::npos ||
      bare.find('%') != std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "service path \"{}\" is not a plain path", bare);
  }
  return std::optional<ServiceRoute>(ServiceRoute{std::string(service), std::move(path)});
}

std::string axScript(const AxInfo& info) {
  auto service = [&](const char* name) -> Json {
    auto it = info.services.find(name);
    return it == info.services.end() ? Json(nullptr) : Json(it->second);
  };
  Json ax = {
      {"appName", info.app},
      {"displayName", info.display_name.empty() ? info.app : info.display_name},
      {"settings", info.settings},
      {"eventServiceUri", service("events")},
      {"blobServiceUri", service("blobs")},
      {"consoleServiceUri", service("logs")},
  };
  // dump() escapes every non-ASCII byte and "</" cannot end a script here (it is no HTML
  // script element), so the JSON is a safe JavaScript literal.
  return fmt::format(R"JS((function () {{
  'use strict';
  const deepFreeze = (o) => {{
    if (o && typeof o === 'object') {{ Object.values(o).forEach(deepFreeze); Object.freeze(o); }}
    return o;
  }};
  Object.defineProperty(window, 'ax', {{
    value: deepFreeze({}), writable: false, configurable: false, enumerable: true }});
  const handlers = window.webkit && window.webkit.messageHandlers;
  // about:blank (the kiosk's spare view; a page that blanked itself) does not beat: a blank
  // screen is a dead screen, and the spare's beat must not pass for the page's.
  if (!handlers || location.href === 'about:blank') return;
  const post = (level, args) => {{
    try {{
      const text = args.map((a) => {{
        if (typeof a === 'string') return a;
        try {{ return JSON.stringify(a); }} catch (e) {{ return String(a); }}
      }}).join(' ');
      handlers.fleetletConsole.postMessage(JSON.stringify({{level, text: text.slice(0, 8192)}}));
    }} catch (e) {{}}
  }};
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {{
    const original = console[level].bind(console);
    console[level] = (...args) => {{ post(level, args); original(...args); }};
  }}
  window.addEventListener('error', (e) => post('error',
      ['uncaught: ' + e.message + ' at ' + e.filename + ':' + e.lineno]));
  window.addEventListener('unhandledrejection', (e) => post('error',
      ['unhandled rejection: ' + String(e.reason)]));
  const beat = () => {{ try {{ handlers.fleetletHeartbeat.postMessage(Date.now()); }} catch (e) {{}} }};
  beat();
  setInterval(beat, {});
}})();
)JS",
                     ax.dump(-1, ' ', true), info.heartbeat_interval_ms);
}

bool haveRenderNode(const std::filesystem::path& dev_dri) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dev_dri, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().filename().string().starts_with("renderD")) return true;
  }
  return false;
}

}  // namespace fleetlet::webview
