/* Unit tests for the API's formats (worker/format.c): .NET TimeSpan, ISO-8601
 * UTC, UTF-8 repair, the joined command line, soname versions, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "common/format.h"

static apr_pool_t *pool;

#define FFFD "\xEF\xBF\xBD"

/* ---- dp_timespan -------------------------------------------------------- */

static void test_timespan(void **state)
{
    (void)state;
    assert_string_equal(dp_timespan(0, 100, pool), "00:00:00.0000000");
    assert_string_equal(dp_timespan(1, 100, pool), "00:00:00.0100000");
    assert_string_equal(dp_timespan(150, 100, pool), "00:00:01.5000000");
    assert_string_equal(dp_timespan(5999, 100, pool), "00:00:59.9900000");
    assert_string_equal(dp_timespan(6000, 100, pool), "00:01:00.0000000");
    assert_string_equal(dp_timespan(360000, 100, pool), "01:00:00.0000000");
    /* the last tick of a day has no day part, the first of the next has */
    assert_string_equal(dp_timespan(8639999, 100, pool), "23:59:59.9900000");
    assert_string_equal(dp_timespan(8640000, 100, pool), "1.00:00:00.0000000");
    assert_string_equal(dp_timespan((86400ULL + 2 * 3600 + 3 * 60 + 4) * 100, 100, pool),
                        "1.02:03:04.0000000");
    assert_string_equal(dp_timespan((123 * 86400ULL + 23 * 3600 + 59 * 60 + 59) * 100 + 99, 100,
                                    pool), "123.23:59:59.9900000");
    /* other tick rates */
    assert_string_equal(dp_timespan(1, 1000, pool), "00:00:00.0010000");
    assert_string_equal(dp_timespan(1500, 1000, pool), "00:00:01.5000000");
    assert_string_equal(dp_timespan(3, 250, pool), "00:00:00.0120000");
}

/* ---- dp_iso_time -------------------------------------------------------- */

static void test_iso_time(void **state)
{
    (void)state;
    assert_string_equal(dp_iso_time(0, 0, pool), "1970-01-01T00:00:00.0000000Z");
    assert_string_equal(dp_iso_time(1700000000, 123456789, pool), "2023-11-14T22:13:20.1234567Z");
    assert_string_equal(dp_iso_time(1709164800, 0, pool), "2024-02-29T00:00:00.0000000Z");
    assert_string_equal(dp_iso_time(1735689599, 999999999, pool), "2024-12-31T23:59:59.9999999Z");
    /* below 100 ns is cut, not rounded */
    assert_string_equal(dp_iso_time(1, 99, pool), "1970-01-01T00:00:01.0000000Z");
    assert_string_equal(dp_iso_time(1, 100, pool), "1970-01-01T00:00:01.0000001Z");
    assert_string_equal(dp_iso_time(1, 5000000, pool), "1970-01-01T00:00:01.0050000Z");
    assert_string_equal(dp_iso_time(1, 50000000, pool), "1970-01-01T00:00:01.0500000Z");
    /* past 2038 */
    assert_string_equal(dp_iso_time(4102444800LL, 0, pool), "2100-01-01T00:00:00.0000000Z");
}

/* ---- dp_utf8 ------------------------------------------------------------ */

static void utf8_is(const char *in, size_t len, const char *want)
{
    const char *got = dp_utf8(in, len, pool);
    if (strcmp(got, want) != 0) {
        size_t i;
        print_error("dp_utf8 gave:");
        for (i = 0; got[i]; i++)
            print_error(" %02x", (unsigned char)got[i]);
        print_error("\n");
        fail();
    }
}

#define UTF8_IS(lit, want) utf8_is(lit, sizeof(lit) - 1, want)

static void test_utf8_valid_kept(void **state)
{
    const char *s;
    (void)state;

    UTF8_IS("", "");
    UTF8_IS("plain ascii <script>", "plain ascii <script>");
    UTF8_IS("h\xC3\xA9llo", "h\xC3\xA9llo");                /* U+00E9 */
    UTF8_IS("\xC2\x80", "\xC2\x80");                        /* U+0080, smallest 2-byte */
    UTF8_IS("\xDF\xBF", "\xDF\xBF");                        /* U+07FF */
    UTF8_IS("\xE0\xA0\x80", "\xE0\xA0\x80");                /* U+0800, smallest 3-byte */
    UTF8_IS("\xE6\x97\xA5\xE6\x9C\xAC", "\xE6\x97\xA5\xE6\x9C\xAC");   /* 日本 */
    UTF8_IS("\xED\x9F\xBF", "\xED\x9F\xBF");                /* U+D7FF, just below surrogates */
    UTF8_IS("\xEE\x80\x80", "\xEE\x80\x80");                /* U+E000, just above */
    UTF8_IS("\xEF\xBF\xBF", "\xEF\xBF\xBF");                /* U+FFFF */
    UTF8_IS("\xF0\x90\x80\x80", "\xF0\x90\x80\x80");        /* U+10000, smallest 4-byte */
    UTF8_IS("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80");        /* U+1F600 */
    UTF8_IS("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF");        /* U+10FFFF, the last */
    UTF8_IS(FFFD, FFFD);
    /* control characters are valid UTF-8: kept (JSON escaping is jsonw's job) */
    UTF8_IS("a\nb\tc\x1b", "a\nb\tc\x1b");

    /* len is respected: nothing past it is read or copied */
    s = dp_utf8("abcdef", 3, pool);
    assert_string_equal(s, "abc");
}

static void test_utf8_invalid_replaced(void **state)
{
    (void)state;

    /* each invalid byte is one U+FFFD; nothing is dropped */
    UTF8_IS("\xff", FFFD);
    UTF8_IS("\xff\xfe", FFFD FFFD);
    UTF8_IS("bad\xff\xfename", "bad" FFFD FFFD "name");
    UTF8_IS("\x80", FFFD);                                  /* lone continuation */
    UTF8_IS("\xBF\x80", FFFD FFFD);
    UTF8_IS("\xC3", FFFD);                                  /* cut at the end */
    UTF8_IS("\xC3" "A", FFFD "A");
    UTF8_IS("\xE2\x82", FFFD FFFD);
    UTF8_IS("\xE2\x82" "A", FFFD FFFD "A");
    UTF8_IS("\xF0\x9F\x98", FFFD FFFD FFFD);
    UTF8_IS("x\xC3\xA9\xA9", "x\xC3\xA9" FFFD);             /* valid, then a stray */
    /* overlong forms */
    UTF8_IS("\xC0\xAF", FFFD FFFD);                         /* '/' in 2 bytes */
    UTF8_IS("\xC1\xBF", FFFD FFFD);
    UTF8_IS("\xC0\x80", FFFD FFFD);                         /* "modified UTF-8" NUL */
    UTF8_IS("\xE0\x80\xAF", FFFD FFFD FFFD);
    UTF8_IS("\xE0\x9F\xBF", FFFD FFFD FFFD);                /* U+07FF in 3 bytes */
    UTF8_IS("\xF0\x80\x80\xAF", FFFD FFFD FFFD FFFD);
    UTF8_IS("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD);       /* U+FFFF in 4 bytes */
    /* UTF-16 surrogates encoded as UTF-8 (CESU-8) */
    UTF8_IS("\xED\xA0\x80", FFFD FFFD FFFD);                /* U+D800 */
    UTF8_IS("\xED\xBF\xBF", FFFD FFFD FFFD);                /* U+DFFF */
    UTF8_IS("\xED\xA0\xBD\xED\xB8\x80", FFFD FFFD FFFD FFFD FFFD FFFD);
    /* beyond U+10FFFF, and bytes that never occur */
    UTF8_IS("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
    UTF8_IS("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD);
    UTF8_IS("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
    UTF8_IS("\xFE\xFF", FFFD FFFD);
}

static void test_utf8_nul_replaced(void **state)
{
    const char *s;
    (void)state;

    /* a NUL inside the data would end a C string early: U+FFFD instead */
    UTF8_IS("a\0b", "a" FFFD "b");
    UTF8_IS("\0", FFFD);
    UTF8_IS("\0\0", FFFD FFFD);
    UTF8_IS("x\0\xff", "x" FFFD FFFD);
    s = dp_utf8("k=v\0", 4, pool);
    assert_string_equal(s, "k=v" FFFD);
    assert_int_equal(strlen(s), 6);
}

/* ---- dp_join_cmdline ---------------------------------------------------- */

static const char *join(int n, ...)
{
    apr_array_header_t *a = apr_array_make(pool, n ? n : 1, sizeof(const char *));
    va_list ap;
    int i;

    va_start(ap, n);
    for (i = 0; i < n; i++)
        *(const char **)apr_array_push(a) = va_arg(ap, const char *);
    va_end(ap);
    return dp_join_cmdline(a, pool);
}

static void test_join_cmdline(void **state)
{
    (void)state;
    assert_string_equal(join(0), "");
    assert_string_equal(join(1, "/bin/sleep"), "/bin/sleep");
    assert_string_equal(join(3, "ls", "-l", "/tmp"), "ls -l /tmp");
    assert_string_equal(join(2, "cat", "my file"), "cat \"my file\"");
    assert_string_equal(join(3, "a", "", "b"), "a \"\" b");
    assert_string_equal(join(1, ""), "\"\"");
    assert_string_equal(join(2, "", ""), "\"\" \"\"");
    assert_string_equal(join(2, "echo", "say \"hi\""), "echo \"say \\\"hi\\\"\"");
    assert_string_equal(join(2, "echo", "\"q\""), "echo \"\\\"q\\\"\"");
    assert_string_equal(join(2, "echo", "it's"), "echo \"it's\"");
    assert_string_equal(join(2, "x", "tab\there"), "x \"tab\there\"");
    assert_string_equal(join(2, "x", "new\nline"), "x \"new\nline\"");
    assert_string_equal(join(2, "x", " "), "x \" \"");
    /* a backslash alone needs no quotes */
    assert_string_equal(join(2, "x", "C:\\dir"), "x C:\\dir");
    /* the fixture command line of test_procfs */
    assert_string_equal(join(6, "/usr/bin/python3", "-c", "print(1)", "", "a b", "say \"hi\""),
                        "/usr/bin/python3 -c print(1) \"\" \"a b\" \"say \\\"hi\\\"\"");
}

static void test_join_cmdline_worst_case_fits(void **state)
{
    /* every byte escaped: the output buffer must hold 2n + quotes */
    char q[1001];
    const char *s;
    size_t i;
    (void)state;

    memset(q, '"', 1000);
    q[1000] = '\0';
    s = join(3, q, q, q);
    assert_int_equal(strlen(s), 3 * (2000 + 2) + 2);
    for (i = 0; i < 3; i++) {
        const char *arg = s + i * 2003;
        size_t k;
        assert_int_equal(arg[0], '"');
        for (k = 0; k < 1000; k++) {
            assert_int_equal(arg[1 + 2 * k], '\\');
            assert_int_equal(arg[2 + 2 * k], '"');
        }
        assert_int_equal(arg[2001], '"');
    }
}

/* ---- dp_soname_version, dp_hex ------------------------------------------ */

static void test_soname_version(void **state)
{
    (void)state;
    assert_string_equal(dp_soname_version("/usr/lib/x86_64-linux-gnu/libc.so.6"), "6");
    assert_string_equal(dp_soname_version("libc.so.6"), "6");
    assert_string_equal(dp_soname_version("/usr/lib/x86_64-linux-gnu/libjansson.so.4.14.0"),
                        "4.14.0");
    assert_string_equal(dp_soname_version("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "2");
    assert_string_equal(dp_soname_version("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"), "1.2.13");
    assert_string_equal(dp_soname_version("/usr/lib/libfoo.so"), "");
    assert_string_equal(dp_soname_version("/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"), "");
    assert_string_equal(dp_soname_version("/usr/bin/python3.11"), "");
    assert_string_equal(dp_soname_version("/opt/lib.so.1/bin/tool"), "");    /* dir, not file */
    assert_string_equal(dp_soname_version("libx.so.1a"), "");
    assert_string_equal(dp_soname_version("[vdso]"), "");
    assert_string_equal(dp_soname_version(""), "");
}

static void test_hex(void **state)
{
    static const unsigned char b[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
    (void)state;
    assert_string_equal(dp_hex(b, sizeof(b), pool), "00017f80abcdefff");
    assert_string_equal(dp_hex(b, 1, pool), "00");
    assert_string_equal(dp_hex(b + 4, 2, pool), "abcd");
    assert_string_equal(dp_hex(b, 0, pool), "");
}

static void check_line(const char *req, const char *method, const char *uri)
{
    dp_request_line l;
    dp_split_request_line(req, &l);
    assert_int_equal(l.method_len, strlen(method));
    assert_memory_equal(req, method, l.method_len);
    assert_int_equal(l.uri_len, strlen(uri));
    assert_memory_equal(req + l.uri_off, uri, l.uri_len);
}

static void test_split_request_line(void **state)
{
    (void)state;
    check_line("GET /stuck/p1 HTTP/1.1", "GET", "/stuck/p1");
    check_line("POST /a?b=c HTTP/1.0", "POST", "/a?b=c");
    /* cut at 63 bytes before the protocol: the URI runs to the end */
    check_line("GET /a/very/long/path/that/httpd/cut/before/the/protocol/was/kep",
               "GET", "/a/very/long/path/that/httpd/cut/before/the/protocol/was/kep");
    check_line("GET", "", "GET");
    check_line("GET ", "GET", "");
    check_line("", "", "");
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timespan),
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_utf8_valid_kept),
        cmocka_unit_test(test_utf8_invalid_replaced),
        cmocka_unit_test(test_utf8_nul_replaced),
        cmocka_unit_test(test_join_cmdline),
        cmocka_unit_test(test_join_cmdline_worst_case_fits),
        cmocka_unit_test(test_soname_version),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_split_request_line),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests_name("format", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc ? 1 : 0;
}
