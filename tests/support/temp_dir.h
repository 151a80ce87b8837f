#pragma once
// TempDir: a fresh directory under /tmp that is removed, with everything in it, when its
// owner lets go. It unmounts nothing: a directory with mounts inside belongs to a fixture
// that knows about them (PrivateContainerd).

#include <filesystem>
#include <string_view>

#include "error/error.h"

namespace fleetlet::testing {

class TempDir {
 public:
  // Creates /tmp/<prefix>-XXXXXX (mode 0700). Fails only when /tmp is unusable.
  static Result<TempDir> create(std::string_view prefix = "fleetlet-test");

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  // Gives up ownership: the directory stays on disk. Returns its path.
  std::filesystem::path release();

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  void remove();

  std::filesystem::path path_;
};

}  // namespace fleetlet::testing
