#pragma once
// TaskProcess: the task's init process as the task service sees it, native (NativeProcess)
// or a container through runc (RuncProcess). Created stopped before exec by the factory of
// each kind; its exit reaches the callback given there, through the reaper.

#include <sys/types.h>

#include "error/error.h"

namespace fleetlet::shim {

class TaskProcess {
 public:
  virtual ~TaskProcess() = default;  // ends a process that was never started
  virtual pid_t pid() const = 0;
  // Lets the process exec its program. Returns once it did, or the reason it could not.
  virtual Status start() = 0;
  // After the exit, at Delete: releases what the process held (runc state, rootfs mount).
  virtual Status cleanup() { return {}; }
};

}  // namespace fleetlet::shim
