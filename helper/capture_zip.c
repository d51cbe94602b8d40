/* A capture's bundle (do=dump:TYPE,zip) as a zip file in the spool: the
 * bundle's entries stored (the spool is local disk; the download is what it
 * is), each with a data descriptor, zip64 throughout so that a core of any
 * size fits. Written once, front to back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "helper/capture_zip.h"

typedef struct zentry {
    char *name;
    uint32_t crc, dostime;
    uint64_t size, offset;
    unsigned mode;
} zentry;

struct dp_capture_zip {
    FILE *f;
    zentry *e;
    int n, cap, open;
    int failed;
};

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static void out(dp_capture_zip *z, const void *b, size_t n)
{
    if (!z->failed && n && fwrite(b, 1, n, z->f) != n)
        z->failed = 1;
}

static uint32_t dos_time(long long t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    gmtime_r(&tt, &tm);
    if (tm.tm_year < 80)
        return (1 << 21) | (1 << 16);
    return ((uint32_t)(tm.tm_year - 80) << 25) | ((uint32_t)(tm.tm_mon + 1) << 21)
           | ((uint32_t)tm.tm_mday << 16) | ((uint32_t)tm.tm_hour << 11)
           | ((uint32_t)tm.tm_min << 5) | ((uint32_t)tm.tm_sec >> 1);
}

/* The open entry's data descriptor (zip64: 8-byte sizes). */
static void close_entry(dp_capture_zip *z)
{
    unsigned char d[24];
    zentry *e;

    if (!z->open)
        return;
    e = &z->e[z->n - 1];
    put32(d, 0x08074b50);
    put32(d + 4, e->crc);
    put64(d + 8, e->size);
    put64(d + 16, e->size);
    out(z, d, sizeof(d));
    z->open = 0;
}

static int zbegin(dp_entry_sink *s, const char *name, long long mtime, unsigned mode)
{
    dp_capture_zip *z = s->ctx;
    unsigned char h[30 + 20];
    size_t nl = strlen(name);
    zentry *e;
    long pos;

    close_entry(z);
    if (z->n == z->cap) {
        zentry *ne = realloc(z->e, sizeof(zentry) * (size_t)(z->cap ? z->cap * 2 : 64));
        if (!ne)
            return -1;
        z->e = ne;
        z->cap = z->cap ? z->cap * 2 : 64;
    }
    pos = ftell(z->f);
    e = &z->e[z->n++];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    e->mode = mode;
    e->dostime = dos_time(mtime);
    e->offset = (uint64_t)(pos < 0 ? 0 : pos);
    if (!e->name || nl > 0xffff)
        return -1;
    put32(h, 0x04034b50);
    put16(h + 4, 45);
    put16(h + 6, 0x0008);               /* sizes and CRC in the data descriptor */
    put16(h + 8, 0);                    /* stored */
    put32(h + 10, e->dostime);
    put32(h + 14, 0);
    put32(h + 18, 0xffffffffu);
    put32(h + 22, 0xffffffffu);
    put16(h + 26, (unsigned)nl);
    put16(h + 28, 20);
    put16(h + 30, 1);                   /* zip64 extra: sizes in the descriptor */
    put16(h + 32, 16);
    put64(h + 34, 0);
    put64(h + 42, 0);
    out(z, h, 30);
    out(z, name, nl);
    out(z, h + 30, 20);
    z->open = 1;
    return z->failed ? -1 : 0;
}

static int zwrite(dp_sink *s, const void *buf, size_t len)
{
    dp_capture_zip *z = s->ctx;
    zentry *e = &z->e[z->n - 1];

    if (!z->open)
        return -1;
    e->crc = (uint32_t)crc32_z(e->crc, buf, len);
    e->size += len;
    out(z, buf, len);
    return z->failed ? -1 : 0;
}

static int zend(dp_entry_sink *s)
{
    (void)s;        /* the next entry, or the end, closes it */
    return 0;
}

dp_capture_zip *dp_capture_zip_open(FILE *f, dp_entry_sink *sink)
{
    dp_capture_zip *z = calloc(1, sizeof(*z));

    if (!z)
        return NULL;
    z->f = f;
    sink->begin = zbegin;
    sink->data.write = zwrite;
    sink->data.ctx = z;
    sink->data.reserve = NULL;
    sink->data.commit = NULL;
    sink->end = zend;
    sink->ctx = z;
    return z;
}

static void central(dp_capture_zip *z, const zentry *e)
{
    unsigned char h[46 + 28];
    size_t nl = strlen(e->name);

    put32(h, 0x02014b50);
    put16(h + 4, (3 << 8) | 45);        /* made on Unix: the mode below */
    put16(h + 6, 45);
    put16(h + 8, 0x0008);
    put16(h + 10, 0);
    put32(h + 12, e->dostime);
    put32(h + 16, e->crc);
    put32(h + 20, 0xffffffffu);
    put32(h + 24, 0xffffffffu);
    put16(h + 28, (unsigned)nl);
    put16(h + 30, 28);
    put16(h + 32, 0);
    put16(h + 34, 0);
    put16(h + 36, 0);
    put32(h + 38, (uint32_t)(e->mode ? e->mode : 0100644) << 16);
    put32(h + 42, 0xffffffffu);
    put16(h + 46, 1);
    put16(h + 48, 24);
    put64(h + 50, e->size);
    put64(h + 58, e->size);
    put64(h + 66, e->offset);
    out(z, h, 46);
    out(z, e->name, nl);
    out(z, h + 46, 28);
}

int dp_capture_zip_finish(dp_capture_zip *z)
{
    unsigned char r[56 + 20 + 22];
    uint64_t cd_start, cd_end;
    long pos;
    int i, rc;

    close_entry(z);
    pos = ftell(z->f);
    cd_start = (uint64_t)(pos < 0 ? 0 : pos);
    for (i = 0; i < z->n; i++)
        central(z, &z->e[i]);
    pos = ftell(z->f);
    cd_end = (uint64_t)(pos < 0 ? 0 : pos);
    memset(r, 0, sizeof(r));
    put32(r, 0x06064b50);               /* zip64 end of central directory */
    put64(r + 4, 44);
    put16(r + 12, (3 << 8) | 45);
    put16(r + 14, 45);
    put64(r + 24, (uint64_t)z->n);
    put64(r + 32, (uint64_t)z->n);
    put64(r + 40, cd_end - cd_start);
    put64(r + 48, cd_start);
    put32(r + 56, 0x07064b50);          /* its locator */
    put64(r + 64, cd_end);
    put32(r + 72, 1);
    put32(r + 76, 0x06054b50);          /* the classic end, pointing on */
    put16(r + 84, 0xffff);
    put16(r + 86, 0xffff);
    put32(r + 88, 0xffffffffu);
    put32(r + 92, 0xffffffffu);
    out(z, r, sizeof(r));
    rc = z->failed ? -1 : 0;
    for (i = 0; i < z->n; i++)
        free(z->e[i].name);
    free(z->e);
    free(z);
    return rc;
}
