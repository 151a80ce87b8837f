#include "kiosk/parent_watch.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

namespace fleetlet::webview {

Status endWithParent(pid_t parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return failErrno(errno, "prctl(PR_SET_PDEATHSIG)");
  // Checked after the request: a parent that ended before it is seen here, one that ends
  // after it sends the signal.
  if (pid_t now = ::getppid(); now != parent) {
    return fail(ErrorCode::kFailedPrecondition,
                "the process that started the kiosk ({}) is gone (its parent is now {})", parent,
                now);
  }
  return {};
}

}  // namespace fleetlet::webview
