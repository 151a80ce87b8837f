#pragma once
// Prober: one health check of one app, run once.
//
// Thread-safety: probe() is called from several threads at once (one probe per app at a
// time); implementations must allow that.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "error/error.h"
#include "manifest/types.h"

namespace fleetlet::health {

// What to probe: an app's running task and its manifest health check.
struct Target {
  std::string app;
  std::string container_id;  // containerd container (and task) id, in the prober's namespace
  uint32_t pid = 0;          // the task's init pid: its network namespace is /proc/<pid>/ns/net
  manifest::HealthCheck check;
};

// True when both name the same task with the same check (a monitor keeps its counts only
// for an unchanged target).
bool sameTarget(const Target& a, const Target& b);

class Prober {
 public:
  virtual ~Prober() = default;

  // Runs target.check once against the target. Returns success when the app is healthy, or
  // an error saying why not ("http 503 from :8080/healthz", "connect :8080: Connection
  // refused", "exec exited 1"): kUnavailable when the app answered badly, late or not at all,
  // kInvalidArgument for a check that cannot run (an exec check without a command).
  // Blocks for at most about target.check.timeout.
  virtual Status probe(const Target& target) = 0;
};

}  // namespace fleetlet::health
