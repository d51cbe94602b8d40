/* P/requests as text (worker/requests_text.c): a request's paragraph with
 * its backend and where, a remote backend, a where that could not be read,
 * and fields that are absent or of the wrong type. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include "worker/requests_text.h"

static apr_pool_t *pool;

static char *render(const char *json)
{
    json_error_t e;
    json_t *o = json_loads(json, 0, &e);
    char *out;

    assert_non_null(o);
    out = dp_requests_text(pool, o);
    json_decref(o);
    return out;
}

static void test_backend_and_where(void **state)
{
    char *t = render("{\"extended_status\":true,\"requests\":[{\"pid\":10,\"tid\":11,"
        "\"method\":\"GET\",\"uri\":\"/checkout?x=1\",\"seconds\":12.34,\"state\":\"writing\","
        "\"client\":\"127.0.0.1\",\"vhost\":\"shop\",\"unique_id\":\"abc\",\"traceparent\":null,"
        "\"backend\":{\"transport\":\"unix\",\"address\":\"/run/fpm.sock\",\"pid\":20,"
        "\"user\":\"www-data\",\"remote\":false},"
        "\"where\":{\"pid\":20,\"runtime\":{\"name\":\"PHP\",\"version\":\"8.2\"},"
        "\"function\":\"charge\",\"class\":\"Checkout\",\"file\":\"/srv/c.php\",\"line\":5,"
        "\"request\":{\"method\":\"GET\",\"uri\":\"/checkout.php\",\"query\":\"x=1\","
        "\"script\":\"/srv/checkout.php\"},"
        "\"languageFrames\":[{\"function\":\"sleep\",\"class\":null,\"file\":null,\"line\":null},"
        "{\"function\":\"charge\",\"class\":\"Checkout\",\"file\":\"/srv/c.php\",\"line\":5}]}}]}");
    (void)state;
    assert_non_null(strstr(t, "1 requests in flight, longest-running first\n"));
    assert_non_null(strstr(t, "GET /checkout?x=1  12.3 s  writing  client 127.0.0.1  vhost shop  "
                              "worker 10 thread 11\n"));
    assert_non_null(strstr(t, "  unique_id abc  traceparent -\n"));
    assert_non_null(strstr(t, "  backend: unix /run/fpm.sock -> pid 20 (www-data)\n"));
    assert_non_null(strstr(t, "  where: pid 20 PHP 8.2  Checkout::charge  /srv/c.php:5\n"));
    assert_non_null(strstr(t, "    runtime's request: GET /checkout.php?x=1  script /srv/checkout.php\n"));
    assert_non_null(strstr(t, "    #0 sleep\n    #1 Checkout::charge  /srv/c.php:5\n"));
}

static void test_remote_and_errors(void **state)
{
    char *t = render("{\"extended_status\":false,\"requests\":[{\"pid\":10,\"tid\":null,"
        "\"state\":\"writing\",\"backend\":{\"transport\":\"tcp\",\"address\":\"10.0.0.9:80\","
        "\"pid\":null,\"remote\":true}},{\"pid\":\"x\",\"uri\":7,\"where\":{\"pid\":30,"
        "\"error\":\"Not read: outside the scope.\"}}]}");
    (void)state;
    assert_non_null(strstr(t, "(ExtendedStatus is off: states only)"));
    assert_non_null(strstr(t, "  backend: tcp 10.0.0.9:80 (remote)\n"));
    assert_non_null(strstr(t, "- -  -  writing"));
    assert_non_null(strstr(t, "  where: pid 30: Not read: outside the scope.\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_and_where),
        cmocka_unit_test(test_remote_and_errors),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
