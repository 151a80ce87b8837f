#pragma once
// fleetlet-app.json: the optional description an SPA bundle carries at its root.
//
//   {"displayName": "Inspector", "startPage": "index.html",
//    "settings": {"line": 3}, "allowedOrigins": ["https://docs.example.com"]}
//
// `startPage` is a path inside the bundle (default index.html); `settings` is any JSON object
// and reaches the page as window.ax.settings; `allowedOrigins` are the origins besides the
// app's own (app://<name>) that the page may navigate to. Unknown members are errors.
// Pure functions, thread-safe.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::bundle {

inline constexpr std::string_view kAppConfigFile = "fleetlet-app.json";
inline constexpr size_t kMaxAppConfigBytes = size_t{64} * 1024;

struct AppConfig {
  std::string display_name;
  std::string start_page = "index.html";
  Json settings = Json::object();
  // Each "scheme://host[:port]" with scheme http or https, no path.
  std::vector<std::string> allowed_origins;
};

// Parses the text of fleetlet-app.json; kInvalidArgument names the member that is wrong.
Result<AppConfig> parseAppConfig(std::string_view text);

// Reads <dir>/fleetlet-app.json (the defaults when there is none) and checks that the start
// page is a regular file of the bundle. kInvalidArgument names the file and the problem.
Result<AppConfig> loadAppConfig(const std::filesystem::path& dir);

}  // namespace fleetlet::bundle
