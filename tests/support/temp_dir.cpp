#include "support/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace fleetlet::testing {

Result<TempDir> TempDir::create(std::string_view prefix) {
  std::string pattern = fmt::format("/tmp/{}-XXXXXX", prefix);
  if (::mkdtemp(pattern.data()) == nullptr) return failErrno(errno, "mkdtemp {}", pattern);
  return TempDir(std::filesystem::path(pattern));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempDir::~TempDir() { remove(); }

std::filesystem::path TempDir::release() { return std::exchange(path_, {}); }

void TempDir::remove() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  path_.clear();
}

}  // namespace fleetlet::testing
