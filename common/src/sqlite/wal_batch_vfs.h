#pragma once
// A SQLite VFS that writes each transaction's WAL frames with one system call.
//
// SQLite writes a WAL frame as two pwrite()s (its 24-byte header, then the page), so a
// commit touching 12 pages costs 24 system calls. Through this VFS, writes that extend a WAL
// file contiguously are gathered in memory and written with one pwrite() when the commit
// frame (a frame header whose "database size after commit" field is not zero; SQLite's WAL
// file format, https://sqlite.org/fileformat2.html#walformat) has been written, before
// SQLite's xWrite call for it returns. SQLite publishes frames to readers (the wal-index)
// only after its writes returned, so other connections never see a frame that is not in
// the file, and a failed write fails the commit: SQLite rolls the transaction back.
//
// Everything else about the file sees the same bytes in the same order as without the VFS:
// any other operation on a WAL file (read, sync, truncate, size, a write elsewhere, close)
// first writes what is gathered; at most kMaxGathered bytes are held. Database, journal and
// temporary files are the default VFS's, untouched.
//
// Thread rules: as SQLite's (a connection's files are used by one thread at a time).
#include <cstddef>

namespace fleetlet::sqlite {

// The VFS's name for sqlite3_open_v2(); registered on first use (never the default VFS).
const char* walBatchVfs();

// At most this much is gathered: the default (unix) VFS writes at most 128 KiB - 1 bytes per
// call (it masks the size to 17 bits; SQLite itself writes at most one 64 KiB page). A group
// commit of the event store is ~12 pages of 4 KiB, ~50 KB.
inline constexpr std::size_t kMaxGathered = std::size_t{120} << 10;

}  // namespace fleetlet::sqlite
