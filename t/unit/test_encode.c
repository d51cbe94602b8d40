/* The raw core's Content-Encoding alone: zstd and gzip streams that libzstd
 * and zlib decode to the same bytes, whether written or filled in place and
 * cut anywhere; chunks of random bytes passed through (counted as stored,
 * and costing no more than the coding's block headers), the others
 * compressed; one frame / one member, whose end is only written by finish;
 * the flush call-back after encoded bytes waited; a failing next sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>
#include "dump/encode.h"

typedef struct collect {
    unsigned char *p;
    size_t len, cap;
    int fail;
} collect;

static int collect_write(dp_sink *o, const void *d, size_t n)
{
    collect *c = o->ctx;
    if (c->fail)
        return -1;
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->p = realloc(c->p, c->cap);
        assert_non_null(c->p);
    }
    memcpy(c->p + c->len, d, n);
    c->len += n;
    return 0;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 3 MiB of zeros and text, 3 MiB of random bytes, 2 MiB of a repeated page */
#define MIB (1u << 20)
#define TOTAL (8 * MIB)
#define RANDOM_AT (3 * MIB)
#define RANDOM_LEN (3 * MIB)

static unsigned char *make_input(void)
{
    unsigned char *b = calloc(1, TOTAL);
    size_t i;
    assert_non_null(b);
    for (i = 0; i < RANDOM_AT; i += 4096)
        memcpy(b + i + 100, "PyObject dict list str 'hello' 12345 ", 38);
    for (i = RANDOM_AT; i < RANDOM_AT + RANDOM_LEN; i += 8) {
        uint64_t r = next_rand();
        memcpy(b + i, &r, 8);
    }
    for (i = RANDOM_AT + RANDOM_LEN; i < TOTAL; i++)
        b[i] = (unsigned char)(i % 4096 * 7);
    return b;
}

static void decode(int encoding, const collect *c, unsigned char *out, size_t want)
{
    if (encoding == DP_ENC_ZSTD) {
        /* one frame, content checksum included */
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer in = { c->p, c->len, 0 };
        ZSTD_outBuffer o = { out, want + 1, 0 };
        size_t r = ZSTD_decompressStream(d, &o, &in);
        assert_false(ZSTD_isError(r));
        assert_int_equal(r, 0);
        assert_int_equal(in.pos, c->len);
        assert_int_equal(o.pos, want);
        assert_int_equal(ZSTD_findFrameCompressedSize(c->p, c->len), c->len);
        ZSTD_freeDCtx(d);
    }
    else {
        z_stream z;
        memset(&z, 0, sizeof(z));
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = c->p;
        z.avail_in = (uInt)c->len;
        z.next_out = out;
        z.avail_out = (uInt)want + 1;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.avail_in, 0);
        assert_int_equal(z.total_out, want);
        inflateEnd(&z);
    }
}

static int flushes;

static int count_flush(void *arg)
{
    (void)arg;
    flushes++;
    return 0;
}

/* Writes (or fills in place) in pieces of the given sizes, cycled. */
static void encode(int encoding, int threads, const unsigned char *in, size_t n,
                   const size_t *cuts, size_t ncuts, int in_place, collect *c,
                   dp_encode_stats *st)
{
    collect *cc = c;
    dp_sink next = { collect_write, cc, NULL, NULL }, sink;
    /* a fixed level: what these checks expect of the stream does not
     * depend on how fast the collector is (test_level_follows_the_pace) */
    dp_encode_opts o = { encoding, encoding == DP_ENC_GZIP ? DP_ENCODE_GZIP_LEVEL
                                                           : DP_ENCODE_ZSTD_LEVEL,
                         threads, count_flush, NULL, NULL, NULL };
    dp_encoder *e;
    dp_error err = { 0 };
    size_t off = 0, k = 0;

    assert_int_equal(dp_encoder_open(&e, &o, &next, &sink, &err), 0);
    while (off < n) {
        size_t len = cuts[k++ % ncuts], room;
        unsigned char *p;
        if (len > n - off)
            len = n - off;
        if (in_place) {
            assert_non_null(p = sink.reserve(&sink, 1, &room));
            if (len > room)
                len = room;
            memcpy(p, in + off, len);
            assert_int_equal(sink.commit(&sink, len), 0);
        }
        else
            assert_int_equal(dp_sink_write(&sink, in + off, len), 0);
        off += len;
    }
    assert_int_equal(dp_encoder_finish(e), 0);
    dp_encoder_stats(e, st);
    dp_encoder_free(e);
}

static void roundtrip(int encoding, int threads)
{
    static const size_t odd[] = { 4096, 1, 100000, 777, 3 * MIB }, big[] = { TOTAL };
    unsigned char *in = make_input(), *out = malloc(TOTAL + 1);
    int in_place;

    for (in_place = 0; in_place < 2; in_place++) {
        collect c = { 0 };
        dp_encode_stats st;
        encode(encoding, threads, in, TOTAL, in_place ? big : odd, in_place ? 1 : 5,
               in_place, &c, &st);
        decode(encoding, &c, out, TOTAL);
        assert_memory_equal(out, in, TOTAL);
        assert_int_equal(st.in, TOTAL);
        assert_int_equal(st.out, c.len);
        /* the random MiBs, and only they, went through as they were */
        assert_true(st.stored >= RANDOM_LEN - MIB && st.stored <= RANDOM_LEN + MIB);
        /* the rest compressed: well under the random part's size in all */
        assert_true(c.len < RANDOM_LEN + RANDOM_LEN / 8);
        free(c.p);
    }
    free(in);
    free(out);
}

static void test_zstd_threads(void **state)
{
    (void)state;
    roundtrip(DP_ENC_ZSTD, -1);
}

static void test_zstd_one_thread(void **state)
{
    (void)state;
    roundtrip(DP_ENC_ZSTD, 0);
}

static void test_gzip(void **state)
{
    (void)state;
    roundtrip(DP_ENC_GZIP, 0);
}

/* A next sink as slow as a thin link: each write waits as long as sending
 * it at 1 MB/s would, and says how long it was blocked. */
static long long slept_ns;

static int slow_write(dp_sink *o, const void *d, size_t n)
{
    usleep((useconds_t)n);
    slept_ns += (long long)n * 1000;
    return collect_write(o, d, n);
}

static long long blocked(void *arg)
{
    (void)arg;
    return slept_ns;
}

/* The adapting level (o.level 0): up to the top when writing on waits,
 * down to the bottom when it never does (zstd; gzip's bottom is where it
 * starts); the stream decodes either way. */
static void test_level_follows_the_pace(void **state)
{
    enum { N = 24 * MIB };
    static const int encs[] = { DP_ENC_ZSTD, DP_ENC_GZIP };
    static const int hi[] = { DP_ENCODE_ZSTD_MAX, DP_ENCODE_GZIP_MAX };
    unsigned char *in = malloc(N), *out = malloc(N + 1);
    size_t i;
    int k, slow;
    (void)state;

    for (i = 0; i < N; i++)         /* compressible everywhere: text with numbers */
        in[i] = (unsigned char)("PyObject dict list str 'hello' "[i % 31] + (i / 4096 % 7));
    for (k = 0; k < 2; k++)
        for (slow = encs[k] == DP_ENC_GZIP; slow < 2; slow++) {
            collect c = { malloc(N + MIB), 0, N + MIB, 0 };   /* no realloc's copy in the way */
            dp_sink next = { slow ? slow_write : collect_write, &c, NULL, NULL }, sink;
            dp_encode_opts o = { encs[k], 0, -1, NULL, NULL, blocked, NULL };
            dp_encode_stats st;
            dp_encoder *e;
            dp_error err = { 0 };
            assert_int_equal(dp_encoder_open(&e, &o, &next, &sink, &err), 0);
            for (i = 0; i < N; i += MIB)
                assert_int_equal(dp_sink_write(&sink, in + i, MIB), 0);
            assert_int_equal(dp_encoder_finish(e), 0);
            dp_encoder_stats(e, &st);
            dp_encoder_free(e);
            decode(encs[k], &c, out, N);
            assert_memory_equal(out, in, N);
            if (slow)
                assert_int_equal(st.level_hi, hi[k]);
            else
                assert_int_equal(st.level_lo, DP_ENCODE_ZSTD_MIN);
            free(c.p);
        }
    free(in);
    free(out);
}

/* Random bytes alone cost the coding's headers, not a compressor's guess. */
static void test_random_passes_through(void **state)
{
    static const size_t whole[] = { 4 * MIB };
    unsigned char *in = malloc(4 * MIB), *out = malloc(4 * MIB + 1);
    int enc[] = { DP_ENC_ZSTD, DP_ENC_GZIP }, i;
    size_t k;
    (void)state;

    for (k = 0; k < 4 * MIB; k += 8) {
        uint64_t r = next_rand();
        memcpy(in + k, &r, 8);
    }
    for (i = 0; i < 2; i++) {
        collect c = { 0 };
        dp_encode_stats st;
        encode(enc[i], -1, in, 4 * MIB, whole, 1, 0, &c, &st);
        assert_int_equal(st.stored, 4 * MIB);
        assert_true(c.len < 4 * MIB + 4 * MIB / 1000);
        decode(enc[i], &c, out, 4 * MIB);
        assert_memory_equal(out, in, 4 * MIB);
        free(c.p);
    }
    free(in);
    free(out);
}

/* Without finish, the stream has no end: a decoder sees it cut short. */
static void test_unfinished_stream_is_incomplete(void **state)
{
    unsigned char *in = make_input();
    int enc[] = { DP_ENC_ZSTD, DP_ENC_GZIP }, i;
    (void)state;

    for (i = 0; i < 2; i++) {
        collect c = { 0 };
        dp_sink next = { collect_write, &c, NULL, NULL }, sink;
        dp_encode_opts o = { enc[i], 0, -1, NULL, NULL, NULL, NULL };
        dp_encoder *e;
        dp_error err = { 0 };
        assert_int_equal(dp_encoder_open(&e, &o, &next, &sink, &err), 0);
        assert_int_equal(dp_sink_write(&sink, in, TOTAL), 0);
        dp_encoder_free(e);
        if (enc[i] == DP_ENC_ZSTD) {
            assert_true(ZSTD_isError(ZSTD_findFrameCompressedSize(c.p, c.len)));
        }
        else {
            z_stream z;
            unsigned char *out = malloc(TOTAL);
            memset(&z, 0, sizeof(z));
            inflateInit2(&z, 15 + 16);
            z.next_in = c.p;
            z.avail_in = (uInt)c.len;
            z.next_out = out;
            z.avail_out = TOTAL;
            assert_int_not_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
            inflateEnd(&z);
            free(out);
        }
        free(c.p);
    }
    free(in);
}

/* Encoded bytes that waited in next are flushed at the next chunk. */
static void test_flush_after_a_wait(void **state)
{
    unsigned char *in = calloc(1, 2 * MIB);
    collect c = { 0 };
    dp_sink next = { collect_write, &c, NULL, NULL }, sink;
    dp_encode_opts o = { DP_ENC_GZIP, 0, 0, count_flush, NULL, NULL, NULL };
    dp_encoder *e;
    dp_error err = { 0 };
    (void)state;

    flushes = 0;
    assert_int_equal(dp_encoder_open(&e, &o, &next, &sink, &err), 0);
    assert_int_equal(dp_sink_write(&sink, in, MIB), 0);      /* the header goes out */
    usleep(300000);
    assert_int_equal(dp_sink_write(&sink, in, MIB), 0);
    assert_true(flushes >= 1);
    assert_int_equal(dp_encoder_finish(e), 0);
    dp_encoder_free(e);
    free(c.p);
    free(in);
}

static void test_failing_next(void **state)
{
    unsigned char *in = make_input();
    collect c = { 0 };
    dp_sink next = { collect_write, &c, NULL, NULL }, sink;
    dp_encode_opts o = { DP_ENC_ZSTD, 0, -1, NULL, NULL, NULL, NULL };
    dp_encoder *e;
    dp_error err = { 0 };
    (void)state;

    c.fail = 1;
    assert_int_equal(dp_encoder_open(&e, &o, &next, &sink, &err), 0);
    /* the first bytes leave at once or at the end, but never succeed */
    if (dp_sink_write(&sink, in, TOTAL) == 0)
        assert_int_equal(dp_encoder_finish(e), -1);
    assert_null(sink.reserve(&sink, 1, &(size_t){ 0 }));
    dp_encoder_free(e);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zstd_threads),
        cmocka_unit_test(test_zstd_one_thread),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_level_follows_the_pace),
        cmocka_unit_test(test_random_passes_through),
        cmocka_unit_test(test_unfinished_stream_is_incomplete),
        cmocka_unit_test(test_flush_after_a_wait),
        cmocka_unit_test(test_failing_next),
    };
    return cmocka_run_group_tests_name("encode", tests, NULL, NULL) ? 1 : 0;
}
