#include "system_apps/system_images.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "image/importer.h"

namespace fleetlet::system_apps {

Result<std::map<std::string, std::string>> importSystemImages(const std::filesystem::path& dir,
                                                              const image::ImageStore& store) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  std::vector<std::filesystem::path> archives;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".tar" && entry.is_regular_file(ec)) {
      archives.push_back(entry.path());
    }
  }
  if (ec) return fail(ErrorCode::kInternal, "list {}: {}", dir.string(), ec.message());
  std::sort(archives.begin(), archives.end());
  for (const auto& archive : archives) {
    auto imported = image::importArchive(archive, store, {});
    if (!imported) return std::unexpected(imported.error().wrap("import {}", archive.string()));
    for (const auto& r : *imported) {
      spdlog::info("system image {} ({}) from {}", r.name, r.target.digest, archive.string());
      out[r.name] = r.target.digest;
    }
  }
  return out;
}

}  // namespace fleetlet::system_apps
