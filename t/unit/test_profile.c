/* The profile's records (common/proto.h DP_FR_PROF_*) and their writers
 * (worker/profile.c, worker/pprof.c): records kept or refused, collapsed
 * stacks, speedscope's JSON, protobuf varints and fields, gzip, and a pprof
 * profile read back field by field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>
#include <jansson.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "common/proto.h"
#include "worker/profile.h"

static apr_pool_t *pool;

/* A stack record: count, tid, runtime, pid 100, the request (url, vhost;
 * NULL: not known), then n frames (name, file) root first. */
static void stack_req_rec(dp_rec *r, uint32_t count, uint32_t tid, const char *runtime,
                          const char *url, const char *vhost, int n, const char *const *names)
{
    int i;
    r->len = 0;
    dp_rec_put_u32(r, count);
    dp_rec_put_u32(r, tid);
    dp_rec_put_cstr(r, runtime);
    dp_rec_put_u32(r, 100);
    dp_rec_put_cstr(r, url);
    dp_rec_put_cstr(r, vhost);
    dp_rec_put_u32(r, (uint32_t)n);
    for (i = 0; i < n; i++) {
        dp_rec_put_cstr(r, names[i]);
        dp_rec_put_cstr(r, i ? "/srv/app.py" : NULL);
    }
}

static void stack_rec(dp_rec *r, uint32_t count, uint32_t tid, const char *runtime, int n,
                      const char *const *names)
{
    stack_req_rec(r, count, tid, runtime, NULL, NULL, n, names);
}

static void summary_rec(dp_rec *r)
{
    r->len = 0;
    dp_rec_put_u64(r, 10);          /* samples */
    dp_rec_put_u64(r, 1);           /* lost */
    dp_rec_put_u64(r, 2000000);     /* duration µs */
    dp_rec_put_u32(r, 100);         /* hz */
    dp_rec_put_u32(r, 0);
    dp_rec_put_u64(r, 1700000000000000ull);
}

static dp_profile *sample_profile(void)
{
    static const char *const a[] = { "<module>", "main", "seventy" };
    static const char *const b[] = { "<module>", "main", "thirty" };
    static const char *const c[] = { "<module>", "odd;name" };
    dp_profile *pf = dp_profile_make(pool);
    dp_rec r;

    stack_rec(&r, 6, 11, "CPython", 3, a);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_STACK, r.buf, r.len), 0);
    stack_rec(&r, 1, 12, "CPython", 3, a);      /* another thread, the same frames */
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_STACK, r.buf, r.len), 0);
    stack_rec(&r, 3, 11, "CPython", 3, b);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_STACK, r.buf, r.len), 0);
    stack_rec(&r, 1, 11, "CPython", 2, c);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_STACK, r.buf, r.len), 0);
    /* a worker thread's stack while it served a request */
    stack_req_rec(&r, 2, 13, "CPython", "/a.php?x=1", "shop.example", 3, b);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_STACK, r.buf, r.len), 0);
    summary_rec(&r);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_SUMMARY, r.buf, r.len), 0);
    return pf;
}

static void test_records(void **state)
{
    dp_profile *pf = sample_profile();
    dp_rec r;
    (void)state;

    assert_true(pf->complete);
    assert_int_equal(pf->stacks->nelts, 5);
    assert_int_equal(APR_ARRAY_IDX(pf->stacks, 0, dp_prof_stack).pid, 100);
    assert_null(APR_ARRAY_IDX(pf->stacks, 0, dp_prof_stack).url);
    assert_string_equal(APR_ARRAY_IDX(pf->stacks, 4, dp_prof_stack).url, "/a.php?x=1");
    assert_string_equal(APR_ARRAY_IDX(pf->stacks, 4, dp_prof_stack).vhost, "shop.example");
    assert_int_equal(pf->samples, 10);
    assert_int_equal(pf->lost, 1);
    assert_int_equal(pf->hz, 100);
    /* nothing after the summary */
    summary_rec(&r);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_SUMMARY, r.buf, r.len), -1);
    /* a short record, a record with bytes left over, another type */
    pf = dp_profile_make(pool);
    summary_rec(&r);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_SUMMARY, r.buf, r.len - 1), -1);
    pf = dp_profile_make(pool);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_SUMMARY, r.buf, r.len + 1), -1);
    assert_int_equal(dp_profile_add(pf, DP_FR_STACK_THREAD, r.buf, r.len), -1);
    /* more frames than a sample may have */
    r.len = 0;
    dp_rec_put_u32(&r, 1);
    dp_rec_put_u32(&r, 1);
    dp_rec_put_cstr(&r, "native");
    dp_rec_put_u32(&r, 1);
    dp_rec_put_cstr(&r, NULL);
    dp_rec_put_cstr(&r, NULL);
    dp_rec_put_u32(&r, DP_PROF_MAX_FRAMES + 1);
    assert_int_equal(dp_profile_add(pf, DP_FR_PROF_STACK, r.buf, r.len), -1);
}

static void test_folded(void **state)
{
    size_t len;
    char *text = dp_profile_folded(sample_profile(), pool, &len);
    (void)state;

    /* threads merged, sorted, root first, ';' in a name replaced; a
     * request's stack under its request */
    assert_string_equal(text,
        "<module>;main (/srv/app.py);seventy (/srv/app.py) 7\n"
        "<module>;main (/srv/app.py);thirty (/srv/app.py) 3\n"
        "<module>;odd:name (/srv/app.py) 1\n"
        "[url shop.example /a.php?x=1];<module>;main (/srv/app.py);thirty (/srv/app.py) 2\n");
    assert_int_equal(len, strlen(text));
}

static void test_speedscope(void **state)
{
    size_t len;
    char *text = dp_profile_speedscope(sample_profile(), "python3 (11)", pool, &len);
    json_t *j = json_loads(text, 0, NULL), *frames, *profs, *p0;
    (void)state;

    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "$schema")),
                        "https://www.speedscope.app/file-format-schema.json");
    frames = json_object_get(json_object_get(j, "shared"), "frames");
    /* <module>, main, seventy, thirty, odd;name, the request: each frame once */
    assert_int_equal(json_array_size(frames), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(frames, 5), "name")),
                        "[url shop.example /a.php?x=1]");
    assert_string_equal(json_string_value(json_object_get(json_array_get(frames, 2), "name")),
                        "seventy");
    assert_null(json_object_get(json_array_get(frames, 0), "file"));
    profs = json_object_get(j, "profiles");
    assert_int_equal(json_array_size(profs), 3);        /* threads 11, 12 and 13 */
    p0 = json_array_get(profs, 0);
    assert_string_equal(json_string_value(json_object_get(p0, "type")), "sampled");
    assert_string_equal(json_string_value(json_object_get(p0, "name")), "thread 11 (CPython)");
    assert_int_equal(json_array_size(json_object_get(p0, "samples")), 3);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(p0, "weights"), 0)), 6);
    assert_int_equal(json_integer_value(json_object_get(p0, "endValue")), 10);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(
        json_object_get(p0, "samples"), 0), 2)), 2);
    json_decref(j);
}

static void test_varints(void **state)
{
    static const struct { uint64_t v; const char *bytes; size_t n; } cases[] = {
        { 0, "\x00", 1 }, { 1, "\x01", 1 }, { 127, "\x7f", 1 }, { 128, "\x80\x01", 2 },
        { 300, "\xac\x02", 2 }, { 16384, "\x80\x80\x01", 3 },
        { UINT64_MAX, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10 },
    };
    size_t i;
    dp_pb b;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dp_pb_init(&b, pool);
        dp_pb_varint(&b, cases[i].v);
        assert_int_equal(b.len, cases[i].n);
        assert_memory_equal(b.buf, cases[i].bytes, cases[i].n);
    }
    /* protobuf's own examples: field 1 = 150, field 2 = "testing" */
    dp_pb_init(&b, pool);
    dp_pb_uint(&b, 1, 150);
    dp_pb_bytes(&b, 2, "testing", 7);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.buf, "\x08\x96\x01\x12\x07testing", 12);
}

static unsigned char *gunzip(const unsigned char *in, size_t n, size_t *outlen)
{
    static unsigned char out[1 << 16];
    z_stream z;

    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = sizeof(out);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    *outlen = z.total_out;
    inflateEnd(&z);
    return out;
}

static void test_gzip(void **state)
{
    static const char text[] = "where the time goes, where the time goes, where the time goes";
    size_t n, m;
    unsigned char *gz = dp_gzip(text, sizeof(text), pool, &n), *back;
    (void)state;

    assert_non_null(gz);
    assert_memory_equal(gz, "\x1f\x8b\x08", 3);        /* gzip, deflate */
    back = gunzip(gz, n, &m);
    assert_int_equal(m, sizeof(text));
    assert_memory_equal(back, text, sizeof(text));
}

/* A protobuf field of buf at *pos: its number and wire type, a varint
 * value or a (pointer, length). */
static int pb_next(const unsigned char *buf, size_t len, size_t *pos, unsigned *field,
                   uint64_t *v, const unsigned char **data)
{
    uint64_t key = 0;
    int shift;

    if (*pos >= len)
        return 0;
    for (shift = 0; buf[*pos] & 0x80; shift += 7)
        key |= (uint64_t)(buf[(*pos)++] & 0x7f) << shift;
    key |= (uint64_t)buf[(*pos)++] << shift;
    *field = (unsigned)(key >> 3);
    *v = 0;
    for (shift = 0; buf[*pos] & 0x80; shift += 7)
        *v |= (uint64_t)(buf[(*pos)++] & 0x7f) << shift;
    *v |= (uint64_t)buf[(*pos)++] << shift;
    assert_true((key & 7) == 0 || (key & 7) == 2);
    if ((key & 7) == 2) {
        *data = buf + *pos;
        *pos += *v;
    }
    return 1;
}

static void test_pprof(void **state)
{
    size_t n, len, pos = 0, k;
    const char *strings[32];
    int nstr = 0, nsamples = 0, nfunctions = 0, nlocations = 0;
    uint64_t first_leaf = 0, period = 0, v;
    unsigned field;
    const unsigned char *data, *gz = (const unsigned char *)dp_profile_pprof(sample_profile(),
                                                                             pool, &n);
    const unsigned char *pb = gunzip(gz, n, &len);
    (void)state;

    while (pb_next(pb, len, &pos, &field, &v, &data)) {
        if (field == 6 && nstr < 32)
            strings[nstr++] = apr_pstrmemdup(pool, (const char *)data, v);
        if (field == 5)
            nfunctions++;
        if (field == 4)
            nlocations++;
        if (field == 12)
            period = v;
        if (field == 2 && nsamples++ == 0) {
            /* the first sample: its packed location ids, leaf first */
            size_t sp = 0, sl = v;
            const unsigned char *ids;
            while (pb_next(data, sl, &sp, &field, &v, &ids))
                if (field == 1) {
                    /* packed: the first varint is the leaf's location id */
                    int shift = 0;
                    size_t ip = 0;
                    first_leaf = 0;
                    while (ip < v && (ids[ip] & 0x80))
                        first_leaf |= (uint64_t)(ids[ip++] & 0x7f) << (shift += 7, shift - 7);
                    first_leaf |= (uint64_t)ids[ip] << shift;
                }
        }
    }
    assert_int_equal(nsamples, 5);
    assert_int_equal(nfunctions, 5);        /* the request is a label, not a frame */
    assert_int_equal(nlocations, 5);
    assert_int_equal(period, 10000000);     /* 100 Hz in ns */
    assert_string_equal(strings[0], "");
    for (k = 0; k < (size_t)nstr && strcmp(strings[k], "samples"); k++)
        ;
    assert_true(k < (size_t)nstr);
    {
        static const char *const labels[] = { "pid", "thread", "runtime", "url", "/a.php?x=1",
                                              "vhost", "shop.example" };
        size_t l;
        for (l = 0; l < sizeof(labels) / sizeof(labels[0]); l++) {
            for (k = 0; k < (size_t)nstr && strcmp(strings[k], labels[l]); k++)
                ;
            assert_true(k < (size_t)nstr);
        }
    }
    /* ids follow first appearance, leaf first: seventy is location 1 */
    assert_int_equal(first_leaf, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_speedscope),
        cmocka_unit_test(test_varints),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_pprof),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
