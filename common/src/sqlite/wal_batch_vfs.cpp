#include "sqlite/wal_batch_vfs.h"

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

namespace fleetlet::sqlite {
namespace {

constexpr int kFrameHeaderBytes = 24;

sqlite3_vfs* base() {
  static sqlite3_vfs* const vfs = sqlite3_vfs_find(nullptr);
  return vfs;
}

// A WAL file: SQLite's file object for it, the default VFS's file right behind it in the
// same allocation (szOsFile covers both), and the gathered bytes. Constructed in SQLite's
// memory by vfsOpen, destroyed by walClose.
struct WalFile {
  sqlite3_file file{};  // first: SQLite passes &file back to the methods
  sqlite3_file* real = nullptr;
  std::vector<char> gathered;
  sqlite3_int64 start = 0;   // file offset of gathered.front()
  bool commit_next = false;  // the commit frame's page is the next write
};

WalFile& self(sqlite3_file* f) { return *reinterpret_cast<WalFile*>(f); }

// Writes what is gathered. On failure the bytes are dropped: SQLite fails the transaction
// they belong to and rolls it back; nothing of it was published.
int flush(WalFile& w) {
  if (w.gathered.empty()) return SQLITE_OK;
  int rc = w.real->pMethods->xWrite(w.real, w.gathered.data(), static_cast<int>(w.gathered.size()),
                                    w.start);
  w.gathered.clear();
  return rc;
}

int walClose(sqlite3_file* f) {
  WalFile& w = self(f);
  int rc = flush(w);
  int closed = w.real->pMethods->xClose(w.real);
  std::destroy_at(&w);
  return rc != SQLITE_OK ? rc : closed;
}

int walRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  WalFile& w = self(f);
  if (int rc = flush(w); rc != SQLITE_OK) return rc;
  return w.real->pMethods->xRead(w.real, out, amount, offset);
}

int walWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  WalFile& w = self(f);
  auto size = static_cast<std::size_t>(amount);
  bool contiguous =
      !w.gathered.empty() && offset == w.start + static_cast<sqlite3_int64>(w.gathered.size());
  if (!contiguous || w.gathered.size() + size > kMaxGathered) {
    if (int rc = flush(w); rc != SQLITE_OK) return rc;
    if (size > kMaxGathered) return w.real->pMethods->xWrite(w.real, data, amount, offset);
    w.start = offset;
  }
  const bool completes_commit = w.commit_next;
  w.commit_next = false;
  // A frame header with a non-zero "database size after commit" (bytes 4..7) marks the
  // commit frame; its page follows in the next write.
  if (amount == kFrameHeaderBytes) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    w.commit_next = (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  }
  try {
    const auto* bytes = static_cast<const char*>(data);
    w.gathered.insert(w.gathered.end(), bytes, bytes + size);
  } catch (const std::bad_alloc&) {
    int rc = flush(w);
    if (rc != SQLITE_OK) return rc;
    return w.real->pMethods->xWrite(w.real, data, amount, offset);
  }
  return completes_commit ? flush(w) : SQLITE_OK;
}

int walTruncate(sqlite3_file* f, sqlite3_int64 size) {
  WalFile& w = self(f);
  if (int rc = flush(w); rc != SQLITE_OK) return rc;
  return w.real->pMethods->xTruncate(w.real, size);
}

int walSync(sqlite3_file* f, int flags) {
  WalFile& w = self(f);
  if (int rc = flush(w); rc != SQLITE_OK) return rc;
  return w.real->pMethods->xSync(w.real, flags);
}

int walFileSize(sqlite3_file* f, sqlite3_int64* size) {
  WalFile& w = self(f);
  if (int rc = flush(w); rc != SQLITE_OK) return rc;
  return w.real->pMethods->xFileSize(w.real, size);
}

int walLock(sqlite3_file* f, int level) {
  return self(f).real->pMethods->xLock(self(f).real, level);
}
int walUnlock(sqlite3_file* f, int level) {
  return self(f).real->pMethods->xUnlock(self(f).real, level);
}
int walCheckReservedLock(sqlite3_file* f, int* out) {
  return self(f).real->pMethods->xCheckReservedLock(self(f).real, out);
}
int walFileControl(sqlite3_file* f, int op, void* arg) {
  WalFile& w = self(f);
  if (int rc = flush(w); rc != SQLITE_OK) return rc;
  return w.real->pMethods->xFileControl(w.real, op, arg);
}
int walSectorSize(sqlite3_file* f) { return self(f).real->pMethods->xSectorSize(self(f).real); }
int walDeviceCharacteristics(sqlite3_file* f) {
  return self(f).real->pMethods->xDeviceCharacteristics(self(f).real);
}

// Version 1: SQLite never maps or shares memory of a WAL file (the wal-index belongs to the
// database file, which keeps the default VFS's methods).
const sqlite3_io_methods kWalMethods = {
    1,
    walClose,
    walRead,
    walWrite,
    walTruncate,
    walSync,
    walFileSize,
    walLock,
    walUnlock,
    walCheckReservedLock,
    walFileControl,
    walSectorSize,
    walDeviceCharacteristics,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

int vfsOpen(sqlite3_vfs* /*vfs*/, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  if ((flags & SQLITE_OPEN_WAL) == 0) {
    // Not a WAL: the default VFS's file, in place (our allocation is larger than it needs).
    return base()->xOpen(base(), name, file, flags, out_flags);
  }
  WalFile* w = std::construct_at(reinterpret_cast<WalFile*>(file));
  w->file.pMethods = nullptr;  // until the real file is open: SQLite then calls no xClose
  w->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(WalFile));
  int rc = base()->xOpen(base(), name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods != nullptr) w->real->pMethods->xClose(w->real);
    std::destroy_at(w);
    file->pMethods = nullptr;
    return rc;
  }
  w->file.pMethods = &kWalMethods;
  return SQLITE_OK;
}

// Everything but xOpen is the default VFS's.
int vfsDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  return base()->xDelete(base(), name, sync_dir);
}
int vfsAccess(sqlite3_vfs*, const char* name, int flags, int* out) {
  return base()->xAccess(base(), name, flags, out);
}
int vfsFullPathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return base()->xFullPathname(base(), name, size, out);
}
void* vfsDlOpen(sqlite3_vfs*, const char* name) { return base()->xDlOpen(base(), name); }
void vfsDlError(sqlite3_vfs*, int size, char* out) { base()->xDlError(base(), size, out); }
void (*vfsDlSym(sqlite3_vfs*, void* handle, const char* symbol))() {
  return base()->xDlSym(base(), handle, symbol);
}
void vfsDlClose(sqlite3_vfs*, void* handle) { base()->xDlClose(base(), handle); }
int vfsRandomness(sqlite3_vfs*, int size, char* out) {
  return base()->xRandomness(base(), size, out);
}
int vfsSleep(sqlite3_vfs*, int micros) { return base()->xSleep(base(), micros); }
int vfsCurrentTime(sqlite3_vfs*, double* out) { return base()->xCurrentTime(base(), out); }
int vfsGetLastError(sqlite3_vfs*, int size, char* out) {
  return base()->xGetLastError(base(), size, out);
}
int vfsCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return base()->xCurrentTimeInt64(base(), out);
}

}  // namespace

const char* walBatchVfs() {
  static constexpr const char* kName = "fleetlet-wal-batch";
  static std::once_flag once;
  static sqlite3_vfs vfs{};
  std::call_once(once, [] {
    sqlite3_vfs* b = base();
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(WalFile)) + b->szOsFile;
    vfs.mxPathname = b->mxPathname;
    vfs.zName = kName;
    vfs.xOpen = vfsOpen;
    vfs.xDelete = vfsDelete;
    vfs.xAccess = vfsAccess;
    vfs.xFullPathname = vfsFullPathname;
    vfs.xDlOpen = vfsDlOpen;
    vfs.xDlError = vfsDlError;
    vfs.xDlSym = vfsDlSym;
    vfs.xDlClose = vfsDlClose;
    vfs.xRandomness = vfsRandomness;
    vfs.xSleep = vfsSleep;
    vfs.xCurrentTime = vfsCurrentTime;
    vfs.xGetLastError = vfsGetLastError;
    vfs.xCurrentTimeInt64 = vfsCurrentTimeInt64;
    sqlite3_vfs_register(&vfs, 0);
  });
  return kName;
}

}  // namespace fleetlet::sqlite
