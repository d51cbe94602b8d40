/* What the zip writer's two files share (worker/zip.c: the entries;
 * worker/zip_records.c: the output buffer, the central directory and the
 * end records). Internal to worker/: not part of worker/zip.h's API. */
#ifndef DP_ZIP_INTERNAL_H
#define DP_ZIP_INTERNAL_H

#include <stdint.h>
#include <zlib.h>
#include <apr_tables.h>
#include "common/probe.h"
#include "worker/zip.h"

#define SIG_LOCAL     0x04034b50U
#define SIG_DESC      0x08074b50U
#define SIG_CENTRAL   0x02014b50U
#define SIG_Z64_END   0x06064b50U
#define SIG_Z64_LOC   0x07064b50U
#define SIG_END       0x06054b50U

#define FLAG_DESCRIPTOR 0x0008
#define FLAG_UTF8       0x0800
#define METHOD_DEFLATE  8
#define VER_DEFLATE     20
#define VER_ZIP64       45
#define MADE_BY_UNIX    (3 << 8)

#define U32_MAX 0xffffffffULL
#define U16_MAX 0xffffU

/* zlib takes at most a uInt per call; keep each step well below it. */
#define DEFLATE_STEP (1U << 30)
/* A write at least PROBE_MIN long is probed (common/probe.h) when it is
 * PROBE_EVERY long (the relay's slots) or that much has been written since
 * the last probe (a probe compresses 16 KiB, a few per cent of that): stored
 * blocks for what does not compress, where deflate level 1 crawls. */
#define PROBE_MIN (64u * 1024)
#define PROBE_EVERY (256u * 1024)

typedef struct cd_entry {
    const char *name;
    uint64_t csize, usize, offset;
    uint32_t crc;
    uint16_t flags, dtime, ddate;
    unsigned mode;
    long long mtime;
} cd_entry;

struct dp_zip {
    dp_entry_sink es;           /* the dp_entry_sink face; ctx = this */
    dp_sink *sink;
    z_stream zs;
    int zs_ready;
    int level, force_zip64;
    int cur_level;              /* level, or 0 for a stretch that does not compress */
    dp_probe *probe;
    uint64_t unprobed;          /* bytes written since the last probe */
    uint64_t stored;            /* bytes written while at level 0 for that */
    int in_entry, failed, finished;
    unsigned char *buf;         /* DP_ZIP_BUF_SIZE bytes waiting for the sink */
    size_t buf_len;
    uint64_t offset;            /* archive bytes produced so far */
    cd_entry cur;
    apr_array_header_t *cd;     /* cd_entry, one per finished entry */
    apr_pool_t *pool;
    dp_error err;
};

/* Little-endian field builders over a small header buffer. */
typedef struct hdr {
    unsigned char b[128];
    size_t n;
} hdr;

static inline void put16(hdr *h, unsigned v)
{
    h->b[h->n++] = v & 0xff;
    h->b[h->n++] = (v >> 8) & 0xff;
}

static inline void put32(hdr *h, uint32_t v)
{
    put16(h, v & 0xffff);
    put16(h, v >> 16);
}

static inline void put64(hdr *h, uint64_t v)
{
    put32(h, (uint32_t)v);
    put32(h, (uint32_t)(v >> 32));
}

static inline uint32_t sat32(uint64_t v)
{
    return v >= U32_MAX ? (uint32_t)U32_MAX : (uint32_t)v;
}

/* zip_records.c: bytes into the buffer (drained into the sink when full),
 * the extended time field, whether an entry needs zip64 fields, and the
 * central directory with the end records after the last entry */
int dp_zip_emit(dp_zip *z, const void *p, size_t n);
int dp_zip_drain(dp_zip *z);
int dp_zip_has_unix_time(long long mtime);
void dp_zip_put_unix_time(hdr *h, long long mtime);
int dp_zip_entry_zip64(const dp_zip *z, const cd_entry *e);
int dp_zip_write_directory(dp_zip *z);

#endif
