/* Capture rules (common/capture.c): the parser of DiagProcCapture and
 * DiagProcSpool, a rule's limits (count per window, cool-down, a status
 * rule's window), the shared per-second status counters, capture names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "common/capture.h"
#include "common/proto.h"

static dp_capture_rule parse_ok(const char *args)
{
    dp_capture_rule r;
    char err[512] = "";
    int rc = dp_capture_parse(args, &r, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' refused: %s", args, err);
    return r;
}

static void refused(const char *args, const char *msg)
{
    dp_capture_rule r;
    char err[512] = "";
    assert_int_equal(dp_capture_parse(args, &r, err, sizeof(err)), -1);
    if (!strstr(err, msg))
        fail_msg("'%s': '%s' lacks '%s'", args, err, msg);
}

static void test_issue_examples(void **state)
{
    dp_capture_rule r;
    (void)state;
    r = parse_ok("stuck  when=request-age>5s  path=/shop/*  do=stacks  limit=3/10m");
    assert_string_equal(r.name, "stuck");
    assert_int_equal(r.trigger, DP_CAP_AGE);
    assert_int_equal(r.age_ms, 5000);
    assert_string_equal(r.path, "/shop/*");
    assert_int_equal(r.action, DP_CAP_DO_STACKS);
    assert_int_equal(r.limit_count, 3);
    assert_int_equal(r.limit_window_s, 600);
    r = parse_ok("errors when=status:500-599>=20/1m do=stacks");
    assert_int_equal(r.trigger, DP_CAP_STATUS);
    assert_int_equal(r.status_lo, 500);
    assert_int_equal(r.status_hi, 599);
    assert_int_equal(r.count, 20);
    assert_int_equal(r.window_s, 60);
    assert_int_equal(r.limit_count, 5);         /* the defaults */
    assert_int_equal(r.limit_window_s, 3600);
    r = parse_ok("fat when=rss>512M/30s do=dump:0x2,zip limit=1/1h");
    assert_int_equal(r.trigger, DP_CAP_RSS);
    assert_true(r.rss_bytes == 512ULL << 20);
    assert_int_equal(r.window_s, 30);
    assert_int_equal(r.action, DP_CAP_DO_DUMP);
    assert_int_equal(r.dump_type, 2);
    assert_int_equal(r.zip, 1);
    r = parse_ok("hot when=cpu>90%/10s users=www-data,#1000,* cooldown=5m");
    assert_int_equal(r.trigger, DP_CAP_CPU);
    assert_int_equal(r.cpu_percent, 90);
    assert_int_equal(r.nusers, 3);
    assert_string_equal(r.users[1], "#1000");
    assert_int_equal(r.all_users, 1);
    assert_int_equal(r.cooldown_s, 300);
    r = parse_ok("hot2 when=cpu>90%/10s do=profile:10s");
    assert_int_equal(r.action, DP_CAP_DO_PROFILE);
    assert_int_equal(r.profile_s, 10);
    r = parse_ok("quick when=request-age>250ms vhost=*.example.org");
    assert_int_equal(r.age_ms, 250);
    assert_int_equal(r.action, DP_CAP_DO_STACKS);   /* the default action */
}

static void test_refusals(void **state)
{
    (void)state;
    refused("x when=disk>5", "unknown trigger 'when=disk>5'");
    refused("x when=request-age>5y", "bad duration");
    refused("x when=request-age>0s", "bad duration");
    refused("x when=status:5xx-599>=20/1m", "bad number");
    refused("x when=status:500-599>=x/1m", "bad number");
    refused("x when=status:600-699>=1/1m", "within 100-599");
    refused("x when=status:500-599>=0/1m", "count");
    refused("x when=status:500-599>=1/2h", "bad window");
    refused("x when=rss>1Q/1s", "bad size");
    refused("x when=rss>1G", "needs a duration");
    refused("x when=cpu>90/10s", "bad percentage");
    refused("x when=request-age>1s path=/a[b", "unclosed '['");
    refused("x when=request-age>1s path=a*", "must start with '/'");
    refused("x when=request-age>1s vhost=", "an empty pattern");
    refused("x when=request-age>1s do=dump:0x2,tar", "only ',zip'");
    refused("x when=request-age>1s do=dump:0x80000000", "bad dump type");
    refused("x when=request-age>1s do=profile:1h", "bad duration");
    refused("x when=request-age>1s do=profile:0s", "bad duration");
    refused("x when=request-age>1s limit=101/1m", "bad number in 'limit=101/1m'");
    refused("x when=request-age>1s limit=3/0s", "bad number");
    refused("x when=request-age>1s cooldown=x", "cooldown=x");
    refused("x when=request-age>1s users=a", "rss and cpu rules only");
    refused("x when=rss>1G/1s path=/x", "request-age rules only");
    refused("x when=request-age>1s bogus", "not key=value");
    refused("x do=stacks", "needs when=");
    refused("x.y when=request-age>1s", "the name 'x.y'");
    refused("", "needs NAME");
    refused("abcdefghijklmnopqrstuvwxyz0123456789 when=request-age>1s", "longer than");
}

static void test_spool_quota(void **state)
{
    unsigned long long b;
    long f;
    char err[256];
    (void)state;
    assert_int_equal(dp_spool_parse_quota("2G", "500", &b, &f, err, sizeof(err)), 0);
    assert_true(b == 2ULL << 30);
    assert_int_equal(f, 500);
    assert_int_equal(dp_spool_parse_quota("100", "5", &b, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad size '100'"));
    assert_int_equal(dp_spool_parse_quota("1M", "0", &b, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad number of files '0'"));
}

static void test_limits(void **state)
{
    dp_capture_rule r = parse_ok("x when=request-age>1s limit=3/10m");
    dp_cap_window w;
    int fired = 0, t;
    (void)state;
    memset(&w, 0, sizeof(w));
    for (t = 1000; t < 1020; t++)           /* 20 triggers in 20 s */
        if (dp_cap_may_fire(&r, &w, t)) {
            dp_cap_fired(&r, &w, t);
            fired++;
        }
    assert_int_equal(fired, 3);
    assert_false(dp_cap_may_fire(&r, &w, 1000 + 599));
    assert_true(dp_cap_may_fire(&r, &w, 1000 + 600));      /* the first left the window */
    r = parse_ok("y when=request-age>1s limit=100/1h cooldown=30s");
    memset(&w, 0, sizeof(w));
    dp_cap_fired(&r, &w, 50);
    assert_false(dp_cap_may_fire(&r, &w, 79));
    assert_true(dp_cap_may_fire(&r, &w, 80));
    r = parse_ok("z when=status:500-599>=5/1m limit=100/1h");
    assert_int_equal(dp_cap_cooldown_s(&r), 60);            /* once per window */
    memset(&w, 0, sizeof(w));
    dp_cap_fired(&r, &w, 100);
    assert_false(dp_cap_may_fire(&r, &w, 159));
    assert_true(dp_cap_may_fire(&r, &w, 160));
}

static uint64_t row[DP_CAP_BUCKETS];

static void test_counts(void **state)
{
    int i;
    (void)state;
    memset(row, 0, sizeof(row));
    for (i = 0; i < 7; i++)
        dp_cap_count(row, 5000);
    for (i = 0; i < 3; i++)
        dp_cap_count(row, 5002);
    assert_int_equal(dp_cap_sum(row, 5002, 1, 0), 3);       /* 5001, 5002 */
    assert_int_equal(dp_cap_sum(row, 5002, 2, 0), 10);      /* 5000 … 5002 */
    assert_int_equal(dp_cap_sum(row, 5002, 60, 5000), 3);   /* after the fire at 5000 */
    assert_int_equal(dp_cap_sum(row, 5000 + DP_CAP_BUCKETS, 60, 0), 0); /* a stale bucket */
    dp_cap_count(row, 5000 + DP_CAP_BUCKETS);              /* the same bucket, a new second */
    assert_int_equal(dp_cap_sum(row, 5000 + DP_CAP_BUCKETS, 0, 0), 1);
}

static void test_units(void **state)
{
    long long ms;
    unsigned long long b;
    (void)state;
    assert_int_equal(dp_cap_parse_duration_ms("90", 2, &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(dp_cap_parse_duration_ms("2d", 2, &ms), 0);
    assert_int_equal(ms, 172800000);
    assert_int_equal(dp_cap_parse_duration_ms("5 s", 3, &ms), -1);
    assert_int_equal(dp_cap_parse_duration_ms("99999999999999999999s", 21, &ms), -1);
    assert_int_equal(dp_cap_parse_size("64k", 3, &b), 0);
    assert_true(b == 65536);
    assert_int_equal(dp_cap_parse_size("1.5G", 4, &b), -1);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(dp_cap_name_ok("20261207T210627.470Z-stuck-1"));
    assert_true(dp_cap_name_ok("stacks.json"));
    assert_false(dp_cap_name_ok(""));
    assert_false(dp_cap_name_ok(".."));
    assert_false(dp_cap_name_ok(".windows"));
    assert_false(dp_cap_name_ok("a/b"));
    assert_false(dp_cap_name_ok("a b"));
    assert_false(dp_cap_name_ok("a%2fb"));
}

static int check(unsigned what, const char *id, const char *name, int pid)
{
    dp_request rq;
    char msg[256];
    memset(&rq, 0, sizeof(rq));
    rq.magic = DP_PROTO_MAGIC;
    rq.version = DP_PROTO_VERSION;
    rq.op = DP_OP_CAPTURES;
    rq.what = what;
    rq.pid = pid;
    rq.allow_section = rq.scope_section = -1;
    strcpy(rq.cap_id, id);
    strcpy(rq.cap_name, name);
    return dp_request_check(&rq, msg, sizeof(msg));
}

static void test_request(void **state)
{
    (void)state;
    assert_int_equal(check(DP_CAP_LIST, "", "", 0), 0);
    assert_int_equal(check(DP_CAP_LIST, "x", "", 0), -1);       /* a listing names nothing */
    assert_int_equal(check(DP_CAP_LIST, "", "", 5), -1);        /* nor a process */
    assert_int_equal(check(DP_CAP_GET, "a-1", "core", 0), 0);
    assert_int_equal(check(DP_CAP_GET, "a-1", "", 0), -1);
    assert_int_equal(check(DP_CAP_GET, "..", "core", 0), -1);
    assert_int_equal(check(DP_CAP_GET, "a", "../../etc/shadow", 0), -1);
    assert_int_equal(check(DP_CAP_GET, "a/b", "core", 0), -1);
    assert_int_equal(check(DP_CAP_DELETE, "a-1", "", 0), 0);
    assert_int_equal(check(DP_CAP_DELETE, "a-1", "core", 0), -1);
    assert_int_equal(check(DP_CAP_DELETE, ".windows", "", 0), -1);
    assert_int_equal(check(3, "a", "", 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_examples),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_spool_quota),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
