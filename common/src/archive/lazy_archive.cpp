// fleetlet_archive: libarchive, loaded on first use.
//
// The same scheme as common/src/http/lazy_curl.cpp: this file defines the libarchive entry
// points fleetlet calls, each forwarding to libarchive.so.13, which the first call loads with
// dlopen. Linking libarchive.so directly loads it and its dependency tree at start — libxml2,
// ICU (libicuuc, which brings the shared libstdc++ and libm), liblzma, libzstd, liblz4,
// libbz2, libacl, nettle — about 3 MiB of fleetletd's idle RSS for code that only runs when
// an OCI archive or a web bundle is unpacked (system images at start, `fleetletctl image
// import`, webview bundles). See docs/fleetletd.md, Memory.
//
// Contract: behaves as libarchive itself, except that when libarchive.so.13 cannot be loaded
// archive_read_new returns nullptr, archive_error_string says why, functions returning a
// status return ARCHIVE_FATAL and the entry getters return 0 or nullptr. A binary that calls a
// libarchive function not defined here fails to link: add it below.
#include <archive.h>
#include <archive_entry.h>

#include "os/lazy_library.h"

namespace {

// Loaded on the first call of any function below; never unloaded.
const fleetlet::os::LazyLibrary& libarchive() {
  static const fleetlet::os::LazyLibrary lib("libarchive.so.13", "libarchive");
  return lib;
}

}  // namespace

// Each function resolves its target once (a function-local static) and forwards to it.
#define FLEETLET_LAZY_ARCHIVE(fallback, name, ...)                       \
  static const auto fn = libarchive().resolve<decltype(&::name)>(#name); \
  return fn != nullptr ? fn(__VA_ARGS__) : (fallback)

extern "C" {

struct archive* archive_read_new(void) {
  FLEETLET_LAZY_ARCHIVE(nullptr, archive_read_new);
}
int archive_read_support_format_tar(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_support_format_tar, a);
}
int archive_read_support_format_gnutar(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_support_format_gnutar, a);
}
int archive_read_support_filter_none(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_support_filter_none, a);
}
int archive_read_support_filter_gzip(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_support_filter_gzip, a);
}
int archive_read_support_filter_all(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_support_filter_all, a);
}
int archive_read_open_filename(struct archive* a, const char* filename, size_t block_size) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_open_filename, a, filename, block_size);
}
int archive_read_open_memory(struct archive* a, const void* buffer, size_t size) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_open_memory, a, buffer, size);
}
int archive_read_next_header(struct archive* a, struct archive_entry** entry) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_next_header, a, entry);
}
la_ssize_t archive_read_data(struct archive* a, void* buffer, size_t size) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_data, a, buffer, size);
}
int archive_read_free(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(ARCHIVE_FATAL, archive_read_free, a);
}
const char* archive_error_string(struct archive* a) {
  FLEETLET_LAZY_ARCHIVE(libarchive().error().c_str(), archive_error_string, a);
}
const char* archive_entry_pathname(struct archive_entry* e) {
  FLEETLET_LAZY_ARCHIVE(nullptr, archive_entry_pathname, e);
}
__LA_MODE_T archive_entry_filetype(struct archive_entry* e) {
  FLEETLET_LAZY_ARCHIVE(0, archive_entry_filetype, e);
}
const char* archive_entry_symlink(struct archive_entry* e) {
  FLEETLET_LAZY_ARCHIVE(nullptr, archive_entry_symlink, e);
}
la_int64_t archive_entry_size(struct archive_entry* e) {
  FLEETLET_LAZY_ARCHIVE(0, archive_entry_size, e);
}
__LA_MODE_T archive_entry_perm(struct archive_entry* e) {
  FLEETLET_LAZY_ARCHIVE(0, archive_entry_perm, e);
}
const char* archive_entry_hardlink(struct archive_entry* e) {
  FLEETLET_LAZY_ARCHIVE(nullptr, archive_entry_hardlink, e);
}

}  // extern "C"
