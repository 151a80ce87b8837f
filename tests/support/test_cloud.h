#pragma once
// TestCloud: Debian's nginx as a fleet's cloud on 127.0.0.1 (hack/cloud/setup.sh): HTTPS with a
// test CA and client certificates required, envelopes as static files under /nodes/ (nginx
// makes the ETags), WebDAV PUT under /status/, and a second "rogue" server whose certificate
// comes from another CA. Runs in a temp dir of its own; stopped (by pid) on destruction.
//
// Thread-safety: immutable after start().

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "error/error.h"
#include "os/child_process.h"
#include "support/temp_dir.h"

namespace fleetlet::testing {

class TestCloud {
 public:
  // kInternal when hack/cloud/setup.sh failed; an error naming "start nginx" when nginx could
  // not be started (not installed: run hack/install-deps.sh); kUnavailable with nginx's log
  // when it exited or did not listen within 20 s.
  static Result<TestCloud> start();
  TestCloud(TestCloud&&) noexcept = default;
  TestCloud& operator=(TestCloud&&) = delete;
  ~TestCloud();

  // "https://127.0.0.1:PORT".
  std::string url() const;
  std::string rogueUrl() const;
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path www() const { return dir() / "www"; }
  std::filesystem::path caCert() const { return dir() / "ca.crt"; }
  std::filesystem::path clientCert() const { return dir() / "client.crt"; }
  std::filesystem::path clientKey() const { return dir() / "client.key"; }
  // Writes www/<path> atomically (a rename), so nginx never serves half a file.
  Status publish(const std::string& path, const std::string& content) const;
  // The access log: one line per request, "METHOD URI STATUS BYTES "IF-NONE-MATCH" ...".
  std::string accessLog() const;
  // Stops or restarts nginx (same port and files).
  void stop();
  Status restart();

 private:
  TestCloud(TempDir dir, uint16_t port, uint16_t rogue_port);
  Status launch();

  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t rogue_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace fleetlet::testing
