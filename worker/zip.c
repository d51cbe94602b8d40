/* Streaming zip writer (PKWARE APPNOTE 6.3): see worker/zip.h for the layout.
 * The entries here; the bytes out and the records after them in zip_records.c. */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <apr_tables.h>
#include <apr_strings.h>
#include "worker/zip_internal.h"

/* ---------------------------------------------------------------- names */

static int valid_utf8(const unsigned char *s)
{
    while (*s) {
        int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2
                : (*s & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || (n == 1 && *s < 0xc2))
            return 0;
        for (s++; n > 0; n--, s++)
            if ((*s & 0xc0) != 0x80)
                return 0;
    }
    return 1;
}

/* A name an extractor may write as given: relative, no "..", no empty
 * component, no backslash (Windows extractors treat it as a separator). */
static int safe_name(const char *name)
{
    const char *c = name;
    size_t len = strlen(name);

    if (!len || len > U16_MAX || name[0] == '/' || strchr(name, '\\'))
        return 0;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t k = e ? (size_t)(e - c) : strlen(c);
        if (k == 0 || (k == 2 && c[0] == '.' && c[1] == '.') || (k == 1 && c[0] == '.'))
            return 0;
        c += k + (e ? 1 : 0);
        if (e && !*c)
            return 0;
    }
    return 1;
}

/* DOS date/time in UTC: the server's zone means nothing where the bundle is
 * opened; the 0x5455 field carries the exact time for readers that use it. */
static void dos_time(long long mtime, uint16_t *dtime, uint16_t *ddate)
{
    time_t t = (time_t)mtime;
    struct tm tm;

    if (mtime < 315532800LL || !gmtime_r(&t, &tm) || tm.tm_year > 207) {
        *dtime = 0;
        *ddate = (0 << 9) | (1 << 5) | 1;       /* 1980-01-01 */
        return;
    }
    *dtime = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    *ddate = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

/* ---------------------------------------------------------------- zlib */

static apr_status_t zs_cleanup(void *data)
{
    dp_zip *z = data;
    if (z->zs_ready)
        deflateEnd(&z->zs);
    z->zs_ready = 0;
    dp_probe_free(z->probe);
    z->probe = NULL;
    return APR_SUCCESS;
}

/* Runs deflate with `mode` until zlib has nothing more to say for it;
 * output goes straight into the buffer, which drains when full. */
static int pump(dp_zip *z, int mode)
{
    for (;;) {
        size_t room = DP_ZIP_BUF_SIZE - z->buf_len;
        size_t made;
        int rc;

        z->zs.next_out = z->buf + z->buf_len;
        z->zs.avail_out = (uInt)room;
        rc = deflate(&z->zs, mode);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            z->failed = 1;
            return dp_fail(&z->err, 500, "deflate failed (%d).", rc);
        }
        made = room - z->zs.avail_out;
        z->buf_len += made;
        z->offset += made;
        z->cur.csize += made;
        if (z->buf_len == DP_ZIP_BUF_SIZE && dp_zip_drain(z) != 0)
            return -1;
        if (mode == Z_FINISH ? rc == Z_STREAM_END
                             : z->zs.avail_in == 0 && z->zs.avail_out != 0)
            return 0;
    }
}

/* A stretch that does not compress goes out in stored deflate blocks
 * (level 0), the rest at the writer's level; zlib first compresses what it
 * holds at the old level, into the buffer. */
static int set_level(dp_zip *z, int level)
{
    for (;;) {
        size_t room = DP_ZIP_BUF_SIZE - z->buf_len, made;
        int rc;

        z->zs.next_out = z->buf + z->buf_len;
        z->zs.avail_out = (uInt)room;
        rc = deflateParams(&z->zs, level, Z_DEFAULT_STRATEGY);
        made = room - z->zs.avail_out;
        z->buf_len += made;
        z->offset += made;
        z->cur.csize += made;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            z->failed = 1;
            return dp_fail(&z->err, 500, "deflate could not change its level (%d).", rc);
        }
        if (z->buf_len == DP_ZIP_BUF_SIZE && dp_zip_drain(z) != 0)
            return -1;
        if (rc == Z_OK) {
            z->cur_level = level;
            return 0;
        }
    }
}

/* ------------------------------------------------------------------ api */

static int es_begin(dp_entry_sink *s, const char *name, long long mtime, unsigned mode)
{
    return dp_zip_begin(s->ctx, name, mtime, mode);
}

static int es_data(dp_sink *s, const void *buf, size_t len)
{
    return dp_zip_write(s->ctx, buf, len);
}

static int es_end(dp_entry_sink *s)
{
    return dp_zip_end(s->ctx);
}

int dp_zip_open(dp_zip **out, dp_sink *sink, const dp_zip_opts *opts,
                apr_pool_t *p, dp_error *err)
{
    dp_zip *z = apr_pcalloc(p, sizeof(*z));
    int level = opts ? opts->level : -1;

    if (level < 0)
        level = DP_ZIP_DEFAULT_LEVEL;
    if (level > 9)
        return dp_fail(err, 400, "Zip compression level %d is not within 0..9.", level);
    z->sink = sink;
    z->level = level;
    z->force_zip64 = opts ? opts->force_zip64 : 0;
    z->pool = p;
    z->buf = apr_palloc(p, DP_ZIP_BUF_SIZE);
    z->cd = apr_array_make(p, 64, sizeof(cd_entry));
    /* raw deflate (negative window bits): zip has its own CRC-32 and sizes */
    if (deflateInit2(&z->zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return dp_fail(err, 500, "zlib could not start (out of memory?).");
    z->zs_ready = 1;
    z->cur_level = level;
    z->probe = level ? dp_probe_new() : NULL;     /* none: every stretch is compressed */
    apr_pool_cleanup_register(p, z, zs_cleanup, apr_pool_cleanup_null);
    z->es.begin = es_begin;
    z->es.end = es_end;
    z->es.data.write = es_data;
    z->es.data.ctx = z;
    z->es.ctx = z;
    *out = z;
    return 0;
}

dp_entry_sink *dp_zip_entry_sink(dp_zip *z)
{
    return &z->es;
}

static int usable(dp_zip *z)
{
    if (z->failed)
        return z->err.status ? -1 : dp_fail(&z->err, 500, "The zip stream was abandoned.");
    if (z->finished)
        return dp_fail(&z->err, 500, "The zip archive is already finished.");
    return 0;
}

int dp_zip_begin(dp_zip *z, const char *name, long long mtime, unsigned mode)
{
    hdr h = { .n = 0 };
    size_t nlen = strlen(name);

    if (usable(z) != 0 || (z->in_entry && dp_zip_end(z) != 0))
        return -1;
    if (!safe_name(name))
        return dp_fail(&z->err, 400, "'%s' is not a safe name inside a zip.", name);
    memset(&z->cur, 0, sizeof(z->cur));
    z->cur.name = apr_pstrdup(z->pool, name);
    z->cur.offset = z->offset;
    /* a symbolic link is S_IFLNK with its target as the data (Info-ZIP's
     * convention, which unzip restores); anything else is a regular file */
    z->cur.mode = mode == DP_ENTRY_SYMLINK ? mode : 0100000 | (mode & 07777);
    z->cur.mtime = mtime;
    z->cur.flags = FLAG_DESCRIPTOR | (valid_utf8((const unsigned char *)name) ? FLAG_UTF8 : 0);
    z->cur.crc = (uint32_t)crc32(0L, Z_NULL, 0);
    dos_time(mtime, &z->cur.dtime, &z->cur.ddate);

    /* sizes and CRC unknown: zero here, then in the descriptor */
    put32(&h, SIG_LOCAL);
    put16(&h, z->force_zip64 ? VER_ZIP64 : VER_DEFLATE);
    put16(&h, z->cur.flags);
    put16(&h, METHOD_DEFLATE);
    put16(&h, z->cur.dtime);
    put16(&h, z->cur.ddate);
    put32(&h, 0);
    put32(&h, 0);
    put32(&h, 0);
    put16(&h, (unsigned)nlen);
    put16(&h, dp_zip_has_unix_time(mtime) ? 9 : 0);
    if (dp_zip_emit(z, h.b, h.n) != 0 || dp_zip_emit(z, name, nlen) != 0)
        return -1;
    h.n = 0;
    dp_zip_put_unix_time(&h, mtime);
    if (dp_zip_emit(z, h.b, h.n) != 0)
        return -1;
    z->in_entry = 1;
    return 0;
}

int dp_zip_write(dp_zip *z, const void *buf, size_t len)
{
    const unsigned char *b = buf;

    if (usable(z) != 0)
        return -1;
    if (!z->in_entry)
        return dp_fail(&z->err, 500, "Zip data written outside an entry.");
    z->unprobed += len;
    if (z->probe && len >= PROBE_MIN && z->unprobed >= PROBE_EVERY) {
        int level = dp_probe_compresses(z->probe, buf, len) ? z->level : 0;
        z->unprobed = 0;
        if (level != z->cur_level && set_level(z, level) != 0)
            return -1;
    }
    if (z->cur_level != z->level)
        z->stored += len;
    while (len) {
        uInt k = len > DEFLATE_STEP ? DEFLATE_STEP : (uInt)len;
        z->cur.crc = (uint32_t)crc32(z->cur.crc, b, k);
        z->cur.usize += k;
        z->zs.next_in = (Bytef *)b;
        z->zs.avail_in = k;
        if (pump(z, Z_NO_FLUSH) != 0)
            return -1;
        b += k;
        len -= k;
    }
    return 0;
}

int dp_zip_end(dp_zip *z)
{
    hdr h = { .n = 0 };

    if (usable(z) != 0)
        return -1;
    if (!z->in_entry)
        return 0;
    z->zs.next_in = Z_NULL;
    z->zs.avail_in = 0;
    if (pump(z, Z_FINISH) != 0)
        return -1;
    deflateReset(&z->zs);
    z->in_entry = 0;

    put32(&h, SIG_DESC);
    put32(&h, z->cur.crc);
    if (dp_zip_entry_zip64(z, &z->cur)) {
        put64(&h, z->cur.csize);
        put64(&h, z->cur.usize);
    }
    else {
        put32(&h, (uint32_t)z->cur.csize);
        put32(&h, (uint32_t)z->cur.usize);
    }
    if (dp_zip_emit(z, h.b, h.n) != 0)
        return -1;
    *(cd_entry *)apr_array_push(z->cd) = z->cur;
    return 0;
}

int dp_zip_flush(dp_zip *z)
{
    if (usable(z) != 0)
        return -1;
    if (z->in_entry) {
        z->zs.next_in = Z_NULL;
        z->zs.avail_in = 0;
        if (pump(z, Z_SYNC_FLUSH) != 0)
            return -1;
    }
    return dp_zip_drain(z);
}

/* The ZIP64 extra of a central record: only the fields whose 32-bit slot
 * is saturated, in the order the spec gives (APPNOTE 4.5.3). */
int dp_zip_finish(dp_zip *z)
{
    if (usable(z) != 0 || dp_zip_end(z) != 0 || dp_zip_write_directory(z) != 0
        || dp_zip_drain(z) != 0)
        return -1;
    z->finished = 1;
    zs_cleanup(z);
    return 0;
}

void dp_zip_abort(dp_zip *z)
{
    z->failed = 1;
    z->buf_len = 0;
    zs_cleanup(z);
}

const dp_error *dp_zip_error(const dp_zip *z)
{
    return &z->err;
}

unsigned long long dp_zip_offset(const dp_zip *z)
{
    return z->offset;
}

unsigned long long dp_zip_stored(const dp_zip *z)
{
    return z->stored;
}

unsigned long dp_zip_count(const dp_zip *z)
{
    return (unsigned long)z->cd->nelts + (z->in_entry ? 1 : 0);
}
