#pragma once
// LocalRegistry: a docker-registry (distribution 2.8) serving plain HTTP on 127.0.0.1 with a
// free port and storage in a temp dir of its own; stopped and removed on destruction.
//
// Thread-safety: immutable after start(); address() may be read from any thread.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "error/error.h"
#include "os/child_process.h"
#include "support/temp_dir.h"

namespace fleetlet::testing {

class LocalRegistry {
 public:
  // Picks a free port (bind port 0, release it, start the registry on it; a lost race is
  // retried with a new port), then waits up to 20 s until GET /v2/ answers 200. Fails with
  // kNotFound when docker-registry is not installed, kUnavailable (with its log) otherwise.
  static Result<LocalRegistry> start();

  LocalRegistry(LocalRegistry&&) noexcept = default;
  LocalRegistry& operator=(LocalRegistry&&) = delete;
  ~LocalRegistry();

  // "127.0.0.1:PORT", the host part of image references.
  std::string address() const;
  uint16_t port() const { return port_; }
  const std::filesystem::path& storageDir() const { return storage_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

 private:
  LocalRegistry(TempDir dir, uint16_t port, std::unique_ptr<ChildProcess> process);
  static Result<LocalRegistry> startOnce(TempDir dir);

  TempDir dir_;
  std::filesystem::path storage_;
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, release it): for servers
// that cannot be told to bind port 0 and report it. Callers retry when they lose the race.
Result<uint16_t> freePort();

// The HTTP status of GET http://<address><path> (HTTP/1.0, no body read beyond the status
// line), or an error when nothing answers. For readiness checks.
Result<int> httpGetStatus(const std::string& host, uint16_t port, const std::string& path);

}  // namespace fleetlet::testing
