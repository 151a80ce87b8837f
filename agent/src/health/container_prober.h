#pragma once
// ContainerProber: runs manifest health checks against containerd tasks.
//
//   http  GET http://127.0.0.1:<port><path> from inside the task's network namespace (libcurl
//         on a socket created there); healthy on 2xx/3xx (redirects are not followed)
//         within the check's timeout.
//   tcp   connect to 127.0.0.1:<port> from inside the task's network namespace within the
//         timeout.
//   exec  runs the command in the container (containerd exec, with the container's process
//         spec: env, cwd, user); healthy on exit 0 within the timeout, else killed.
//
// Thread-safety: probe() may run on many threads at once; each call uses its own curl
// handle, sockets and exec id.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "containerd/connection.h"
#include "health/prober.h"

namespace fleetlet::health {

class ContainerProber final : public Prober {
 public:
  // Exec probes run in containerd namespace `ns` over `connection` (may be null when no exec
  // checks are used: they then fail with kFailedPrecondition). An exec command's stdout and
  // stderr go to a FIFO of its own in `output_dir` (it must exist; the shim opens the FIFO in
  // the host's mount namespace), removed after the probe; its last line ends the error
  // message of a failed exec check.
  ContainerProber(std::shared_ptr<containerd::Connection> connection, std::string ns,
                  std::filesystem::path output_dir = std::filesystem::temp_directory_path());

  // See Prober. Network checks block for at most the check's timeout. Exec checks add
  // containerd's own latency to create and start the process (bounded by 10 s) to the
  // command's timeout.
  Status probe(const Target& target) override;

 private:
  Status probeHttp(const Target& target) const;
  Status probeTcp(const Target& target) const;
  Status probeExec(const Target& target);

  std::shared_ptr<containerd::Connection> connection_;
  std::string ns_;
  std::filesystem::path output_dir_;
  const uint32_t exec_nonce_;  // distinguishes this prober's exec ids from a previous agent's
  std::atomic<uint64_t> exec_counter_{0};
};

}  // namespace fleetlet::health
