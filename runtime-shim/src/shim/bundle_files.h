#pragma once
// Small state files: the bundle's records for the `delete` subcommand (init.pid, cgroup.path,
// runc.root, ...) and cgroup control files. Missing or unreadable files read as "".

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace fleetlet::shim {

inline std::string readSmallFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces the file's content; best effort (a failure shows up when it is read back).
inline void writeSmallFile(const std::filesystem::path& file, std::string_view text) {
  std::ofstream(file, std::ios::trunc) << text;
}

}  // namespace fleetlet::shim
