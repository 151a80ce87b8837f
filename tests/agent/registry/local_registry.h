#pragma once
// Test helpers for the registry client: a private docker-registry on 127.0.0.1 with temp
// storage (optionally behind htpasswd Basic auth), a way to push blobs and manifests to it
// with plain HTTP, and a tiny scripted HTTP server for what docker-registry cannot do
// (bearer tokens, ignored Range, redirects, garbage answers).
//
// Kept local and small on purpose; the project-wide fixture library may replace it.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "oci/manifest.h"
#include "os/child_process.h"
#include "os/unique_fd.h"

namespace fleetlet::registry::testing {

// A port that was free a moment ago (bind 0, close).
uint16_t freePort();

struct LocalRegistryOptions {
  // Require Basic auth with these credentials (htpasswd, bcrypt).
  std::optional<std::pair<std::string, std::string>> htpasswd_user;
};

class LocalRegistry {
 public:
  // Starts docker-registry and waits until /v2/ answers. Fails when the binary is missing.
  static Result<std::unique_ptr<LocalRegistry>> start(LocalRegistryOptions options = {});
  ~LocalRegistry();

  // "127.0.0.1:<port>".
  const std::string& host() const { return host_; }
  const std::filesystem::path& storage() const { return storage_; }

  // POST /v2/<repo>/blobs/uploads/ then PUT <location>&digest=...; returns the descriptor.
  Result<oci::Descriptor> pushBlob(const std::string& repo, const std::string& bytes,
                                   std::string media_type);
  // PUT /v2/<repo>/manifests/<tag> with the media type as Content-Type.
  Result<oci::Descriptor> pushManifest(const std::string& repo, const std::string& tag,
                                       const std::string& bytes, std::string media_type);
  // Where the filesystem driver keeps a blob's bytes (to tamper with them).
  std::filesystem::path blobDataPath(const std::string& digest) const;

 private:
  LocalRegistry() = default;

  std::filesystem::path dir_;
  std::filesystem::path storage_;
  std::string host_;
  std::optional<std::string> authorization_;
  std::optional<ChildProcess> process_;
};

// Minimal HTTP/1.1 server on 127.0.0.1:0, one connection at a time, "Connection: close".
// `handler` gets the request head and returns the whole raw response.
struct ScriptedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
};

class ScriptedServer {
 public:
  using Handler = std::function<std::string(const ScriptedRequest&)>;
  explicit ScriptedServer(Handler handler);
  ~ScriptedServer();

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  // Requests seen so far (copy; thread-safe).
  std::vector<ScriptedRequest> requests() const;

  static std::string response(int status, std::string body,
                              std::vector<std::pair<std::string, std::string>> headers = {});

 private:
  void serve();

  Handler handler_;
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<ScriptedRequest> requests_;
  std::thread thread_;
};

}  // namespace fleetlet::registry::testing
