/* The stacks records (helper/proto.h) and their worker-side view
 * (worker/stacks.c): round trip, absent strings, malformed or out-of-order
 * records refused, invalid UTF-8 from the target's memory made valid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include "common/proto.h"
#include "worker/stacks.h"

static apr_pool_t *pool;

static void thread_rec(dp_rec *r, uint32_t tid)
{
    r->len = 0;
    dp_rec_put_u32(r, tid);
    dp_rec_put_u32(r, 0);
    dp_rec_put_cstr(r, NULL);
}

static void native_rec(dp_rec *r, const char *fn)
{
    r->len = 0;
    dp_rec_put_u64(r, 0x401000);
    dp_rec_put_u64(r, 16);
    dp_rec_put_u32(r, 42);
    dp_rec_put_cstr(r, fn);
    dp_rec_put_cstr(r, "/usr/bin/php8.2");
    dp_rec_put_cstr(r, NULL);
}

static void lang_rec(dp_rec *r, uint32_t native, const char *fn, const char *cls)
{
    r->len = 0;
    dp_rec_put_u32(r, native);
    dp_rec_put_u32(r, 7);
    dp_rec_put_cstr(r, fn);
    dp_rec_put_cstr(r, cls);
    dp_rec_put_cstr(r, "/srv/app/lock.php");
}

static void summary_rec(dp_rec *r)
{
    r->len = 0;
    dp_rec_put_u64(r, 120);
    dp_rec_put_u64(r, 900);
    dp_rec_put_u32(r, DP_SS_LANG);
    dp_rec_put_cstr(r, "PHP");
    dp_rec_put_cstr(r, "8.2");
    dp_rec_put_cstr(r, NULL);
}

static void test_round_trip(void **state)
{
    dp_stacks_view *v = dp_stacks_view_make(pool);
    dp_rec r;
    json_t *j, *t, *f, *l;
    char *text;

    (void)state;
    thread_rec(&r, 99);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_THREAD, r.buf, r.len), 0);
    native_rec(&r, "sleep");
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_NATIVE, r.buf, r.len), 0);
    native_rec(&r, NULL);       /* an unnamed frame keeps its place */
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_NATIVE, r.buf, r.len), 0);
    native_rec(&r, "execute_ex");
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_NATIVE, r.buf, r.len), 0);
    lang_rec(&r, 2, "wait_for_lock", "Lock");
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_LANG, r.buf, r.len), 0);
    lang_rec(&r, 9, "handle", NULL);   /* no such native frame: unplaced */
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_LANG, r.buf, r.len), 0);
    assert_false(dp_stacks_view_complete(v));
    summary_rec(&r);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_SUMMARY, r.buf, r.len), 0);
    assert_true(dp_stacks_view_complete(v));

    j = dp_stacks_view_json(v, 99, "http://h/p/99");
    assert_int_equal(json_integer_value(json_object_get(j, "pausedMicroseconds")), 120);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "runtime"), "name")),
                        "PHP");
    t = json_array_get(json_object_get(j, "threads"), 0);
    assert_int_equal(json_array_size(json_object_get(t, "frames")), 3);
    f = json_array_get(json_object_get(t, "frames"), 1);
    assert_int_equal(json_integer_value(json_object_get(f, "index")), 1);
    assert_true(json_is_null(json_object_get(f, "function")));
    assert_string_equal(json_string_value(json_object_get(f, "pc")), "0x401000");
    assert_true(json_is_null(json_object_get(f, "file")));
    l = json_array_get(json_object_get(t, "languageFrames"), 0);
    assert_string_equal(json_string_value(json_object_get(l, "class")), "Lock");
    assert_int_equal(json_integer_value(json_object_get(l, "nativeIndex")), 2);
    l = json_array_get(json_object_get(t, "languageFrames"), 1);
    assert_true(json_is_null(json_object_get(l, "nativeIndex")));
    json_decref(j);

    text = dp_stacks_view_text(v, 99, "php8.2");
    assert_non_null(strstr(text, "#2  0x0000000000401000 execute_ex - /usr/bin/php8.2\n"
                                 "    > Lock::wait_for_lock at /srv/app/lock.php:7\n"));
    assert_non_null(strstr(text, "#1  0x0000000000401000 ?? - /usr/bin/php8.2\n"));
}

static void test_bad_records(void **state)
{
    dp_stacks_view *v = dp_stacks_view_make(pool);
    dp_rec r;

    (void)state;
    native_rec(&r, "x");
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_NATIVE, r.buf, r.len), -1);  /* no thread */
    thread_rec(&r, 1);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_THREAD, r.buf, r.len - 1), -1); /* short */
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_THREAD, r.buf, r.len), 0);
    r.buf[r.len++] = 0;
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_THREAD, r.buf, r.len), -1); /* extra byte */
    lang_rec(&r, 0, "f", NULL);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_LANG, r.buf, r.len), 0);
    native_rec(&r, "late");     /* native frames come before the language frames */
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_NATIVE, r.buf, r.len), -1);
    r.len = 0;
    dp_rec_put_u32(&r, 0);
    dp_rec_put_u32(&r, 0);
    r.buf[r.len++] = 0x10;      /* a string longer than the record */
    r.buf[r.len++] = 0x00;
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_THREAD, r.buf, r.len), -1);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_DATA, r.buf, r.len), -1);
    summary_rec(&r);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_SUMMARY, r.buf, r.len), 0);
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_SUMMARY, r.buf, r.len), -1); /* after the end */
}

static void test_strings(void **state)
{
    dp_stacks_view *v = dp_stacks_view_make(pool);
    char big[DP_REC_STR_MAX + 100];
    dp_rec r;
    json_t *j;
    const char *fn;

    (void)state;
    memset(big, 'a', sizeof(big));
    r.len = 0;
    dp_rec_put_str(&r, big, sizeof(big));
    assert_int_equal(r.len, 2 + DP_REC_STR_MAX);    /* cut at the cap */
    thread_rec(&r, 5);
    dp_stacks_view_add(v, DP_FR_STACK_THREAD, r.buf, r.len);
    lang_rec(&r, UINT32_MAX, "\xff<script>", NULL);  /* bytes from the target */
    assert_int_equal(dp_stacks_view_add(v, DP_FR_STACK_LANG, r.buf, r.len), 0);
    summary_rec(&r);
    dp_stacks_view_add(v, DP_FR_STACK_SUMMARY, r.buf, r.len);
    j = dp_stacks_view_json(v, 5, "h");
    fn = json_string_value(json_object_get(json_array_get(json_object_get(
        json_array_get(json_object_get(j, "threads"), 0), "languageFrames"), 0), "function"));
    assert_non_null(fn);                /* valid UTF-8, so jansson kept it */
    assert_non_null(strstr(fn, "<script>"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_strings),
    };
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
