/* The helper's audit rate limit (helper/log.c) on a clock of the test's
 * own: a burst, then one line a second, the count of what was left out
 * handed to exactly one line, kinds and uids apart, a full table bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "helper/log.h"

#define S 1000000000ULL

static int admit(uint32_t kind, long uid, uint64_t now, uint64_t *left, uint64_t *since)
{
    *left = 0;
    *since = 0;
    return dp_audit_admit(kind, uid, "test", now, left, since);
}

static void test_burst_then_rate(void **state)
{
    uint64_t left, since, t0 = 1000 * S;
    int i, n = 0;

    (void)state;
    for (i = 0; i < 1000; i++)                  /* a thousand in one instant */
        n += admit(1, 33, t0, &left, &since);
    assert_int_equal(n, DP_AUDIT_BURST);
    /* half a second on: still nothing; a second on: one line, with the count */
    assert_int_equal(admit(1, 33, t0 + S / 2, &left, &since), 0);
    assert_int_equal(admit(1, 33, t0 + S, &left, &since), 1);
    assert_int_equal(left, 1000 - DP_AUDIT_BURST + 1);
    assert_true(since == t0);
    assert_int_equal(admit(1, 33, t0 + S, &left, &since), 0);
    /* a quiet minute refills the burst */
    n = 0;
    for (i = 0; i < 100; i++)
        n += admit(1, 33, t0 + 61 * S, &left, &since);
    assert_int_equal(n, DP_AUDIT_BURST);
}

static void test_kinds_and_uids_apart(void **state)
{
    uint64_t left, since, t0 = 5000 * S;
    int i;

    (void)state;
    for (i = 0; i < 100; i++)
        admit(2, 1000, t0, &left, &since);
    /* another uid, another kind: their own bursts */
    assert_int_equal(admit(2, 1001, t0, &left, &since), 1);
    assert_int_equal(admit(3, 1000, t0, &left, &since), 1);
    assert_int_equal(admit(2, 1000, t0, &left, &since), 0);
    assert_int_not_equal(dp_audit_kind(10003, "not the workers' user"),
                         dp_audit_kind(10003, "not a child of the httpd parent"));
}

static void test_full_table(void **state)
{
    uint64_t left, since, t0 = 9000 * S;
    int uid, n = 0;

    (void)state;
    /* thousands of uids: the table stays bounded, the rest share one bucket
     * with its own burst, so their lines stay bounded too */
    for (uid = 20000; uid < 25000; uid++)
        n += admit(4, uid, t0, &left, &since);
    assert_true(n < 64 * DP_AUDIT_BURST + DP_AUDIT_BURST);
    assert_true(dp_audit_pending());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_kinds_and_uids_apart),
        cmocka_unit_test(test_full_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
