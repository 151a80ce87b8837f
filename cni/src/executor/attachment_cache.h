#pragma once
// AttachmentCache: one file per attachment (like libcni's result cache) holding everything a
// later CHECK or DEL needs, even after a crash and even if the network configuration on disk
// has changed since: the conflist used, the netns, the arguments and the final ADD result.
//
// Files are <dir>/<containerID>:<ifname>.json (':' occurs in neither), written atomically
// (temp file, fsync, rename, fsync of the directory), so a reader sees the old or the new
// entry, never a torn one.
//
// Thread-safety: distinct attachments may be used from different threads; one attachment
// from one thread at a time (the executor serializes them).

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::cni {

struct CachedAttachment {
  std::string container_id;
  std::string ifname;
  std::string app;  // who owns it, for counters and logs
  std::filesystem::path netns;
  Json network;                // the conflist (as parsed) the attachment was made with
  Json capability_args;        // object: capability name -> value
  std::string cni_args;        // CNI_ARGS
  Json meta = Json::object();  // the caller's own data (AttachmentRequest::meta), never sent
  std::optional<Json> result;  // the final ADD result; absent while ADD runs or failed
};

class AttachmentCache {
 public:
  explicit AttachmentCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Writes the entry atomically (creates the directory, mode 0700). Errors carry the errno.
  Status put(const CachedAttachment& entry);
  // nullopt when there is no entry; kInvalidArgument naming the file when it is corrupt.
  Result<std::optional<CachedAttachment>> get(const std::string& container_id,
                                              const std::string& ifname) const;
  // Succeeds when already absent.
  Status remove(const std::string& container_id, const std::string& ifname);
  // The (containerID, ifname) of every entry, from the file names. An absent dir is empty.
  // Removes the temp files of put()s whose process is gone (killed mid-write).
  Result<std::vector<std::pair<std::string, std::string>>> list() const;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path pathOf(const std::string& container_id, const std::string& ifname) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace fleetlet::cni
