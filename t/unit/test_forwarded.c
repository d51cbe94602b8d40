/* Unit tests for the forwarding headers (worker/forwarded.c): RFC 7239's
 * last element, quoted strings, X-Forwarded-* fallbacks, and the values
 * that must never reach an href. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include "worker/forwarded.h"

static apr_pool_t *pool;

static dp_forwarded parse(const char *fwd, const char *xhost, const char *xproto,
                          const char *xprefix)
{
    dp_forwarded f;
    dp_forwarded_parse(pool, fwd, xhost, xproto, xprefix, &f);
    return f;
}

#define assert_null_or(s, want) \
    do { if (want) assert_string_equal((s), (want)); else assert_null(s); } while (0)

static void expect(dp_forwarded f, const char *scheme, const char *host, const char *prefix)
{
    assert_null_or(f.scheme, scheme);
    assert_null_or(f.host, host);
    assert_null_or(f.prefix, prefix);
}

static void test_nothing(void **state)
{
    (void)state;
    expect(parse(NULL, NULL, NULL, NULL), NULL, NULL, NULL);
}

static void test_forwarded_last_element(void **state)
{
    (void)state;
    expect(parse("host=front.example;proto=https", NULL, NULL, NULL),
           "https", "front.example", NULL);
    /* each proxy appends: the nearest one's element is the last */
    expect(parse("host=evil.example;proto=http, for=10.0.0.1;host=front.example;proto=https",
                 NULL, NULL, NULL), "https", "front.example", NULL);
    /* a quoted host with a port, a comma inside quotes does not split */
    expect(parse("for=\"a,b\";host=\"front.example:8443\";proto=HTTPS", NULL, NULL, NULL),
           "https", "front.example:8443", NULL);
    expect(parse("for=\"[2001:db8::1]:4711\"; host=\"[2001:db8::2]:8080\"", NULL, NULL, NULL),
           NULL, "[2001:db8::2]:8080", NULL);
    /* names are case-insensitive, escapes in quoted strings */
    expect(parse("Host=\"fr\\ont.example\";PROTO=http", NULL, NULL, NULL),
           "http", "front.example", NULL);
}

static void test_forwarded_wins_over_x(void **state)
{
    (void)state;
    expect(parse("host=a.example;proto=https", "b.example", "http", NULL),
           "https", "a.example", NULL);
    /* a field Forwarded lacks comes from X-Forwarded-* */
    expect(parse("for=1.2.3.4;proto=https", "b.example", "http", NULL),
           "https", "b.example", NULL);
}

static void test_forwarded_malformed(void **state)
{
    (void)state;
    /* unterminated quote, a pair without '=', garbage after a value:
     * the whole header is ignored */
    expect(parse("host=\"a.example", NULL, NULL, NULL), NULL, NULL, NULL);
    expect(parse("host=a.example;proto", NULL, NULL, NULL), NULL, NULL, NULL);
    expect(parse("host=a.example x;proto=https", NULL, NULL, NULL), NULL, NULL, NULL);
    expect(parse("proto=https;host=\"a.example\"junk", "b.example", NULL, NULL),
           NULL, "b.example", NULL);
}

static void test_x_forwarded(void **state)
{
    (void)state;
    /* mod_proxy appends its own value: the last entry is the nearest proxy's */
    expect(parse(NULL, "evil.example, front.example:8080", "https", "/api/instances/web1"),
           "https", "front.example:8080", "/api/instances/web1");
    expect(parse(NULL, " front.example ", " http , https ", " /p/ "), "https", "front.example", "/p");
    /* the proxy's root */
    expect(parse(NULL, NULL, NULL, "/"), NULL, NULL, "");
    expect(parse(NULL, NULL, NULL, "/a%20b/c"), NULL, NULL, "/a%20b/c");
}

static void test_rejected_values(void **state)
{
    (void)state;
    /* nothing that could leave the authority or the path */
    expect(parse(NULL, "evil.example/x", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, "evil.example@x", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, "a.example:80x", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, "a.example:123456", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, ":80", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, "", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, "[::1", NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, "<script>", NULL, NULL), NULL, NULL, NULL);
    expect(parse("host=\"a\\\"b\"", NULL, NULL, NULL), NULL, NULL, NULL);
    expect(parse(NULL, NULL, "javascript", NULL), NULL, NULL, NULL);
    expect(parse(NULL, NULL, "ftp", NULL), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "relative/path"), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "//evil.example/p"), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "/p?x=1"), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "/p#f"), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "/p\"><script>"), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "/p%2"), NULL, NULL, NULL);
    expect(parse(NULL, NULL, NULL, "/p q"), NULL, NULL, NULL);
    /* one bad field does not take the good ones with it */
    expect(parse(NULL, "evil/x", "https", "/ok"), "https", NULL, "/ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing),
        cmocka_unit_test(test_forwarded_last_element),
        cmocka_unit_test(test_forwarded_wins_over_x),
        cmocka_unit_test(test_forwarded_malformed),
        cmocka_unit_test(test_x_forwarded),
        cmocka_unit_test(test_rejected_values),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests_name("forwarded", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc ? 1 : 0;
}
