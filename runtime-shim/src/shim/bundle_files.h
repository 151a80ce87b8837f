#pragma once
// Small state files: the bundle's records for the `delete` subcommand (init.pid, cgroup.path,
// runc.root, ...) and cgroup control files. Missing or unreadable files read as "".

#include <charconv>
#include <cstdint>
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

// The decimal number at the start of `text` (a pid file), or 0 when there is none.
inline std::uint64_t parseLeadingNumber(std::string_view text) {
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace fleetlet::shim
