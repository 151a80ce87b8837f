#pragma once
// A kiosk run as a supervisor's child (fleetletd's `webviewChild: true`) lives no longer than
// that supervisor: killed (kill -9) or crashed, it would leave the kiosk on the display, and
// the next supervisor would start a second one beside it.

#include <sys/types.h>

#include "error/error.h"

namespace fleetlet::webview {

// Asks the kernel for a SIGTERM (the kiosk's orderly stop) when the thread that started this
// process ends, then checks that `parent` started it and still runs: kFailedPrecondition
// ("… is gone") when the parent is another process already, e.g. because `parent` ended
// before the request took effect.
Status endWithParent(pid_t parent);

}  // namespace fleetlet::webview
