// fleetlet_curl: libcurl, loaded on first use.
//
// This file defines the libcurl entry points fleetlet calls, each forwarding to libcurl.so.4,
// which the first call loads with dlopen (the same scheme as Implib.so or systemd's dlopen'ed
// optional libraries). Linking libcurl.so directly would load it and its dependency tree
// (OpenSSL, GnuTLS via libldap and librtmp, Kerberos, libssh2, p11-kit, nghttp2, ...) into
// every process at start, running their constructors: about 6 MiB of resident memory in a
// daemon that may never make an HTTP request (fleetletd with pre-pulled images and no HTTP
// health checks). See docs/fleetletd.md, Memory.
//
// Contract: behaves as libcurl itself, except that when libcurl.so.4 cannot be loaded,
// curl_global_init returns CURLE_FAILED_INIT, curl_easy_init and curl_slist_append return
// nullptr, curl_easy_strerror explains why, and the rest fail or do nothing. A binary that calls a
// libcurl function not defined here fails to link: add it below.
#define CURL_DISABLE_TYPECHECK  // the type-checking macros would rewrite the definitions below
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <string>

namespace {

struct Libcurl {
  void* handle = nullptr;
  std::string error;  // why it did not load
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
};

template <typename Fn>
bool bind(void* handle, const char* name, Fn& fn, std::string& error) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
  if (fn == nullptr && error.empty()) error = std::string("libcurl.so.4 lacks ") + name;
  return fn != nullptr;
}

Libcurl load() {
  Libcurl lib;
  // RTLD_LOCAL: libcurl's symbols stay out of the global scope; we reach them by handle only.
  void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    lib.error = std::string("cannot load libcurl: ") + (why != nullptr ? why : "dlopen failed");
    return lib;
  }
  bool ok = bind(handle, "curl_global_init", lib.global_init, lib.error) &&
            bind(handle, "curl_easy_init", lib.easy_init, lib.error) &&
            bind(handle, "curl_easy_setopt", lib.easy_setopt, lib.error) &&
            bind(handle, "curl_easy_perform", lib.easy_perform, lib.error) &&
            bind(handle, "curl_easy_getinfo", lib.easy_getinfo, lib.error) &&
            bind(handle, "curl_easy_cleanup", lib.easy_cleanup, lib.error) &&
            bind(handle, "curl_easy_reset", lib.easy_reset, lib.error) &&
            bind(handle, "curl_easy_strerror", lib.easy_strerror, lib.error) &&
            bind(handle, "curl_slist_append", lib.slist_append, lib.error) &&
            bind(handle, "curl_slist_free_all", lib.slist_free_all, lib.error);
  if (!ok) {
    dlclose(handle);
    return Libcurl{.error = lib.error};
  }
  lib.handle = handle;  // kept loaded for the life of the process
  return lib;
}

// Loaded once, thread-safely (a function-local static); never unloaded.
const Libcurl& libcurl() {
  static const Libcurl lib = load();
  return lib;
}

}  // namespace

extern "C" {

CURLcode curl_global_init(long flags) {
  const auto& lib = libcurl();
  return lib.handle != nullptr ? lib.global_init(flags) : CURLE_FAILED_INIT;
}

CURL* curl_easy_init() {
  const auto& lib = libcurl();
  return lib.handle != nullptr ? lib.easy_init() : nullptr;
}

// Handles and lists exist only once libcurl is loaded; the checks below guard against callers
// that pass nullptr regardless.

CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  const auto& lib = libcurl();
  if (lib.handle == nullptr) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, option);
  CURLcode rc = CURLE_OK;
  // The option's number says which type its argument has (see curl.h, CURLOPTTYPE_*).
  // NOLINTNEXTLINE(bugprone-branch-clone): the branches differ in the type given to va_arg.
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    rc = lib.easy_setopt(curl, option, va_arg(args, long));
  } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
    rc = lib.easy_setopt(curl, option, va_arg(args, void*));
  } else if (option < CURLOPTTYPE_OFF_T) {
    using AnyFunction = void (*)();
    rc = lib.easy_setopt(curl, option, va_arg(args, AnyFunction));
  } else if (option < CURLOPTTYPE_BLOB) {
    rc = lib.easy_setopt(curl, option, va_arg(args, curl_off_t));
  } else {
    rc = lib.easy_setopt(curl, option, va_arg(args, curl_blob*));
  }
  va_end(args);
  return rc;
}

CURLcode curl_easy_perform(CURL* curl) {
  const auto& lib = libcurl();
  return lib.handle != nullptr ? lib.easy_perform(curl) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  const auto& lib = libcurl();
  if (lib.handle == nullptr) return CURLE_FAILED_INIT;
  va_list args;
  va_start(args, info);
  CURLcode rc = CURLE_OK;
  // Every CURLINFO takes a pointer; its type is in the info's type bits.
  switch (info & CURLINFO_TYPEMASK) {
    case CURLINFO_STRING:  // NOLINT(bugprone-branch-clone): the cases differ in va_arg's type
      rc = lib.easy_getinfo(curl, info, va_arg(args, char**));
      break;
    case CURLINFO_LONG:
      rc = lib.easy_getinfo(curl, info, va_arg(args, long*));
      break;
    case CURLINFO_DOUBLE:
      rc = lib.easy_getinfo(curl, info, va_arg(args, double*));
      break;
    case CURLINFO_SLIST:  // also CURLINFO_PTR
      rc = lib.easy_getinfo(curl, info, va_arg(args, curl_slist**));
      break;
    case CURLINFO_SOCKET:
      rc = lib.easy_getinfo(curl, info, va_arg(args, curl_socket_t*));
      break;
    case CURLINFO_OFF_T:
      rc = lib.easy_getinfo(curl, info, va_arg(args, curl_off_t*));
      break;
    default:
      rc = CURLE_UNKNOWN_OPTION;
  }
  va_end(args);
  return rc;
}

void curl_easy_cleanup(CURL* curl) {
  if (curl != nullptr && libcurl().handle != nullptr) libcurl().easy_cleanup(curl);
}

void curl_easy_reset(CURL* curl) {
  if (curl != nullptr && libcurl().handle != nullptr) libcurl().easy_reset(curl);
}

const char* curl_easy_strerror(CURLcode code) {
  const auto& lib = libcurl();
  return lib.handle != nullptr ? lib.easy_strerror(code) : lib.error.c_str();
}

curl_slist* curl_slist_append(curl_slist* list, const char* value) {
  const auto& lib = libcurl();
  return lib.handle != nullptr ? lib.slist_append(list, value) : nullptr;
}

void curl_slist_free_all(curl_slist* list) {
  if (list != nullptr && libcurl().handle != nullptr) libcurl().slist_free_all(list);
}

}  // extern "C"
