#pragma once
// BundleStore: SPA bundles fetched, verified and unpacked into content-addressed directories.
//
// Layout under `root` (fleetletd uses <data dir>/bundles):
//   sha256/<hex>/          an unpacked, verified bundle; never changed once there
//   downloads/<hex>.partial  a download in progress, resumed by the next ensure()
//   tmp/                   unpacking happens here, then one rename publishes the directory
//
// A bundle is named by the sha256 of its archive, so two apps (or two revisions) with the
// same archive share one directory, and the directory of the previous version stays until
// prune() is told it is no longer wanted: the caller keeps the version on screen and the one
// it is switching to.
//
// Thread-safe: ensure() calls for different bundles run in parallel, calls for one bundle
// wait for each other. ensure() blocks on the network and the disk.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "bundle/app_config.h"
#include "bundle/unpack.h"
#include "error/error.h"
#include "http/client.h"

namespace fleetlet::bundle {

struct StoreOptions {
  std::filesystem::path root;
  UnpackLimits limits;
  uint64_t max_download_bytes = 256ull * 1024 * 1024;
  // Timeouts and the stop token of downloads (one Client per call).
  http::ClientOptions client;
  // The cloud's origin ("https://fleet.example.com[:port]", scheme://host[:port] of
  // cloud.manifestUrl) and its TLS settings (client certificate, CA, pins): a bundle from that
  // origin is downloaded with them, as the cloud source fetches manifests; other origins use
  // `client.tls` (the system's CAs by default). Empty origin: none.
  std::string cloud_origin;
  http::ClientTls cloud_tls;
  // blob://<handle> bundles come from the node's blob service (fleetlet-blobs' host listener):
  // GET <blob_service_url><handle>, resumable like any download.
  std::string blob_service_url = "http://127.0.0.1:4455/api/v1/blobs/";
};

// "scheme://host[:port]" of an http(s) URL (lower-case scheme and host), or "" when it is
// none.
std::string originOf(std::string_view url);

struct InstalledBundle {
  std::string sha256;
  std::filesystem::path dir;
  AppConfig config;
};

class BundleStore {
 public:
  // Removes what an earlier run left in tmp/ (one store per root at a time).
  explicit BundleStore(StoreOptions options);

  // Returns the verified directory of the bundle whose archive has this sha256, fetching it
  // from `url` (http://, https://, file:///absolute/path or blob://<handle> of the node's
  // blob store, the last two for air-gapped nodes) and
  // unpacking it when it is not there yet. Errors, each naming the URL:
  //  - kInvalidArgument: the archive's sha256 differs (the download is deleted), the archive
  //    is malformed or hostile, or it has no start page / a bad fleetlet-app.json;
  //  - kResourceExhausted: the download or the unpacked tree passes a limit;
  //  - kNotFound: HTTP 404 or no such file;
  //  - kUnavailable: no answer or another HTTP error (a partial download is kept and
  //    resumed by the next call).
  // On any error nothing appears under sha256/.
  Result<InstalledBundle> ensure(const std::string& url, const std::string& sha256);

  // The directory a bundle has (or would have) once installed.
  std::filesystem::path directoryOf(const std::string& sha256) const;
  bool installed(const std::string& sha256) const;

  // Removes every installed bundle and download whose sha256 is not in `keep`.
  Status prune(const std::set<std::string>& keep);

 private:
  Result<std::filesystem::path> fetch(const std::string& url, const std::string& sha256);
  Result<std::filesystem::path> download(const std::string& url, const std::string& sha256,
                                         const http::ClientOptions& client);
  Result<InstalledBundle> install(const std::filesystem::path& archive, const std::string& sha256);
  std::shared_ptr<std::mutex> lockFor(const std::string& sha256);

  StoreOptions options_;
  std::mutex locks_mutex_;
  std::map<std::string, std::shared_ptr<std::mutex>> locks_;  // guarded by locks_mutex_
};

}  // namespace fleetlet::bundle
