#pragma once
// Builds tar(.gz) archives in memory with libarchive's writer, including the hostile shapes
// a bundle unpacker must refuse (absolute paths, "..", links out, devices).

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fleetlet::bundle::testing {

struct TarEntry {
  std::string path;
  std::string content;     // regular files
  mode_t type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO
  std::string link;        // symlink target (AE_IFLNK)
  std::string hardlink;    // when set: a hard link entry to this path
  mode_t perm = 0644;
};

inline TarEntry file(std::string path, std::string content) {
  return TarEntry{.path = std::move(path), .content = std::move(content)};
}
inline TarEntry dir(std::string path) {
  return TarEntry{.path = std::move(path), .type = AE_IFDIR, .perm = 0755};
}

inline std::string makeTar(const std::vector<TarEntry>& entries, bool gzip = true) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  std::string out(
      entries.size() * 2048 + size_t{1024} * 1024 +
          [&] {
            size_t n = 0;
            for (const auto& e : entries) n += e.content.size();
            return n;
          }(),
      '\0');
  size_t used = 0;
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    if (!e.hardlink.empty()) {
      archive_entry_set_hardlink(entry, e.hardlink.c_str());
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_size(entry, 0);
    } else {
      archive_entry_set_filetype(entry, e.type);
      if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.link.c_str());
      archive_entry_set_size(entry,
                             e.type == AE_IFREG ? static_cast<la_int64_t>(e.content.size()) : 0);
    }
    archive_entry_set_perm(entry, e.perm);
    archive_write_header(a, entry);
    if (e.type == AE_IFREG && e.hardlink.empty() && !e.content.empty()) {
      archive_write_data(a, e.content.data(), e.content.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void writeFile(const std::filesystem::path& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

}  // namespace fleetlet::bundle::testing
