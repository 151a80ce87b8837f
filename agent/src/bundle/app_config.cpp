#include "bundle/app_config.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "bundle/unpack.h"

namespace fleetlet::bundle {
namespace {

bool isOrigin(std::string_view s) {
  std::string_view rest;
  if (s.starts_with("https://")) {
    rest = s.substr(8);
  } else if (s.starts_with("http://")) {
    rest = s.substr(7);
  } else {
    return false;
  }
  if (rest.empty()) return false;
  for (char c : rest) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                    c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<AppConfig> parseAppConfig(std::string_view text) {
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseJson(text, kAppConfigFile));
  if (!doc.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", kAppConfigFile,
                jsonTypeName(doc));
  }
  AppConfig config;
  for (const auto& [key, value] : doc.items()) {
    const std::string at = fmt::format("{}: {}", kAppConfigFile, key);
    if (key == "displayName") {
      if (!value.is_string()) return fail(ErrorCode::kInvalidArgument, "{}: expected a string", at);
      config.display_name = value.get<std::string>();
    } else if (key == "startPage") {
      if (!value.is_string()) return fail(ErrorCode::kInvalidArgument, "{}: expected a string", at);
      auto page = checkEntryPath(value.get<std::string>(), UnpackLimits{});
      if (!page || page->empty()) {
        return fail(ErrorCode::kInvalidArgument, "{}: {} is not a path inside the bundle", at,
                    value.dump());
      }
      config.start_page = *page;
    } else if (key == "settings") {
      if (!value.is_object()) {
        return fail(ErrorCode::kInvalidArgument, "{}: expected an object, got {}", at,
                    jsonTypeName(value));
      }
      config.settings = value;
    } else if (key == "allowedOrigins") {
      if (!value.is_array()) {
        return fail(ErrorCode::kInvalidArgument, "{}: expected an array", at);
      }
      for (const Json& origin : value) {
        if (!origin.is_string() || !isOrigin(origin.get<std::string>())) {
          return fail(ErrorCode::kInvalidArgument,
                      "{}: {} is not an origin (http[s]://host[:port], lower case, no path)", at,
                      origin.dump());
        }
        config.allowed_origins.push_back(origin.get<std::string>());
      }
    } else {
      return fail(ErrorCode::kInvalidArgument,
                  "{}: unknown member (expected displayName, startPage, settings, allowedOrigins)",
                  at);
    }
  }
  return config;
}

Result<AppConfig> loadAppConfig(const std::filesystem::path& dir) {
  AppConfig config;
  const auto file = dir / kAppConfigFile;
  struct stat st {};
  if (::lstat(file.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > kMaxAppConfigBytes) {
      return fail(ErrorCode::kInvalidArgument, "{} is not a file of at most {} bytes",
                  kAppConfigFile, kMaxAppConfigBytes);
    }
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    FLEETLET_ASSIGN_OR_RETURN(config, parseAppConfig(text.str()));
  }
  const auto page = dir / config.start_page;
  if (::lstat(page.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return fail(ErrorCode::kInvalidArgument, "the bundle has no start page {}", config.start_page);
  }
  return config;
}

}  // namespace fleetlet::bundle
