/* A streaming zip writer with no httpd in it: entries are deflated (raw
 * deflate, zlib) as their bytes arrive and go straight to a dp_sink, so the
 * archive is never held anywhere. Memory is constant per archive (one output
 * buffer plus zlib's state) and a small record per entry for the central
 * directory.
 *
 * Layout choices, each for a reader on another machine:
 * - sizes are not known up front, so every entry has a data descriptor
 *   (flag bit 3); the descriptor carries 8-byte sizes only when a size passed
 *   4 GiB (as Go's and Java's writers do; readers take sizes from the central
 *   directory, which is authoritative);
 * - ZIP64 extra fields (0x0001) in the central directory for every value that
 *   does not fit in 32 bits, and the ZIP64 end record + locator when an offset,
 *   the directory or the entry count (> 65535) needs them;
 * - version made by = Unix, the Unix mode in the external attributes, DOS
 *   time in UTC plus an extended timestamp (0x5455) with the exact mtime,
 *   the UTF-8 flag (bit 11) on names that are valid UTF-8;
 * - the central directory is written by dp_zip_finish only: a stream that
 *   fails half-way never gets one, so every reader rejects it instead of
 *   showing a silently truncated bundle. */
#ifndef DP_ZIP_H
#define DP_ZIP_H

#include <stddef.h>
#include <apr_pools.h>
#include "common/dp_error.h"
#include "common/sink.h"
#include "common/entries.h"

/* Level 1: on a core (zero pages, code, heap, some random data) it removes
 * 76% of the bytes at 163 MiB/s; level 6 removes 77% at 93 MiB/s, level 9
 * the same at 13 MiB/s. bench/zip_bench.py prints the table. A stretch a
 * probe finds incompressible (common/probe.h) goes out at level 0, stored
 * blocks, about ten times faster than level 1 on such bytes. */
#define DP_ZIP_DEFAULT_LEVEL 1

/* Bytes handed to the sink at a time (except on flush and finish). */
#define DP_ZIP_BUF_SIZE (64 * 1024)

typedef struct dp_zip_opts {
    int level;          /* 0 (store in deflate blocks) .. 9; -1 = DP_ZIP_DEFAULT_LEVEL */
    int force_zip64;    /* tests: ZIP64 records for every entry and the end */
} dp_zip_opts;

typedef struct dp_zip dp_zip;

/* A writer over sink; opts NULL = defaults. zlib's state is freed with p. */
int dp_zip_open(dp_zip **out, dp_sink *sink, const dp_zip_opts *opts,
                apr_pool_t *p, dp_error *err);

/* The same writer as a dp_entry_sink (begin / data / end), for producers that
 * only know that interface (the bundle, the helper's frames). */
dp_entry_sink *dp_zip_entry_sink(dp_zip *z);

/* Start an entry (ends the current one if any). name: relative, '/'
 * separated, no ".." component, no leading '/'; mode: Unix permission bits
 * of a regular file, or DP_ENTRY_SYMLINK: a symbolic link whose data is the
 * link's target (unzip restores it as a link). */
int dp_zip_begin(dp_zip *z, const char *name, long long mtime, unsigned mode);
/* Bytes of the current entry. */
int dp_zip_write(dp_zip *z, const void *buf, size_t len);
/* End the current entry: finish its deflate stream and write its descriptor. */
int dp_zip_end(dp_zip *z);
/* Push out everything written so far (Z_SYNC_FLUSH inside an entry), so a
 * consumer waiting on the stream sees it now; costs a few bytes. */
int dp_zip_flush(dp_zip *z);
/* End the current entry, write the central directory and end records, hand
 * everything to the sink. Only after this is the archive valid. */
int dp_zip_finish(dp_zip *z);

/* Give up: nothing more is written, in particular no central directory.
 * Every later call returns -1. */
void dp_zip_abort(dp_zip *z);

/* Why the last call failed (status 500 for a sink failure, 400 for a name). */
const dp_error *dp_zip_error(const dp_zip *z);
/* Bytes handed to the sink or buffered so far (the archive offset). */
unsigned long long dp_zip_offset(const dp_zip *z);
/* Bytes of entries passed through in stored blocks because a probe found
 * they would not compress (random, encrypted, compressed memory). */
unsigned long long dp_zip_stored(const dp_zip *z);
/* Entries begun so far. */
unsigned long dp_zip_count(const dp_zip *z);

#endif
