/* What a thread waits on and where its sockets lead (proc/sockets.c): the
 * syscall file's three shapes, net/tcp and net/tcp6 lines as the kernel
 * writes them, the endpoints' text (IPv4, IPv6, IPv4-mapped), the client's
 * side told from a backend connection, the peer with the ends swapped,
 * epoll's fdinfo lines, fd links, and which holder of a socket is named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "proc/sockets.h"

static apr_pool_t *pool;

static void test_syscall(void **state)
{
    dp_syscall sc;
    const char *poll_line = "7 0x7f251b0f9000 0x1 0x7530 0x0 0x0 0x0 0x7fff20f378f8 0x7f251b2732ad\n";
    char line[160];

    (void)state;
    assert_int_equal(dp_parse_syscall("running\n", 8, &sc), 0);
    assert_true(sc.running);
    assert_int_equal(dp_parse_syscall("-1 0x7ffd1a 0x7f00aa\n", 21, &sc), 0);
    assert_false(sc.running);
    assert_int_equal(sc.nr, -1);
    snprintf(line, sizeof(line), "%d 0x1 0x7f251b0f9000 0x20000 0x0 0x0 0x0 0x7ff 0x7f\n",
             (int)SYS_read);
    assert_int_equal(dp_parse_syscall(line, strlen(line), &sc), 0);
    assert_int_equal(sc.nr, SYS_read);
    assert_int_equal(sc.args[0], 1);
    assert_int_equal(sc.args[2], 0x20000);
    assert_int_equal(dp_syscall_wait_kind(sc.nr), DP_WAIT_FD);
    assert_int_equal(dp_parse_syscall(poll_line, strlen(poll_line), &sc), 0);
    assert_int_equal(sc.args[0], 0x7f251b0f9000ULL);
    assert_int_equal(sc.args[1], 1);
    assert_int_equal(dp_parse_syscall("", 0, &sc), -1);
    assert_int_equal(dp_parse_syscall("0 0x1 zz\n", 9, &sc), -1);
    assert_int_equal(dp_parse_syscall("0 0x1 0x2\n", 10, &sc), -1);     /* cut short */
    assert_int_equal(dp_syscall_wait_kind(SYS_ppoll), DP_WAIT_POLL);
    assert_int_equal(dp_syscall_wait_kind(SYS_pselect6), DP_WAIT_SELECT);
    assert_int_equal(dp_syscall_wait_kind(SYS_epoll_pwait), DP_WAIT_EPOLL);
    assert_int_equal(dp_syscall_wait_kind(SYS_connect), DP_WAIT_FD);
    assert_int_equal(dp_syscall_wait_kind(SYS_sendfile), DP_WAIT_FD);
#ifdef SYS_poll
    assert_int_equal(dp_syscall_wait_kind(SYS_poll), DP_WAIT_POLL);
#endif
#ifdef SYS_epoll_wait
    assert_int_equal(dp_syscall_wait_kind(SYS_epoll_wait), DP_WAIT_EPOLL);
#endif
    assert_int_equal(dp_syscall_wait_kind(SYS_nanosleep), DP_WAIT_NONE);
}

/* httpd listening on 127.0.0.1:8080 (0x1F90), a client connected to it
 * (accepted: 127.0.0.1:8080 <- :40000), the worker's backend connection
 * 127.0.0.1:40002 -> :9000 (0x2328) and the backend's accepted end, a
 * listener on any address :9000, and a SYN_SENT to 192.0.2.1:80. */
static const char tcp4[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0\n"
    "   1: 00000000:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 1002 1 0000000000000000 100 0 0 10 0\n"
    "   2: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000    33        0 1003 1 0000000000000000 20 4 30 10 -1\n"
    "   3: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 1004 1 0000000000000000 20 4 30 10 -1\n"
    "   4: 0100007F:9C42 0100007F:2328 01 00000000:00000000 00:00000000 00000000    33        0 1005 1 0000000000000000 20 4 30 10 -1\n"
    "   5: 0100007F:2328 0100007F:9C42 01 00000000:00000000 00:00000000 00000000    33        0 1006 1 0000000000000000 20 4 30 10 -1\n"
    "   6: 0F00020A:9C44 010200C0:0050 02 00000001:00000000 01:00000123 00000002    33        0 1007 2 0000000000000000 100 0 0 10 -1\n"
    "garbage\n";

static void test_tcp_table(void **state)
{
    apr_array_header_t *t = apr_array_make(pool, 8, sizeof(dp_tcp_entry));
    const dp_tcp_entry *client, *backend, *peer, *syn;
    char buf[64];

    (void)state;
    dp_parse_tcp_table(tcp4, sizeof(tcp4) - 1, 4, 1000, t);
    assert_int_equal(t->nelts, 7);
    assert_int_equal(APR_ARRAY_IDX(t, 0, dp_tcp_entry).state, DP_TCP_LISTEN);
    assert_int_equal(APR_ARRAY_IDX(t, 1, dp_tcp_entry).uid, 33);
    assert_int_equal(APR_ARRAY_IDX(t, 1, dp_tcp_entry).lport, 9000);

    client = dp_tcp_by_inode(t, 1003);
    backend = dp_tcp_by_inode(t, 1005);
    syn = dp_tcp_by_inode(t, 1007);
    assert_non_null(client);
    assert_non_null(backend);
    assert_null(dp_tcp_by_inode(t, 4242));
    assert_null(dp_tcp_by_inode(t, 0));

    dp_format_endpoint(4, backend->laddr, backend->lport, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:40002");
    dp_format_endpoint(4, backend->raddr, backend->rport, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:9000");
    dp_format_endpoint(4, syn->raddr, syn->rport, buf, sizeof(buf));
    assert_string_equal(buf, "192.0.2.1:80");
    dp_format_endpoint(4, syn->laddr, syn->lport, buf, sizeof(buf));
    assert_string_equal(buf, "10.2.0.15:40004");

    /* the accepted client connection is httpd's side; the backend one is not,
       though the backend's own accepted end is on a listening port */
    assert_true(dp_tcp_accepted(t, client));
    assert_false(dp_tcp_accepted(t, backend));
    assert_true(dp_tcp_accepted(t, dp_tcp_by_inode(t, 1006)));

    peer = dp_tcp_peer(t, backend);
    assert_non_null(peer);
    assert_int_equal(peer->inode, 1006);
    assert_int_equal(dp_tcp_peer(t, client)->inode, 1004);
    assert_null(dp_tcp_peer(t, syn));               /* another host: nobody here */
    assert_null(dp_tcp_peer(t, dp_tcp_by_inode(t, 1001)));     /* a listener has none */
}

/* tcp6: [::1]:8443 listening, a connection [::1]:50000 -> [::1]:8443, and
 * an IPv4 client on a dual-stack listener ([::ffff:127.0.0.1]). */
static const char tcp6[] =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000001000000:20FB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0\n"
    "   1: 00000000000000000000000001000000:C350 00000000000000000000000001000000:20FB 01 00000000:00000000 00:00000000 00000000    33        0 2002 1 0000000000000000 20 4 30 10 -1\n"
    "   2: 0000000000000000FFFF00000100007F:C352 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000    33        0 2003 1 0000000000000000 20 4 30 10 -1\n"
    "   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2004 1 0000000000000000 100 0 0 10 0\n";

static void test_tcp6(void **state)
{
    apr_array_header_t *t = apr_array_make(pool, 8, sizeof(dp_tcp_entry));
    const dp_tcp_entry *e;
    char buf[80];

    (void)state;
    dp_parse_tcp_table(tcp6, sizeof(tcp6) - 1, 6, 1000, t);
    assert_int_equal(t->nelts, 4);
    e = dp_tcp_by_inode(t, 2002);
    dp_format_endpoint(6, e->laddr, e->lport, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:50000");
    dp_format_endpoint(6, e->raddr, e->rport, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:8443");
    assert_null(dp_tcp_peer(t, e));
    e = dp_tcp_by_inode(t, 2003);
    dp_format_endpoint(6, e->laddr, e->lport, buf, sizeof(buf));
    assert_string_equal(buf, "[::ffff:127.0.0.1]:50002");
    e = dp_tcp_by_inode(t, 2004);
    dp_format_endpoint(6, e->laddr, e->lport, buf, sizeof(buf));
    assert_string_equal(buf, "[2001:db8::1]:443");

    /* a cap on lines */
    t = apr_array_make(pool, 8, sizeof(dp_tcp_entry));
    dp_parse_tcp_table(tcp6, sizeof(tcp6) - 1, 6, 2, t);
    assert_int_equal(t->nelts, 2);
}

static void test_epoll_and_links(void **state)
{
    static const char info[] =
        "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t26\n"
        "tfd:        5 events:       1f data:                5  pos:0 ino:e99dfb sdev:f\n"
        "tfd:       12 events:       19 data:                c  pos:0 ino:e99dfb sdev:f\n"
        "tfd:      x12 events:       19\n"
        "tfd:        7 events:       19 data:                7  pos:0 ino:e99dfb sdev:f\n";
    int fds[4];

    (void)state;
    assert_int_equal(dp_parse_epoll_tfds(info, sizeof(info) - 1, fds, 4), 3);
    assert_int_equal(fds[0], 5);
    assert_int_equal(fds[1], 12);
    assert_int_equal(fds[2], 7);
    assert_int_equal(dp_parse_epoll_tfds(info, sizeof(info) - 1, fds, 1), 1);
    assert_int_equal(dp_parse_epoll_tfds("pos:\t0\n", 7, fds, 4), 0);

    assert_int_equal(dp_socket_inode("socket:[15311360]", 17), 15311360);
    assert_int_equal(dp_socket_inode("pipe:[1234]", 11), 0);
    assert_int_equal(dp_socket_inode("socket:[]", 9), 0);
    assert_int_equal(dp_socket_inode("socket:[12a]", 12), 0);
    assert_int_equal(dp_socket_inode("/dev/null", 9), 0);
}

static void test_pick_holder(void **state)
{
    /* php-fpm: the master (100, parent 1) and two children (101, 102) */
    pid_t pids[] = { 100, 102, 101 }, ppids[] = { 1, 100, 100 };
    pid_t one[] = { 200 }, one_pp[] = { 1 };
    pid_t loop[] = { 5, 6 }, loop_pp[] = { 6, 5 };

    (void)state;
    assert_int_equal(dp_pick_holder(pids, ppids, 3), 2);        /* 101: a child, lowest */
    assert_int_equal(dp_pick_holder(pids, ppids, 2), 1);        /* master and 102: 102 */
    assert_int_equal(dp_pick_holder(one, one_pp, 1), 0);
    assert_int_equal(dp_pick_holder(one, one_pp, 0), -1);
    assert_int_equal(dp_pick_holder(loop, loop_pp, 2), 0);      /* still an answer */

    /* a listener: the master; under systemd (pid 1 holds it too), still the master */
    assert_int_equal(dp_pick_listener_holder(pids, ppids, 3), 0);
    {
        pid_t sd[] = { 1, 101, 100, 102 }, sd_pp[] = { 0, 100, 1, 100 };
        pid_t only[] = { 1 }, only_pp[] = { 0 };
        assert_int_equal(dp_pick_listener_holder(sd, sd_pp, 4), 2);
        assert_int_equal(dp_pick_listener_holder(only, only_pp, 1), 0);
        assert_int_equal(dp_pick_listener_holder(sd, sd_pp, 0), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syscall),
        cmocka_unit_test(test_tcp_table),
        cmocka_unit_test(test_tcp6),
        cmocka_unit_test(test_epoll_and_links),
        cmocka_unit_test(test_pick_holder),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
