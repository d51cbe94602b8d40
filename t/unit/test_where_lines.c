/* The helper's DP_READ_WHERE answer as entries (worker/where_lines.c): a
 * local backend over unix and TCP, a remote one, an abstract socket, and
 * lines that are skipped: cut short, numbers that are not, empty, a tid 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "worker/where_lines.h"

static apr_pool_t *pool;

static void test_lines(void **state)
{
    char *buf = apr_pstrdup(pool,
        "101\tunix\t\t/run/php/fpm.sock\t2001\t33\tphp-fpm8.2\n"
        "102\ttcp\t127.0.0.1:40002\t127.0.0.1:9000\t2002\t33\tphp-fpm8.2\n"
        "103\ttcp6\t[::1]:40004\t[2001:db8::1]:443\t0\t-1\t\n"
        "104\ttcp\tcut short\n"
        "x\ttcp\ta\tb\t1\t2\tc\n"
        "105\ttcp\ta\tb\t1x\t2\tc\n"
        "106\ttcp\ta\tb\t\t2\tc\n"
        "0\ttcp\ta\tb\t1\t2\tc\n"
        "\n"
        "107\tunix\t@abstract\t\t2003\t1000\tgunicorn: worker");
    apr_array_header_t *out = apr_array_make(pool, 4, sizeof(dp_where_entry));
    const dp_where_entry *e;

    (void)state;
    assert_int_equal(dp_where_parse(buf, out, pool), 4);
    e = &APR_ARRAY_IDX(out, 0, dp_where_entry);
    assert_int_equal(e->tid, 101);
    assert_string_equal(e->transport, "unix");
    assert_string_equal(e->local, "");
    assert_string_equal(e->peer, "/run/php/fpm.sock");
    assert_int_equal(e->peer_pid, 2001);
    assert_int_equal(e->peer_uid, 33);
    assert_string_equal(e->peer_comm, "php-fpm8.2");
    e = &APR_ARRAY_IDX(out, 1, dp_where_entry);
    assert_string_equal(e->local, "127.0.0.1:40002");
    assert_string_equal(e->peer, "127.0.0.1:9000");
    e = &APR_ARRAY_IDX(out, 2, dp_where_entry);
    assert_string_equal(e->transport, "tcp6");
    assert_string_equal(e->peer, "[2001:db8::1]:443");
    assert_int_equal(e->peer_pid, 0);           /* remote */
    assert_int_equal(e->peer_uid, -1);
    assert_string_equal(e->peer_comm, "");
    e = &APR_ARRAY_IDX(out, 3, dp_where_entry);
    assert_int_equal(e->tid, 107);
    assert_string_equal(e->local, "@abstract");
    assert_string_equal(e->peer_comm, "gunicorn: worker");

    buf = apr_pstrdup(pool, "");
    assert_int_equal(dp_where_parse(buf, out, pool), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
