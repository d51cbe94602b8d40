/* The streaming JSON writer behind the process list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "worker/jsonw.h"

typedef struct out {
    char *buf;
    size_t len;
    int flushes;
    int fail_after;     /* fail the Nth flush; 0 = never */
} out;

static int collect(void *ctx, const char *buf, size_t len)
{
    out *o = ctx;
    o->flushes++;
    if (o->fail_after && o->flushes >= o->fail_after)
        return -1;
    o->buf = realloc(o->buf, o->len + len + 1);
    memcpy(o->buf + o->len, buf, len);
    o->len += len;
    o->buf[o->len] = '\0';
    return 0;
}

static const char *write_str(dp_jsonw *w, out *o, const char *s, size_t n)
{
    memset(o, 0, sizeof(*o));
    dp_jw_init(w, collect, o);
    dp_jw_str(w, s, n);
    assert_int_equal(dp_jw_finish(w), 0);
    return o->buf;
}

static void test_escapes(void **state)
{
    static dp_jsonw w;
    out o;
    (void)state;
    assert_string_equal(write_str(&w, &o, "plain", 5), "\"plain\"");
    free(o.buf);
    assert_string_equal(write_str(&w, &o, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    free(o.buf);
    assert_string_equal(write_str(&w, &o, "l1\nl2\t\r\x01", 8), "\"l1\\nl2\\t\\r\\u0001\"");
    free(o.buf);
    assert_string_equal(write_str(&w, &o, "<script>", 8), "\"<script>\"");
    free(o.buf);
}

static void test_utf8_repair(void **state)
{
    static dp_jsonw w;
    out o;
    (void)state;
    /* valid multibyte kept; each invalid byte and a NUL become U+FFFD */
    assert_string_equal(write_str(&w, &o, "\xc3\xa9|\xff|\xc3\x28|\0|\xed\xa0\x80", 13),
                        "\"\xc3\xa9|\xef\xbf\xbd|\xef\xbf\xbd(|\xef\xbf\xbd|"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    /* and jansson, which rejects invalid UTF-8, accepts the result */
    {
        json_t *j = json_loads(o.buf, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        json_decref(j);
    }
    free(o.buf);
}

static void test_large_output_flushes_in_chunks(void **state)
{
    static dp_jsonw w;
    out o = { 0 };
    json_t *arr;
    int i;
    (void)state;
    dp_jw_init(&w, collect, &o);
    dp_jw_raw(&w, "[", 1);
    for (i = 0; i < 20000; i++) {
        if (i)
            dp_jw_raw(&w, ",", 1);
        dp_jw_raw(&w, "{", 1);
        dp_jw_key(&w, "id");
        dp_jw_int(&w, i);
        dp_jw_raw(&w, ",", 1);
        dp_jw_key(&w, "name");
        dp_jw_cstr(&w, "worker \"x\"");
        dp_jw_raw(&w, "}", 1);
    }
    dp_jw_raw(&w, "]", 1);
    assert_int_equal(dp_jw_finish(&w), 0);
    assert_true(o.flushes > 1);     /* bounded buffer: several flushes */
    arr = json_loadb(o.buf, o.len, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 20000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 19999), "id")), 19999);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 7), "name")),
                        "worker \"x\"");
    json_decref(arr);
    free(o.buf);
}

static void test_failed_flush_is_reported(void **state)
{
    static dp_jsonw w;
    out o = { 0 };
    int i;
    (void)state;
    o.fail_after = 1;
    dp_jw_init(&w, collect, &o);
    for (i = 0; i < 10000; i++)
        dp_jw_cstr(&w, "0123456789abcdef");
    assert_int_equal(dp_jw_finish(&w), -1);
    assert_int_equal(o.flushes, 1);     /* no flush after the failure */
    assert_int_equal(w.failed, 1);
    dp_jw_cstr(&w, NULL);
    free(o.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_large_output_flushes_in_chunks),
        cmocka_unit_test(test_failed_flush_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
