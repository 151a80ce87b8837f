#include "health/prober.h"

namespace fleetlet::health {

bool sameTarget(const Target& a, const Target& b) {
  const auto& x = a.check;
  const auto& y = b.check;
  return a.app == b.app && a.container_id == b.container_id && a.pid == b.pid && x.kind == y.kind &&
         x.port == y.port && x.path == y.path && x.command == y.command &&
         x.interval == y.interval && x.timeout == y.timeout && x.failures == y.failures;
}

}  // namespace fleetlet::health
