/* The zip writer against a small zip reader written here from the spec:
 * structure (central directory, ZIP64 records), contents (inflate + CRC),
 * names, flush, and the promise that a failed stream has no directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>
#include <apr_general.h>
#include "worker/zip.h"

typedef struct membuf {
    unsigned char *b;
    size_t len, cap;
    size_t fail_after;          /* refuse writes past this many bytes; 0 = never */
    int writes;
} membuf;

static int mem_write(dp_sink *s, const void *buf, size_t len)
{
    membuf *m = s->ctx;
    m->writes++;
    if (m->fail_after && m->len + len > m->fail_after)
        return -1;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->b = realloc(m->b, m->cap);
    }
    memcpy(m->b + m->len, buf, len);
    m->len += len;
    return 0;
}

static uint64_t rd(const unsigned char *p, int n)
{
    uint64_t v = 0;
    while (n--)
        v = (v << 8) | p[n];
    return v;
}

typedef struct entry {
    char name[256];
    uint64_t csize, usize, offset;
    uint32_t crc, ext;
    unsigned flags, made_by, extra_len;
} entry;

/* Finds the end records and fills up to max entries from the central
 * directory; returns the entry count (from the ZIP64 record when present). */
static uint64_t read_cd(const membuf *m, entry *es, size_t max, int *zip64)
{
    const unsigned char *b = m->b, *eocd = b + m->len - 22;
    uint64_t n, cd_off, i;
    const unsigned char *p;

    assert_true(m->len >= 22);
    assert_int_equal(rd(eocd, 4), 0x06054b50);
    n = rd(eocd + 10, 2);
    cd_off = rd(eocd + 16, 4);
    *zip64 = 0;
    if (n == 0xffff || cd_off == 0xffffffff) {
        const unsigned char *loc = eocd - 20, *z;
        assert_int_equal(rd(loc, 4), 0x07064b50);
        z = b + rd(loc + 8, 8);
        assert_int_equal(rd(z, 4), 0x06064b50);
        n = rd(z + 32, 8);
        cd_off = rd(z + 48, 8);
        *zip64 = 1;
    }
    p = b + cd_off;
    for (i = 0; i < n; i++) {
        unsigned nl, xl, cl;
        entry e = { .name = "" };
        assert_int_equal(rd(p, 4), 0x02014b50);
        e.made_by = rd(p + 4, 2);
        e.flags = rd(p + 8, 2);
        e.crc = rd(p + 16, 4);
        e.csize = rd(p + 20, 4);
        e.usize = rd(p + 24, 4);
        nl = rd(p + 28, 2);
        xl = rd(p + 30, 2);
        cl = rd(p + 32, 2);
        e.ext = rd(p + 38, 4);
        e.offset = rd(p + 42, 4);
        e.extra_len = xl;
        memcpy(e.name, p + 46, nl < 255 ? nl : 255);
        /* ZIP64 extra: the saturated fields in order */
        for (const unsigned char *x = p + 46 + nl; x < p + 46 + nl + xl;) {
            unsigned id = rd(x, 2), sz = rd(x + 2, 2);
            const unsigned char *v = x + 4;
            if (id == 1) {
                if (e.usize == 0xffffffff) { e.usize = rd(v, 8); v += 8; }
                if (e.csize == 0xffffffff) { e.csize = rd(v, 8); v += 8; }
                if (e.offset == 0xffffffff) { e.offset = rd(v, 8); v += 8; }
            }
            x += 4 + sz;
        }
        if (i < max)
            es[i] = e;
        p += 46 + nl + xl + cl;
    }
    return n;
}

/* Inflates one entry's data from its local header; returns the bytes. */
static unsigned char *inflate_entry(const membuf *m, const entry *e)
{
    const unsigned char *lh = m->b + e->offset;
    unsigned char *out = malloc(e->usize + 1);
    z_stream zs = { 0 };

    assert_int_equal(rd(lh, 4), 0x04034b50);
    assert_int_equal(rd(lh + 6, 2), e->flags);
    zs.next_in = (unsigned char *)lh + 30 + rd(lh + 26, 2) + rd(lh + 28, 2);
    zs.avail_in = e->csize;
    zs.next_out = out;
    zs.avail_out = e->usize + 1;
    assert_int_equal(inflateInit2(&zs, -MAX_WBITS), Z_OK);
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.total_out, e->usize);
    /* the data descriptor follows, with the same CRC and sizes */
    assert_int_equal(rd(zs.next_in, 4), 0x08074b50);
    assert_int_equal(rd(zs.next_in + 4, 4), e->crc);
    assert_int_equal(rd(zs.next_in + 8, 4), e->csize);
    inflateEnd(&zs);
    assert_int_equal(crc32(0, out, e->usize), e->crc);
    return out;
}

static apr_pool_t *pool;

static dp_zip *open_zip(membuf *m, dp_sink *s, int level, int force64)
{
    dp_zip *z;
    dp_error err = { 0 };
    dp_zip_opts o = { .level = level, .force_zip64 = force64 };
    memset(s, 0, sizeof(*s));
    s->write = mem_write;
    s->ctx = m;
    assert_int_equal(dp_zip_open(&z, s, &o, pool, &err), 0);
    return z;
}

static void add(dp_zip *z, const char *name, const void *b, size_t n, unsigned mode)
{
    assert_int_equal(dp_zip_begin(z, name, 1700000000, mode), 0);
    assert_int_equal(dp_zip_write(z, b, n), 0);
    assert_int_equal(dp_zip_end(z), 0);
}

static void test_roundtrip(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, -1, 0);
    entry es[4];
    int z64, i;
    size_t big = 300 * 1024;
    unsigned char *pat = malloc(big), *got;
    (void)state;

    for (i = 0; i < (int)big; i++)
        pat[i] = (unsigned char)(i * 7 + (i >> 9));
    add(z, "core", pat, big, 0644);
    add(z, "open-gdb.sh", "#!/bin/sh\n", 10, 0755);
    assert_int_equal(dp_zip_begin(z, "empty", 1700000000, 0600), 0);
    add(z, "sysroot/usr/lib/x\xc3\xa9.so", "abc", 3, 0644);   /* ends "empty" */
    assert_int_equal(dp_zip_finish(z), 0);

    assert_int_equal(read_cd(&m, es, 4, &z64), 4);
    assert_false(z64);
    assert_string_equal(es[0].name, "core");
    assert_int_equal(es[0].usize, big);
    got = inflate_entry(&m, &es[0]);
    assert_memory_equal(got, pat, big);
    free(got);
    assert_int_equal(es[1].ext >> 16, 0100755);
    assert_int_equal(es[1].made_by >> 8, 3);
    assert_string_equal(es[2].name, "empty");
    assert_int_equal(es[2].usize, 0);
    free(inflate_entry(&m, &es[2]));
    assert_true(es[3].flags & 0x0800);
    assert_int_equal(es[0].flags & 0x0808, 0x0808);
    got = inflate_entry(&m, &es[3]);
    assert_memory_equal(got, "abc", 3);
    free(got);
    free(pat);
    free(m.b);
}

/* A link is S_IFLNK|0777 with its target as the data; other file-type
 * bits a caller passes never make anything but a regular file. */
static void test_symlink(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, -1, 0);
    entry es[3];
    unsigned char *got;
    int z64;
    (void)state;

    add(z, "sysroot/lib", "usr/lib", 7, DP_ENTRY_SYMLINK);
    add(z, "dir", "x", 1, 040755);
    add(z, "dev", "x", 1, 020644);
    assert_int_equal(dp_zip_finish(z), 0);
    assert_int_equal(read_cd(&m, es, 3, &z64), 3);
    assert_int_equal(es[0].ext >> 16, 0120777);
    assert_int_equal(es[0].made_by >> 8, 3);
    got = inflate_entry(&m, &es[0]);
    assert_memory_equal(got, "usr/lib", 7);
    free(got);
    assert_int_equal(es[1].ext >> 16, 0100755);
    assert_int_equal(es[2].ext >> 16, 0100644);
    free(m.b);
}

static void test_levels(void **state)
{
    static const int levels[] = { 0, 1, 6, 9 };
    unsigned char text[50000];
    size_t i, k;
    (void)state;

    for (i = 0; i < sizeof(text); i++)
        text[i] = "the quick brown fox "[i % 20];
    for (k = 0; k < 4; k++) {
        membuf m = { 0 };
        dp_sink s;
        dp_zip *z = open_zip(&m, &s, levels[k], 0);
        entry e;
        int z64;
        unsigned char *got;
        add(z, "t.txt", text, sizeof(text), 0644);
        assert_int_equal(dp_zip_finish(z), 0);
        assert_int_equal(read_cd(&m, &e, 1, &z64), 1);
        if (levels[k] == 0)
            assert_true(e.csize > sizeof(text));
        else
            assert_true(e.csize < sizeof(text) / 20);
        got = inflate_entry(&m, &e);
        assert_memory_equal(got, text, sizeof(text));
        free(got);
        free(m.b);
    }
}

static void test_force_zip64(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 6, 1);
    entry es[2];
    int z64;
    unsigned char *got;
    (void)state;

    add(z, "a", "hello", 5, 0644);
    add(z, "b", "world!", 6, 0644);
    assert_int_equal(dp_zip_finish(z), 0);
    assert_int_equal(read_cd(&m, es, 2, &z64), 2);
    assert_true(z64);
    assert_int_equal(es[1].usize, 6);
    assert_true(es[1].offset > 0);
    /* with ZIP64 the descriptor has 8-byte sizes: check by hand */
    got = malloc(6);
    {
        const unsigned char *lh = m.b + es[1].offset;
        const unsigned char *d = lh + 30 + rd(lh + 26, 2) + rd(lh + 28, 2) + es[1].csize;
        assert_int_equal(rd(d, 4), 0x08074b50);
        assert_int_equal(rd(d + 8, 8), es[1].csize);
        assert_int_equal(rd(d + 16, 8), 6);
    }
    free(got);
    free(m.b);
}

static void test_many_entries(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 1, 0);
    entry es[1];
    int z64;
    char name[32];
    unsigned i;
    (void)state;

    for (i = 0; i < 70000; i++) {
        snprintf(name, sizeof(name), "d/%u", i);
        add(z, name, name, strlen(name), 0644);
    }
    assert_int_equal(dp_zip_count(z), 70000);
    assert_int_equal(dp_zip_finish(z), 0);
    assert_int_equal(read_cd(&m, es, 1, &z64), 70000);
    assert_true(z64);
    free(m.b);
}

static void test_unsafe_names(void **state)
{
    static const char *bad[] = { "", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "./a",
                                 "a\\b", "a/.." };
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 1, 0);
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(dp_zip_begin(z, bad[i], 0, 0644), -1);
        assert_int_equal(dp_zip_error(z)->status, 400);
    }
    assert_int_equal(dp_zip_begin(z, "a..b/..c", 0, 0644), 0);
    assert_int_equal(dp_zip_finish(z), 0);
    free(m.b);
}

static void test_flush(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 6, 0);
    size_t before;
    (void)state;

    assert_int_equal(dp_zip_begin(z, "log", 0, 0644), 0);
    assert_int_equal(dp_zip_write(z, "line one\n", 9), 0);
    assert_int_equal(m.len, 0);                 /* still buffered */
    assert_int_equal(dp_zip_flush(z), 0);
    before = m.len;
    assert_true(before > 30 + 3 + 9 - 9);
    /* a sync flush ends on a byte boundary with 00 00 ff ff */
    assert_memory_equal(m.b + m.len - 4, "\x00\x00\xff\xff", 4);
    assert_int_equal(dp_zip_offset(z), m.len);
    assert_int_equal(dp_zip_write(z, "line two\n", 9), 0);
    assert_int_equal(dp_zip_finish(z), 0);
    {
        entry e;
        int z64;
        unsigned char *got;
        assert_int_equal(read_cd(&m, &e, 1, &z64), 1);
        got = inflate_entry(&m, &e);
        assert_memory_equal(got, "line one\nline two\n", 18);
        free(got);
    }
    free(m.b);
}

/* The reader goes away after N bytes: the writer fails from then on and the
 * output never holds an end-of-central-directory record. */
static void test_failing_sink(void **state)
{
    membuf m = { .fail_after = 100000 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 0, 0);
    unsigned char *junk = calloc(1, 1 << 20);
    size_t i;
    int rc = 0;
    (void)state;

    assert_int_equal(dp_zip_begin(z, "core", 0, 0644), 0);
    for (i = 0; i < 8 && rc == 0; i++)
        rc = dp_zip_write(z, junk, 1 << 20);
    assert_int_equal(rc, -1);
    assert_int_equal(dp_zip_error(z)->status, 500);
    assert_int_equal(dp_zip_end(z), -1);
    assert_int_equal(dp_zip_finish(z), -1);
    assert_true(m.len <= 100000);
    for (i = 0; i + 4 <= m.len; i++)
        assert_false(rd(m.b + i, 4) == 0x06054b50 || rd(m.b + i, 4) == 0x02014b50);
    free(junk);
    free(m.b);
}

static void test_abort(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 1, 0);
    (void)state;

    add(z, "a", "x", 1, 0644);
    dp_zip_abort(z);
    assert_int_equal(dp_zip_finish(z), -1);
    assert_int_equal(m.len, 0);
    free(m.b);
}

/* The dp_entry_sink face drives the same writer. */
static void test_entry_sink(void **state)
{
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, 1, 0);
    dp_entry_sink *es = dp_zip_entry_sink(z);
    entry e;
    int z64;
    unsigned char *got;
    (void)state;

    assert_int_equal(es->begin(es, "manifest.json", 1700000000, 0644), 0);
    assert_int_equal(dp_sink_write(&es->data, "{}", 2), 0);
    assert_int_equal(es->end(es), 0);
    assert_int_equal(dp_zip_finish(z), 0);
    assert_int_equal(read_cd(&m, &e, 1, &z64), 1);
    got = inflate_entry(&m, &e);
    assert_memory_equal(got, "{}", 2);
    free(got);
    free(m.b);
}

/* Random bytes (written as the relay writes: 512 KiB at a time) go out in
 * stored blocks, the text and zeros around them compressed; all round-trip. */
static void test_incompressible_stored(void **state)
{
    enum { PART = 2 << 20, WRITE = 512 << 10 };
    membuf m = { 0 };
    dp_sink s;
    dp_zip *z = open_zip(&m, &s, -1, 0);
    unsigned char *b = calloc(3, PART), *got;
    uint64_t x = 88172645463325252ULL;
    entry es[1];
    int z64;
    size_t i;
    (void)state;

    for (i = 0; i < PART; i++)
        b[i] = (unsigned char)("the quick brown fox "[i % 20]);
    for (i = PART; i < 2 * PART; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(b + i, &x, 8);
    }
    assert_int_equal(dp_zip_begin(z, "core", 1700000000, 0600), 0);
    for (i = 0; i < 3 * PART; i += WRITE)
        assert_int_equal(dp_zip_write(z, b + i, WRITE), 0);
    assert_int_equal(dp_zip_finish(z), 0);
    assert_true(dp_zip_stored(z) >= PART - (1 << 20) && dp_zip_stored(z) <= PART + (1 << 20));
    assert_int_equal(read_cd(&m, es, 1, &z64), 1);
    assert_true(es[0].csize < PART + PART / 16);
    got = inflate_entry(&m, &es[0]);
    assert_memory_equal(got, b, 3 * PART);
    free(got);
    free(b);
    free(m.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_symlink),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_force_zip64),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_unsafe_names),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_failing_sink),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_entry_sink),
        cmocka_unit_test(test_incompressible_stored),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
