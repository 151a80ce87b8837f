#pragma once
// Safe unpacking of SPA bundles (.tar.gz, or a plain .tar) with libarchive.
//
// A bundle comes from the network and is hostile until proven otherwise. The unpacker
// accepts regular files, directories and hard links to an earlier regular file of the same
// archive, and nothing else: no symbolic links (so no path can lead out of the bundle, and
// serving it needs no link checks), no devices, fifos or sockets. Every path is relative,
// has no `..` or `.` component (a leading `./` is dropped), no empty component, and stays
// within the length and depth limits. The sizes written are counted as they are written
// (a tar header's size may lie). Modes are not copied: directories get 0755, files 0644,
// or 0755 when the archive marks them executable; owners and times are ignored.
//
// All functions are pure over their inputs and may block on disk I/O; they are thread-safe.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::bundle {

struct UnpackLimits {
  uint64_t max_files = 20000;                       // entries of any kind
  uint64_t max_total_bytes = 512ull * 1024 * 1024;  // sum of the files' sizes
  size_t max_path_length = 1024;                    // bytes of one entry's path
  size_t max_depth = 32;                            // components of one entry's path
};

struct UnpackSummary {
  uint64_t files = 0;              // regular files and hard links
  uint64_t directories = 0;        // directory entries of the archive
  uint64_t bytes = 0;              // bytes written
  std::vector<std::string> paths;  // every file's path, in archive order
};

// Checks one entry path from an archive and returns it normalised (leading "./" dropped, a
// trailing "/" dropped). kInvalidArgument names the path and the rule it breaks. An empty
// result means the archive's root directory itself (".", "./").
Result<std::string> checkEntryPath(std::string_view path, const UnpackLimits& limits);

// Unpacks the archive at `archive` into `dest`, which must not exist yet (its parent must).
// On any error nothing is left at `dest`. Errors: kInvalidArgument for a malformed or
// hostile archive (the message names the entry and the rule), kResourceExhausted when a
// limit is passed, kAlreadyExists when `dest` exists, errno errors from the filesystem.
Result<UnpackSummary> unpackArchive(const std::filesystem::path& archive,
                                    const std::filesystem::path& dest,
                                    const UnpackLimits& limits = {});

// Reads an archive held in memory with the same rules, writing nothing: what unpackArchive
// would accept or refuse (used by the fuzz target and to check bundles before unpacking).
Result<UnpackSummary> inspectArchive(std::string_view bytes, const UnpackLimits& limits = {});

}  // namespace fleetlet::bundle
