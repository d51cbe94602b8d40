/* The environment scrubber alone: entries, names, values and fragments of 8
 * bytes or more are zeroed wherever they are, whole short entries too, public
 * runs (mapped paths) stay; a stream cut anywhere (one byte at a time, across
 * the internal buffer, or in rooms a next sink lends) gives the same bytes
 * as one buffer; and a naive
 * reference agrees on random streams made of pieces of the environment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "dump/scrub.h"

static const char ENV[] = "SECRET_TOKEN=c2VjcmV0LXZhbHVlLW9mLXRoZS10ZXN0\0"
                          "TZ=UTC\0A=1\0SHORTNAMEVAR=xy\0"
                          "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu\0"
                          "PIN=4711\0";
static const char *const PUBLIC[] = { "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/sbin/apache2" };
#define NPUBLIC (sizeof(PUBLIC) / sizeof(PUBLIC[0]))

/* The look-up of the environment's pieces runs vectorized (AVX2) where the
 * CPU has it; the tests that compare with the reference run both ways. */
static int simd = 1;

static dp_scrub *make(void)
{
    dp_scrub *s = dp_scrub_new(ENV, sizeof(ENV) - 1, PUBLIC, NPUBLIC);
    assert_non_null(s);
    dp_scrub_use_simd(s, simd);
    return s;
}

/* Puts text at offset 100 of a 300-byte buffer of 0x01 bytes, scrubs it, and
 * says whether [100, 100+len) became all zeros with the rest untouched. */
static int zeroed_alone(dp_scrub *s, const char *text)
{
    unsigned char b[300];
    size_t len = strlen(text), i;
    int all = 1;

    memset(b, 1, sizeof(b));
    memcpy(b + 100, text, len);
    dp_scrub_buffer(s, b, sizeof(b));
    for (i = 0; i < sizeof(b); i++) {
        if (i >= 100 && i < 100 + len)
            all &= b[i] == 0;
        else
            assert_int_equal(b[i], 1);      /* nothing outside is touched */
    }
    return all;
}

/* The same, but reports whether it was left exactly as it was. */
static int untouched(dp_scrub *s, const char *text)
{
    unsigned char b[300];
    size_t len = strlen(text);

    memset(b, 1, sizeof(b));
    memcpy(b + 100, text, len);
    dp_scrub_buffer(s, b, sizeof(b));
    return memcmp(b + 100, text, len) == 0 && b[99] == 1 && b[100 + len] == 1;
}

static void test_entries_names_values(void **state)
{
    dp_scrub *s = make();
    (void)state;
    assert_true(zeroed_alone(s, "SECRET_TOKEN=c2VjcmV0LXZhbHVlLW9mLXRoZS10ZXN0"));
    assert_true(zeroed_alone(s, "c2VjcmV0LXZhbHVlLW9mLXRoZS10ZXN0"));      /* the value */
    assert_true(zeroed_alone(s, "SECRET_TOKEN"));                          /* the name */
    assert_true(zeroed_alone(s, "SHORTNAMEVAR=xy"));
    assert_true(zeroed_alone(s, "PIN=4711"));
    assert_true(zeroed_alone(s, "TZ=UTC"));           /* a whole short entry */
    assert_true(untouched(s, "A=1"));                 /* 3 bytes: below what strings shows */
    assert_true(untouched(s, "UTC"));                 /* short values alone are data */
    assert_true(untouched(s, "4711"));
    assert_true(untouched(s, "not in the environment at all"));
    {
        /* a stream shorter than an entry, after one that held it */
        char tiny[] = "TZ=U";
        unsigned char b[16] = "TZ=UTC";
        dp_scrub_buffer(s, b, sizeof(b));
        assert_int_equal(dp_scrub_buffer(s, tiny, 4), 0);
        assert_string_equal(tiny, "TZ=U");
        assert_true(zeroed_alone(s, "TZ=UTC"));
    }
    dp_scrub_free(s);
}

/* What a 16- or 32-byte vector register holds after a scan of the block:
 * the middle of a value, or the end of one entry and the start of the next. */
static void test_fragments(void **state)
{
    dp_scrub *s = make();
    unsigned char reg[32];
    (void)state;
    assert_true(zeroed_alone(s, "VjcmV0LXZhbHVl"));         /* 14 bytes from the middle */
    assert_true(zeroed_alone(s, "LXZhbHVl"));               /* exactly 8 */
    assert_true(untouched(s, "LXZhbHV"));                   /* 7: below the minimum */
    assert_true(zeroed_alone(s, "OKEN=c2Vj"));           /* across the '=' */
    /* a register holding "...ZXN0\0TZ=UTC\0A=1\0SHORT": every piece of 4 or more */
    memcpy(reg, "ZS10ZXN0\0TZ=UTC\0A=1\0SHORTNAMEV\0\0\0", 32);
    dp_scrub_buffer(s, reg, sizeof(reg));
    assert_memory_equal(reg, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0A=1\0\0\0\0\0\0\0\0\0\0\0\0\0", 32);
    dp_scrub_free(s);
}

/* Mapped paths are public: the debugger needs them whole (NT_FILE, link
 * maps); a name glued to such a value is still scrubbed. */
static void test_public_runs_stay(void **state)
{
    dp_scrub *s = make();
    unsigned char b[64];
    const char *entry = "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu";
    (void)state;
    assert_true(untouched(s, "/usr/lib/x86_64-linux-gnu/libc.so.6"));
    memset(b, 1, sizeof(b));
    memcpy(b, entry, strlen(entry));
    dp_scrub_buffer(s, b, sizeof(b));
    /* "LD_LIBRARY_PATH=" and the windows reaching into the path ("PATH=/usr/li") */
    assert_memory_equal(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 23);
    assert_memory_equal(b + 23, "b/x86_64-linux-gnu", 18);
    dp_scrub_free(s);
}

/* A naive reference: byte i is zeroed when a window of 8 covering it occurs in
 * an entry and in no public string, or a whole short entry covering it is
 * there and in no public string. */
static int in_public(const unsigned char *w, size_t wlen)
{
    size_t k;
    for (k = 0; k < NPUBLIC; k++)
        if (memmem(PUBLIC[k], strlen(PUBLIC[k]), w, wlen))
            return 1;
    return 0;
}

static int in_strings(const char *block, size_t blen, const unsigned char *w, size_t wlen)
{
    const char *p = block, *end = block + blen;
    while (p < end) {
        size_t len = strlen(p);
        if (len >= wlen && memmem(p, len, w, wlen))
            return 1;
        p += len + 1;
    }
    return 0;
}

static void reference(const unsigned char *in, unsigned char *out, size_t n)
{
    size_t i, k;
    const char *e;

    memcpy(out, in, n);
    for (i = 0; i + DP_SCRUB_MIN <= n; i++)
        if (in_strings(ENV, sizeof(ENV) - 1, in + i, DP_SCRUB_MIN)
            && !in_public(in + i, DP_SCRUB_MIN))
            memset(out + i, 0, DP_SCRUB_MIN);
    for (e = ENV; e < ENV + sizeof(ENV) - 1; e += strlen(e) + 1) {
        size_t len = strlen(e);
        if (len < DP_SCRUB_SHORT_MIN || len >= DP_SCRUB_MIN
            || in_public((const unsigned char *)e, len))
            continue;
        for (k = 0; k + len <= n; k++)
            if (memcmp(in + k, e, len) == 0)
                memset(out + k, 0, len);
    }
}

/* A stream of random bytes, random printable bytes and random pieces of the
 * environment (any offset, any length, NULs included). */
static void fill(unsigned char *b, size_t n, unsigned seed)
{
    size_t i = 0;
    srand(seed);
    while (i < n) {
        size_t k = (size_t)(rand() % 40) + 1, j;
        int kind = rand() % 3;
        if (k > n - i)
            k = n - i;
        if (kind == 0) {
            size_t off = (size_t)rand() % (sizeof(ENV) - 1);
            if (k > sizeof(ENV) - 1 - off)
                k = sizeof(ENV) - 1 - off;
            memcpy(b + i, ENV + off, k);
        }
        else
            for (j = 0; j < k; j++)
                b[i + j] = (unsigned char)(kind == 1 ? rand() : 32 + rand() % 95);
        i += k;
    }
}

typedef struct collect {
    unsigned char *p;
    size_t len, cap;
} collect;

static int collect_write(dp_sink *o, const void *d, size_t n)
{
    collect *c = o->ctx;
    assert_true(c->len + n <= c->cap);
    memcpy(c->p + c->len, d, n);
    c->len += n;
    return 0;
}

/* Streams in through writes of the given sizes (cycled), returns the bytes out. */
static void stream(dp_scrub *s, const unsigned char *in, size_t n, const size_t *cuts,
                   size_t ncuts, unsigned char *out)
{
    collect c = { out, 0, n };
    dp_sink next = { collect_write, &c, NULL, NULL }, sink;
    size_t off = 0, k = 0;

    dp_scrub_sink(s, &next, &sink);
    while (off < n) {
        size_t len = cuts[k++ % ncuts];
        if (len > n - off)
            len = n - off;
        assert_int_equal(dp_sink_write(&sink, in + off, len), 0);
        off += len;
    }
    assert_int_equal(dp_scrub_flush(s), 0);
    assert_int_equal(c.len, n);
}

static void test_matches_reference_whatever_the_cuts(void **state)
{
    enum { N = 20000 };
    static unsigned char in[N], want[N], got[N];
    static const size_t one[] = { 1 }, odd[] = { 7, 1, 13, 3, 8, 9, 2 }, big[] = { 4096, 5 };
    const size_t *cuts[] = { one, odd, big };
    size_t ncuts[] = { 1, 7, 2 };
    unsigned seed, c;
    size_t zeroed = 0;

    (void)state;
    for (seed = 1; seed <= 20; seed++) {
        fill(in, N, seed);
        reference(in, want, N);
        for (c = 0; c < 3; c++) {
            dp_scrub *s = make();
            stream(s, in, N, cuts[c], ncuts[c], got);
            assert_memory_equal(got, want, N);
            dp_scrub_free(s);
        }
        memcpy(got, in, N);
        {
            dp_scrub *s = make();
            zeroed += dp_scrub_buffer(s, got, N);
            dp_scrub_free(s);
        }
        assert_memory_equal(got, want, N);
    }
    assert_true(zeroed > 1000);     /* the streams did hold pieces to find */
}

/* A next sink that lends its own rooms (as the dump ring does). The
 * scrubber must never take one: the ring's slots are memory the worker
 * maps, and bytes there before they are scrubbed would be read by a worker
 * that watches them. It writes scrubbed bytes only. */
typedef struct lender {
    collect c;
} lender;

static void *lend_reserve(dp_sink *o, size_t want, size_t *room)
{
    (void)o;
    (void)want;
    (void)room;
    fail_msg("the scrubber took a room of the next sink's, to fill it before scrubbing");
    return NULL;
}

static int lend_commit(dp_sink *o, size_t n)
{
    (void)o;
    (void)n;
    fail_msg("the scrubber committed a room of the next sink's");
    return -1;
}

static int lend_write(dp_sink *o, const void *buf, size_t len)
{
    lender *l = o->ctx;
    assert_true(l->c.len + len <= l->c.cap);
    memcpy(l->c.p + l->c.len, buf, len);
    l->c.len += len;
    return 0;
}

/* Streams in (writes, or reserve and commit of the scrubber's own rooms
 * when in_place) to a next sink that would lend rooms. */
static void stream_lent(dp_scrub *s, const unsigned char *in, size_t n, const size_t *cuts,
                        size_t ncuts, unsigned char *out, int in_place)
{
    lender l = { { out, 0, n } };
    dp_sink next = { lend_write, &l, lend_reserve, lend_commit }, sink;
    size_t off = 0, k = 0;

    dp_scrub_sink(s, &next, &sink);
    while (off < n) {
        size_t len = cuts[k++ % ncuts], room;
        unsigned char *p;
        if (len > n - off)
            len = n - off;
        if (!in_place) {
            assert_int_equal(dp_sink_write(&sink, in + off, len), 0);
            off += len;
            continue;
        }
        assert_non_null(p = sink.reserve(&sink, 1, &room));
        if (len > room)
            len = room;
        memcpy(p, in + off, len);
        assert_int_equal(sink.commit(&sink, len), 0);
        off += len;
    }
    assert_int_equal(dp_scrub_flush(s), 0);
    assert_int_equal(l.c.len, n);
}

static void test_never_in_lent_rooms(void **state)
{
    enum { N = 60000 };
    static unsigned char in[N], want[N], got[N];
    static const size_t odd[] = { 7, 1, 13, 3, 8, 9, 2, 5000 }, big[] = { 4096, 5, 70000 };
    unsigned seed, in_place;

    (void)state;
    for (seed = 1; seed <= 6; seed++) {
        fill(in, N, seed);
        reference(in, want, N);
        for (in_place = 0; in_place < 2; in_place++) {
            dp_scrub *s = make();
            stream_lent(s, in, N, seed % 2 ? odd : big, seed % 2 ? 8 : 3, got, (int)in_place);
            assert_memory_equal(got, want, N);
            dp_scrub_free(s);
        }
    }
}

/* A value that straddles the scrubber's own buffer and every split of one
 * write into two around it. */
static void test_across_the_buffer(void **state)
{
    enum { N = DP_SCRUB_BUF * 2 + 100 };
    unsigned char *in = malloc(N), *out = malloc(N);
    const char *v = "c2VjcmV0LXZhbHVlLW9mLXRoZS10ZXN0";
    size_t at, i, len = strlen(v);
    (void)state;

    for (at = DP_SCRUB_BUF - len; at <= DP_SCRUB_BUF; at += 3) {
        dp_scrub *s = make();
        size_t cut[] = { at + len / 2, N };
        memset(in, 0x41, N);        /* 'A': in the alphabet, never a window of ENV */
        memcpy(in + at, v, len);
        stream(s, in, N, cut, 2, out);
        for (i = 0; i < N; i++)
            if ((i >= at && i < at + len) ? out[i] != 0 : out[i] != 0x41)
                fail_msg("byte %zu of the stream (value at %zu) is %#x", i, at, out[i]);
        dp_scrub_free(s);
    }
    free(in);
    free(out);
}

/* The same reference, fast enough for a stream of several buffers: the
 * environment's windows (public ones left out) sorted, one search a byte. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void reference_long(const unsigned char *in, unsigned char *out, size_t n)
{
    static uint64_t wins[sizeof(ENV)];
    size_t nw = 0, i, k;
    const char *e;

    for (e = ENV; e < ENV + sizeof(ENV) - 1; e += strlen(e) + 1)
        for (i = 0; i + DP_SCRUB_MIN <= strlen(e); i++)
            if (!in_public((const unsigned char *)e + i, DP_SCRUB_MIN))
                memcpy(&wins[nw++], e + i, 8);
    qsort(wins, nw, sizeof(wins[0]), cmp_u64);
    memcpy(out, in, n);
    for (i = 0; i + DP_SCRUB_MIN <= n; i++) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        if (bsearch(&w, wins, nw, sizeof(w), cmp_u64))
            memset(out + i, 0, DP_SCRUB_MIN);
    }
    for (e = ENV; e < ENV + sizeof(ENV) - 1; e += strlen(e) + 1) {
        size_t len = strlen(e);
        if (len < DP_SCRUB_SHORT_MIN || len >= DP_SCRUB_MIN || in_public((const unsigned char *)e, len))
            continue;
        for (k = 0; k + len <= n; k++)
            if (in[k] == (unsigned char)e[0] && memcmp(in + k, e, len) == 0)
                memset(out + k, 0, len);
    }
}

/* Several buffers' worth: what a round marks in the bytes it holds back
 * goes with them, and nothing of it stays behind for the next round. */
static void test_long_stream(void **state)
{
    enum { N = DP_SCRUB_BUF * 3 + 12345 };
    unsigned char *in = malloc(N), *want = malloc(N), *got = malloc(N);
    static const size_t cuts[] = { 65539, 1, 4096, 7 };
    unsigned seed;
    (void)state;

    for (seed = 100; seed < 103; seed++) {
        dp_scrub *s = make();
        fill(in, N, seed);
        reference_long(in, want, N);
        stream(s, in, N, cuts, 4, got);
        assert_memory_equal(got, want, N);
        dp_scrub_free(s);
    }
    free(in);
    free(want);
    free(got);
}

static void test_no_environment_changes_nothing(void **state)
{
    dp_scrub *s = dp_scrub_new("", 0, NULL, 0);
    unsigned char b[4096], c[4096];
    (void)state;
    assert_non_null(s);
    fill(b, sizeof(b), 99);
    memcpy(c, b, sizeof(b));
    assert_int_equal(dp_scrub_buffer(s, b, sizeof(b)), 0);
    assert_memory_equal(b, c, sizeof(b));
    dp_scrub_free(s);
    assert_null(dp_scrub_new("x", DP_SCRUB_ENV_MAX + 1, NULL, 0));
}

/* Memory set with one byte that an entry's value repeats: every run of it of
 * 8 bytes or more goes, shorter runs and other bytes stay, across blocks and
 * writes (the search looks such blocks up once). */
static void test_repeated_byte_runs(void **state)
{
    static const char env[] = "PAD=ZZZZZZZZZZZZZZZZ\0HOME=/root\0";
    static const size_t runs[] = { 300, 7, 64, 8, 1, 72, 200, 9, 5000, 3 };
    unsigned char in[6000], want[6000], got[6000];
    size_t n = 0, i, k, cut[] = { 1000, 77 };
    int on;
    (void)state;

    for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        unsigned char c = i % 2 ? 'A' : 'Z';
        if (i == 3 || i == 7)
            c = 'Z';            /* a run of 8, of 9 */
        for (k = 0; k < runs[i] && n < sizeof(in); k++, n++) {
            in[n] = c;
            want[n] = c;
        }
    }
    for (i = 0; i < n;) {       /* the expectation: runs of 'Z' of 8 or more zeroed */
        size_t j = i;
        while (j < n && in[j] == in[i])
            j++;
        if (in[i] == 'Z' && j - i >= DP_SCRUB_MIN)
            memset(want + i, 0, j - i);
        i = j;
    }
    for (on = 0; on < 2; on++) {
        dp_scrub *s = dp_scrub_new(env, sizeof(env) - 1, NULL, 0);
        assert_non_null(s);
        dp_scrub_use_simd(s, on);
        stream(s, in, n, cut, 2, got);
        assert_memory_equal(got, want, n);
        dp_scrub_free(s);
    }
}

static void test_scalar_matches_reference(void **state)
{
    simd = 0;
    test_matches_reference_whatever_the_cuts(state);
    test_never_in_lent_rooms(state);
    test_long_stream(state);
    simd = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_names_values),
        cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_public_runs_stay),
        cmocka_unit_test(test_matches_reference_whatever_the_cuts),
        cmocka_unit_test(test_across_the_buffer),
        cmocka_unit_test(test_never_in_lent_rooms),
        cmocka_unit_test(test_long_stream),
        cmocka_unit_test(test_scalar_matches_reference),
        cmocka_unit_test(test_repeated_byte_runs),
        cmocka_unit_test(test_no_environment_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
