/* The zip stream's bytes: the output buffer every header and deflate output
 * goes through, and the records after the last entry -- the central
 * directory, one record per entry, and the end records (zip64 ones when any
 * field overflows or zip64 is forced). zip.c writes the entries. */
#include <stdint.h>
#include <string.h>
#include "worker/zip_internal.h"

/* --------------------------------------------------------------- output */

static int fail_sink(dp_zip *z)
{
    z->failed = 1;
    return dp_fail(&z->err, 500, "The zip stream's reader went away after %llu bytes.",
                   (unsigned long long)z->offset);
}

int dp_zip_drain(dp_zip *z)
{
    if (z->buf_len && dp_sink_write(z->sink, z->buf, z->buf_len) != 0)
        return fail_sink(z);
    z->buf_len = 0;
    return 0;
}

/* Headers go through the same buffer as deflate output, so small entries
 * cost few sink writes. */
int dp_zip_emit(dp_zip *z, const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n) {
        size_t k = DP_ZIP_BUF_SIZE - z->buf_len;
        if (k > n)
            k = n;
        memcpy(z->buf + z->buf_len, b, k);
        z->buf_len += k;
        z->offset += k;
        b += k;
        n -= k;
        if (z->buf_len == DP_ZIP_BUF_SIZE && dp_zip_drain(z) != 0)
            return -1;
    }
    return 0;
}

int dp_zip_has_unix_time(long long mtime)
{
    return mtime >= INT32_MIN && mtime <= INT32_MAX;
}

void dp_zip_put_unix_time(hdr *h, long long mtime)
{
    if (!dp_zip_has_unix_time(mtime))
        return;
    put16(h, 0x5455);
    put16(h, 5);
    h->b[h->n++] = 1;                           /* mtime present */
    put32(h, (uint32_t)(int32_t)mtime);
}

int dp_zip_entry_zip64(const dp_zip *z, const cd_entry *e)
{
    return z->force_zip64 || e->csize >= U32_MAX || e->usize >= U32_MAX;
}

static void put_zip64_extra(dp_zip *z, hdr *h, const cd_entry *e)
{
    int all = z->force_zip64;
    size_t at = h->n;

    put16(h, 0x0001);
    put16(h, 0);
    if (all || e->usize >= U32_MAX)
        put64(h, e->usize);
    if (all || e->csize >= U32_MAX)
        put64(h, e->csize);
    if (all || e->offset >= U32_MAX)
        put64(h, e->offset);
    if (h->n == at + 4)
        h->n = at;                              /* nothing needed it */
    else
        h->b[at + 2] = (unsigned char)(h->n - at - 4);
}

static int write_central(dp_zip *z, const cd_entry *e)
{
    hdr h = { .n = 0 }, x = { .n = 0 };
    int big = dp_zip_entry_zip64(z, e) || e->offset >= U32_MAX;
    size_t nlen = strlen(e->name);

    put_zip64_extra(z, &x, e);
    dp_zip_put_unix_time(&x, e->mtime);
    put32(&h, SIG_CENTRAL);
    put16(&h, MADE_BY_UNIX | VER_ZIP64);
    put16(&h, big ? VER_ZIP64 : VER_DEFLATE);
    put16(&h, e->flags);
    put16(&h, METHOD_DEFLATE);
    put16(&h, e->dtime);
    put16(&h, e->ddate);
    put32(&h, e->crc);
    put32(&h, z->force_zip64 ? (uint32_t)U32_MAX : sat32(e->csize));
    put32(&h, z->force_zip64 ? (uint32_t)U32_MAX : sat32(e->usize));
    put16(&h, (unsigned)nlen);
    put16(&h, (unsigned)x.n);
    put16(&h, 0);                               /* comment */
    put16(&h, 0);                               /* disk */
    put16(&h, 0);                               /* internal attributes */
    put32(&h, (uint32_t)e->mode << 16);         /* S_IFREG or S_IFLNK | mode */
    put32(&h, z->force_zip64 ? (uint32_t)U32_MAX : sat32(e->offset));
    if (dp_zip_emit(z, h.b, h.n) != 0 || dp_zip_emit(z, e->name, nlen) != 0)
        return -1;
    return dp_zip_emit(z, x.b, x.n);
}

static int write_end(dp_zip *z, uint64_t cd_off, uint64_t cd_size)
{
    hdr h = { .n = 0 };
    uint64_t n = (uint64_t)z->cd->nelts;
    int big = z->force_zip64 || n >= U16_MAX || cd_off >= U32_MAX || cd_size >= U32_MAX;
    uint64_t z64_off = z->offset;

    if (big) {
        put32(&h, SIG_Z64_END);
        put64(&h, 44);                          /* size of the rest of this record */
        put16(&h, MADE_BY_UNIX | VER_ZIP64);
        put16(&h, VER_ZIP64);
        put32(&h, 0);
        put32(&h, 0);
        put64(&h, n);
        put64(&h, n);
        put64(&h, cd_size);
        put64(&h, cd_off);
        put32(&h, SIG_Z64_LOC);
        put32(&h, 0);
        put64(&h, z64_off);
        put32(&h, 1);
    }
    put32(&h, SIG_END);
    put16(&h, 0);
    put16(&h, 0);
    put16(&h, big ? U16_MAX : (unsigned)n);
    put16(&h, big ? U16_MAX : (unsigned)n);
    put32(&h, big ? (uint32_t)U32_MAX : (uint32_t)cd_size);
    put32(&h, big ? (uint32_t)U32_MAX : (uint32_t)cd_off);
    put16(&h, 0);                               /* comment */
    return dp_zip_emit(z, h.b, h.n);
}

int dp_zip_write_directory(dp_zip *z)
{
    uint64_t cd_off = z->offset;
    int i;

    for (i = 0; i < z->cd->nelts; i++)
        if (write_central(z, &APR_ARRAY_IDX(z->cd, i, cd_entry)) != 0)
            return -1;
    return write_end(z, cd_off, z->offset - cd_off);
}
