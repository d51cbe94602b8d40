/* The helper's configuration checks from section numbers alone: which
 * actions a pair of sections grants, whose processes a scope reaches, and
 * which groups a target may hold. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "helper/daemon.h"
#include "common/actions.h"
#include "helper/policy.h"
#include "common/proto.h"

/* 0: DiagProcAllow kill, no users; 1: DiagProcUsers 1000 1001 (read-only);
 * 2: DiagProcAllow dump + DiagProcUsers 1000, nested in 1; 3: DiagProcUsers *. */
static const uid_t users1[] = { 1000, 1001 }, users2[] = { 1000 };
static const gid_t gids1[] = { 1000, 1001, 27 }, gids2[] = { 1000 }, gids_all[] = { 1000, 1001, 27, 5 };
static const gid_t peer_gids[] = { 33, 4 };
static const dp_helper_section secs[] = {
    { DP_ACT_KILL, 0, 0, NULL, 0, NULL, 0 },
    { 0, 1, 0, users1, 2, gids1, 3 },
    { DP_ACT_DUMP, 1, 0, users2, 1, gids2, 1 },
    { 0, 1, 1, NULL, 0, gids_all, 4 },
};
static const unsigned char pairs[16] = {
    1, 0, 0, 0,
    0, 1, 1, 0,
    0, 1, 1, 0,
    0, 0, 0, 1,
};

static dp_helper_policy policy(void)
{
    dp_helper_policy p;
    memset(&p, 0, sizeof(p));
    p.peer_uid = 33;
    p.peer_gid = 33;
    p.peer_gids = peer_gids;
    p.npeer_gids = 2;
    p.sections = secs;
    p.nsections = 4;
    p.pairs = pairs;
    return p;
}

static void test_actions_by_pair(void **state)
{
    dp_helper_policy p = policy();
    (void)state;
    assert_int_equal(dp_policy_actions(&p, 0, -1), DP_ACT_KILL);    /* its default scope */
    assert_int_equal(dp_policy_actions(&p, 0, 0), DP_ACT_KILL);
    assert_int_equal(dp_policy_actions(&p, 0, 1), 0);       /* a scope no URL has with it */
    assert_int_equal(dp_policy_actions(&p, 2, 1), DP_ACT_DUMP);     /* nested */
    assert_int_equal(dp_policy_actions(&p, 2, -1), 0);      /* it names users: not the default */
    assert_int_equal(dp_policy_actions(&p, 1, 1), 0);       /* read-only */
    assert_int_equal(dp_policy_actions(&p, -1, -1), 0);
    assert_int_equal(dp_policy_actions(&p, 4, 4), 0);       /* out of range */
    assert_int_equal(dp_policy_actions(&p, 0, 4), 0);
    assert_int_equal(dp_policy_actions(&p, 99, -1), 0);
    assert_int_equal(dp_policy_actions(&p, 0, -2), 0);
}

static void test_scope(void **state)
{
    dp_helper_policy p = policy();
    (void)state;
    assert_true(dp_policy_in_scope(&p, -1, 33));
    assert_false(dp_policy_in_scope(&p, -1, 1000));
    assert_true(dp_policy_in_scope(&p, 0, 33));             /* no users: the default */
    assert_true(dp_policy_in_scope(&p, 1, 1001));
    assert_false(dp_policy_in_scope(&p, 1, 33));
    assert_false(dp_policy_in_scope(&p, 2, 1001));
    assert_true(dp_policy_in_scope(&p, 3, 4242));
    assert_false(dp_policy_in_scope(&p, 4, 33));
    assert_false(dp_policy_in_scope(&p, -2, 33));
}

static long check(int scope, long real_gid, const char *groups_line)
{
    dp_helper_policy p = policy();
    dp_status ss;
    char status[16384];
    int i;

    memset(&ss, 0, sizeof(ss));
    for (i = 0; i < 4; i++)
        ss.gid[i] = real_gid;
    snprintf(status, sizeof(status), "Name:\tx\nGid:\t%ld\t%ld\t%ld\t%ld\nFDSize:\t64\n%s"
             "VmPeak:\t1 kB\n", real_gid, real_gid, real_gid, real_gid, groups_line);
    return dp_policy_foreign_group(&p, scope, &ss, status);
}

static void test_groups(void **state)
{
    char big[8192], *w = big;
    int i;
    (void)state;
    assert_int_equal(check(1, 1000, "Groups:\t1000 27 \n"), -1);
    assert_int_equal(check(1, 1000, "Groups:\t\n"), -1);
    assert_int_equal(check(1, 1001, "Groups:\t1001 1000 \n"), -1);    /* the union of the scope */
    assert_int_equal(check(1, 1000, "Groups:\t1000 0 \n"), 0);        /* group 0 */
    assert_int_equal(check(1, 1000, "Groups:\t1000 42 \n"), 42);      /* nobody's in the scope */
    assert_int_equal(check(2, 1000, "Groups:\t1000 27 \n"), 27);      /* 1001's, not 1000's */
    assert_int_equal(check(1, 42, "Groups:\t\n"), 42);                /* the real group too */
    assert_int_equal(check(-1, 33, "Groups:\t33 4 \n"), -1);          /* the workers' user */
    assert_int_equal(check(0, 33, "Groups:\t33 1000 \n"), 1000);      /* no users: the default */
    assert_int_equal(check(3, 5, "Groups:\t5 1001 \n"), -1);          /* DiagProcUsers * */
    assert_int_equal(check(3, 5, "Groups:\t5 0 \n"), 0);
    assert_int_equal(check(1, 1000, ""), -2);                         /* no Groups line */
    assert_int_equal(check(1, 1000, "Groups:\t1000 x \n"), -2);
    /* more groups than the check reads: refused, never half-checked */
    w += sprintf(w, "Groups:\t");
    for (i = 0; i < 1100; i++)
        w += sprintf(w, "1000 ");
    sprintf(w, "\n");
    assert_int_equal(check(1, 1000, big), -2);
    /* the status text cut inside the line */
    {
        dp_helper_policy p = policy();
        dp_status ss;
        memset(&ss, 0, sizeof(ss));
        for (i = 0; i < 4; i++)
            ss.gid[i] = 1000;
        assert_int_equal(dp_policy_foreign_group(&p, 1, &ss, "Name:\tx\nGroups:\t1000 27"), -2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_by_pair),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
