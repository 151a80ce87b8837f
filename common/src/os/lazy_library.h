#pragma once
// LazyLibrary: a shared library dlopen'ed when first constructed (make it a function-local
// static: loaded once, thread-safely, on the first call that needs it) and never unloaded. The
// lazy shims of libarchive (common/src/archive/lazy_archive.cpp) and libnftables
// (cni/src/firewall/lazy_nftables.cpp) forward each entry point through it, so a binary loads
// the library and its dependency tree only when it uses them (docs/fleetletd.md, Memory).
#include <dlfcn.h>

#include <string>

namespace fleetlet::os {

class LazyLibrary {
 public:
  // Loads `soname` ("libarchive.so.13") with RTLD_LOCAL: its symbols stay out of the global
  // scope and are reached through resolve(). `what` names it in error().
  LazyLibrary(const char* soname, const char* what)
      : handle_(dlopen(soname, RTLD_NOW | RTLD_LOCAL)) {
    if (handle_ == nullptr) {
      const char* why = dlerror();
      error_ = std::string("cannot load ") + what + ": " + (why != nullptr ? why : "dlopen failed");
    }
  }
  LazyLibrary(const LazyLibrary&) = delete;
  LazyLibrary& operator=(const LazyLibrary&) = delete;

  // Why the library did not load; empty when it did.
  const std::string& error() const { return error_; }

  // The library's function `name` as an `Fn`, or nullptr when it did not load or lacks it.
  template <typename Fn>
  Fn resolve(const char* name) const {
    return handle_ != nullptr ? reinterpret_cast<Fn>(dlsym(handle_, name)) : nullptr;
  }

 private:
  void* handle_;  // kept loaded for the life of the process
  std::string error_;
};

}  // namespace fleetlet::os
