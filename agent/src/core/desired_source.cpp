#include "core/desired_source.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

namespace fleetlet::core {
namespace {

bool isManifestFile(const std::filesystem::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

}  // namespace

DesiredSource::DesiredSource(std::filesystem::path path, NodeService& node,
                             std::chrono::milliseconds interval)
    : path_(std::move(path)), node_(node), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

DesiredSource::~DesiredSource() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void DesiredSource::run() {
  for (;;) {
    scan();
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, interval_, [&] { return stopping_; })) return;
  }
}

void DesiredSource::scan() {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path_, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(path_, ec)) {
      if (e.is_regular_file(ec) && isManifestFile(e.path())) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::is_regular_file(path_, ec)) {
    files.push_back(path_);
  }
  for (const auto& f : files) {
    auto mtime = std::filesystem::last_write_time(f, ec);
    if (ec) continue;
    auto size = std::filesystem::file_size(f, ec);
    if (ec) continue;
    auto key = f.string();
    auto version = std::make_pair(mtime, size);
    if (auto it = seen_.find(key); it != seen_.end() && it->second == version) continue;
    seen_[key] = version;
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    auto applied = node_.apply(text.str(), key);
    if (applied) {
      spdlog::info("applied revision {} from {}", applied->revision, key);
    } else if (applied.error().code() == ErrorCode::kFailedPrecondition) {
      spdlog::debug("{}: {}", key, applied.error().message());
    } else {
      spdlog::error("{}: {}", key, applied.error().message());
    }
  }
}

}  // namespace fleetlet::core
