/* Unit tests for the /proc parsers and readers (proc/parse.c, proc/read.c).
 *
 * Fixtures under t/fixtures/proc were captured from a live Linux 6.x system
 * (see t/fixtures/proc/README); the hostile names were set with
 * /proc/self/comm, so the kernel itself wrote those stat lines. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "proc/procfs.h"

static apr_pool_t *pool;

/* ---- fixtures ---------------------------------------------------------- */

/* The fixture directory: $DP_FIXTURES, else derived from __FILE__ (the
 * source's own location minus "t/unit/test_procfs.c"). When __FILE__ is
 * relative (make compiles from the repo root) it is tried against the
 * current directory, then against every ancestor of the test binary, so the
 * binary also works when started from elsewhere. */
static const char *fixture_dir;

static int is_dir(const char *p)
{
    return access(p, R_OK | X_OK) == 0;
}

static void find_fixture_dir(void)
{
    const char *env = getenv("DP_FIXTURES");
    const char *file = __FILE__, *tail = strstr(file, "t/unit/");
    const char *prefix = apr_pstrmemdup(pool, file, tail ? (apr_size_t)(tail - file) : 0);
    const char *cand = apr_pstrcat(pool, prefix, "t/fixtures/proc", NULL);
    char exe[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        fixture_dir = env;
        return;
    }
    fixture_dir = cand;
    if (is_dir(cand) || (tail && tail > file && file[0] == '/'))
        return;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        while ((slash = strrchr(exe, '/')) != NULL) {
            *slash = '\0';
            cand = apr_pstrcat(pool, exe, "/", prefix, "t/fixtures/proc", NULL);
            if (is_dir(cand)) {
                fixture_dir = cand;
                return;
            }
        }
    }
}

static const char *fixture_path(const char *name)
{
    return apr_pstrcat(pool, fixture_dir, "/", name, NULL);
}

/* The whole file, NUL-terminated (the NUL is not counted in *len). */
static char *fixture(const char *name, size_t *len)
{
    const char *path = fixture_path(name);
    FILE *f = fopen(path, "rb");
    char *buf;
    long sz;

    if (!f)
        fail_msg("cannot open fixture %s: %s (set DP_FIXTURES?)", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    sz = ftell(f);
    assert_true(sz >= 0);
    rewind(f);
    buf = apr_palloc(pool, (apr_size_t)sz + 1);
    assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    buf[sz] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)sz;
    return buf;
}

static int parse_stat_str(const char *s, dp_stat *st)
{
    return dp_parse_stat(s, strlen(s), st);
}

/* ---- dp_parse_stat ------------------------------------------------------ */

static void test_stat_real_process(void **state)
{
    size_t len;
    char *buf = fixture("stat_python", &len);
    dp_stat st;
    (void)state;

    assert_int_equal(dp_parse_stat(buf, len, &st), 0);
    assert_int_equal(st.pid, 18467);
    assert_string_equal(st.comm, "python3");
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.ppid, 18466);
    assert_int_equal(st.pgrp, 18466);
    assert_int_equal(st.session, 8676);
    assert_int_equal(st.flags, 0x400100UL);
    assert_false(st.flags & DP_PF_KTHREAD);
    assert_int_equal(st.utime, 5);
    assert_int_equal(st.stime, 5);
    assert_int_equal(st.cutime, 11);
    assert_int_equal(st.cstime, 18);
    assert_int_equal(st.priority, 20);
    assert_int_equal(st.nice, 0);
    assert_int_equal(st.num_threads, 1);
    assert_int_equal(st.starttime, 371493);
    assert_int_equal(st.vsize, 17137664ULL);
    assert_int_equal(st.rss, 3416);
    assert_int_equal(st.exit_signal, 17);       /* SIGCHLD: an ordinary fork child */
    assert_int_equal(st.processor, 1);
}

static void test_stat_kernel_thread(void **state)
{
    size_t len;
    char *buf = fixture("stat_kthreadd", &len);
    dp_stat st;
    (void)state;

    assert_int_equal(dp_parse_stat(buf, len, &st), 0);
    assert_int_equal(st.pid, 2);
    assert_string_equal(st.comm, "kthreadd");
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.ppid, 0);
    assert_int_equal(st.flags, 0x208040UL);
    assert_true(st.flags & DP_PF_KTHREAD);
    assert_int_equal(st.vsize, 0);
    assert_int_equal(st.rss, 0);
    assert_int_equal(st.starttime, 20);
    assert_int_equal(st.processor, 0);
}

/* A SCHED_FIFO kernel thread at rt priority 99: field 18 is -100. */
static void test_stat_realtime_negative_priority(void **state)
{
    size_t len;
    char *buf = fixture("stat_migration", &len);
    dp_stat st;
    (void)state;

    assert_int_equal(dp_parse_stat(buf, len, &st), 0);
    assert_int_equal(st.pid, 18);
    assert_string_equal(st.comm, "migration/0");
    assert_int_equal(st.ppid, 2);
    assert_int_equal(st.flags, 0x4208040UL);
    assert_true(st.flags & DP_PF_KTHREAD);
    assert_int_equal(st.priority, -100);
    assert_int_equal(st.nice, 0);
    assert_int_equal(st.stime, 7);
    assert_int_equal(st.processor, 0);
}

static void test_stat_negative_fields_synthetic(void **state)
{
    dp_stat st;
    (void)state;

    /* nice -20, priority -51, tty/tpgid -1, cutime negative (never on a real
     * kernel, but a signed field must stay signed) */
    assert_int_equal(parse_stat_str("77 (rt) S 1 77 77 0 -1 4194304 0 0 0 0 3 4 -5 -6 -51 -20 "
                                    "2 0 99 1000 7 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 "
                                    "17 1 50 1 0 0 0\n", &st), 0);
    assert_int_equal(st.pid, 77);
    assert_int_equal(st.cutime, -5);
    assert_int_equal(st.cstime, -6);
    assert_int_equal(st.priority, -51);
    assert_int_equal(st.nice, -20);
    assert_int_equal(st.num_threads, 2);
    assert_int_equal(st.starttime, 99);
    assert_int_equal(st.vsize, 1000);
    assert_int_equal(st.rss, 7);
    assert_int_equal(st.processor, 1);
}

struct hostile {
    const char *file;
    const char *comm;
    size_t comm_len;
};

static void test_stat_hostile_comms(void **state)
{
    static const struct hostile cases[] = {
        { "stat_comm_parens", "a) b (c", 7 },
        { "stat_comm_newline", "new\nline", 8 },
        { "stat_comm_script", "<script>", 8 },
        { "stat_comm_invalid_utf8", "bad\xff\xfename", 9 },
        { "stat_comm_15", "abcdefghijklmno", 15 },
        { "stat_comm_spaces", "  two  spaces ", 14 },
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *buf = fixture(cases[i].file, &len);
        dp_stat st;

        assert_int_equal(dp_parse_stat(buf, len, &st), 0);
        assert_int_equal(strlen(st.comm), cases[i].comm_len);
        assert_memory_equal(st.comm, cases[i].comm, cases[i].comm_len);
        /* the fields after the name are unaffected by it */
        assert_int_equal(st.pid, 18467);
        assert_int_equal(st.state, 'R');
        assert_int_equal(st.ppid, 18466);
        assert_int_equal(st.session, 8676);
        assert_int_equal(st.priority, 20);
        assert_int_equal(st.starttime, 371493);
        assert_int_equal(st.vsize, 17137664ULL);
        assert_int_equal(st.processor, 1);
    }
}

static void test_stat_name_that_looks_like_fields(void **state)
{
    dp_stat st;
    (void)state;

    /* a name that forges a whole field list must not shift the real one */
    assert_int_equal(parse_stat_str("9 (x) Z 1 2 3 4 5) S 42 9 9 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 "
                                    "500 4096 2 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0\n", &st), 0);
    assert_string_equal(st.comm, "x) Z 1 2 3 4 5");
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.ppid, 42);
    assert_int_equal(st.starttime, 500);
    assert_int_equal(st.vsize, 4096);

    assert_int_equal(parse_stat_str("10 ()) R 1 10 10 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0\n",
                                    &st), 0);
    assert_string_equal(st.comm, ")");
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.starttime, 7);

    assert_int_equal(parse_stat_str("11 () S 1 11 11 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 8 0 0\n",
                                    &st), 0);
    assert_string_equal(st.comm, "");
    assert_int_equal(st.starttime, 8);
}

static void test_stat_long_name_is_cut(void **state)
{
    char line[512], name[201];
    dp_stat st;
    (void)state;

    memset(name, 'n', 200);
    name[200] = '\0';
    snprintf(line, sizeof(line), "5 (%s) S 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0 0\n", name);
    assert_int_equal(parse_stat_str(line, &st), 0);
    assert_int_equal(strlen(st.comm), DP_COMM_MAX - 1);
    assert_memory_equal(st.comm, name, DP_COMM_MAX - 1);
    assert_int_equal(st.starttime, 9);
}

static void test_stat_truncated_lines_fail(void **state)
{
    static const char *bad[] = {
        "", "\n", " ", "1", "1 ", "1 (", "1 (x", "1 (x)", "1 (x) ", "1 (x)\n", "1 (x) R",
        "1 (x) R\n", "1 (x) R 1 2 3", "1 (x) R 1 2 3\n", "(", ")", ")(", "1 x) R 1 2 3",
        "1 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
        "1 (x) R a b c d e f g h i j k l m n o p q r s t u v w",
    };
    size_t len, i;
    char *full = fixture("stat_python", &len);
    dp_stat st;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* a good parse first (same stack depth), so stale data from it
         * cannot make a bad one look good */
        assert_int_equal(dp_parse_stat(full, len, &st), 0);
        if (dp_parse_stat(bad[i], strlen(bad[i]), &st) != -1)
            fail_msg("dp_parse_stat accepted \"%s\"", bad[i]);
    }
    /* the length is respected: no byte past len is looked at */
    assert_int_equal(dp_parse_stat(full, 0, &st), -1);
    assert_int_equal(dp_parse_stat(full, 5, &st), -1);  /* "18467" */
}

/* Every prefix of a real line: never crashes; all prefixes that end before
 * the starttime field fail, and the whole line parses. */
static void test_stat_every_prefix(void **state)
{
    size_t len, i, start_at;
    char *full = fixture("stat_python", &len);
    const char *p = strstr(full, " 371493 ");
    (void)state;

    assert_non_null(p);
    start_at = (size_t)(p - full) + 1;
    for (i = 0; i <= len; i++) {
        char *copy = apr_pmemdup(pool, full, i);   /* no NUL after it */
        dp_stat st;
        int r = dp_parse_stat(copy, i, &st);
        if (i < start_at && r != -1)
            fail_msg("prefix of %zu bytes parsed", i);
    }
}

/* ---- dp_parse_status ---------------------------------------------------- */

static void test_status_real_process(void **state)
{
    size_t len;
    char *buf = fixture("status_python", &len);
    dp_status st;
    (void)state;

    assert_int_equal(dp_parse_status(buf, len, &st), 0);
    assert_int_equal(st.uid[0], 1000);
    assert_int_equal(st.uid[1], 1001);
    assert_int_equal(st.uid[2], 1002);
    assert_int_equal(st.uid[3], 1001);
    assert_int_equal(st.gid[0], 100);
    assert_int_equal(st.gid[1], 101);
    assert_int_equal(st.gid[2], 102);
    assert_int_equal(st.gid[3], 101);
    assert_int_equal(st.vm_peak, 303588LL * 1024);
    assert_int_equal(st.vm_size, 238068LL * 1024);
    assert_int_equal(st.vm_hwm, 13868LL * 1024);
    assert_int_equal(st.vm_rss, 13868LL * 1024);
    assert_int_equal(st.rss_anon, 7176LL * 1024);
    assert_int_equal(st.rss_file, 6692LL * 1024);
    assert_int_equal(st.rss_shmem, 0);
    assert_int_equal(st.vm_data, 33104LL * 1024);
    assert_int_equal(st.vm_stk, 132LL * 1024);
    assert_int_equal(st.vm_exe, 4LL * 1024);
    assert_int_equal(st.vm_lib, 4684LL * 1024);
    assert_int_equal(st.vm_swap, 0);     /* present and zero, not absent */
    assert_int_equal(st.threads, 4);
    assert_int_equal(st.vol_ctxt, 25);
    assert_int_equal(st.nonvol_ctxt, 11);
}

static void test_status_kernel_thread(void **state)
{
    size_t len;
    char *buf = fixture("status_kthreadd", &len);
    dp_status st;
    int i;
    (void)state;

    assert_int_equal(dp_parse_status(buf, len, &st), 0);
    for (i = 0; i < 4; i++) {
        assert_int_equal(st.uid[i], 0);
        assert_int_equal(st.gid[i], 0);
    }
    assert_int_equal(st.vm_peak, -1);
    assert_int_equal(st.vm_size, -1);
    assert_int_equal(st.vm_hwm, -1);
    assert_int_equal(st.vm_rss, -1);
    assert_int_equal(st.rss_anon, -1);
    assert_int_equal(st.rss_file, -1);
    assert_int_equal(st.rss_shmem, -1);
    assert_int_equal(st.vm_data, -1);
    assert_int_equal(st.vm_stk, -1);
    assert_int_equal(st.vm_exe, -1);
    assert_int_equal(st.vm_lib, -1);
    assert_int_equal(st.vm_swap, -1);
    assert_int_equal(st.threads, 1);
    assert_int_equal(st.vol_ctxt, 64);
    assert_int_equal(st.nonvol_ctxt, 0);
}

static void test_status_synthetic(void **state)
{
    const char *s = "Name:\tx\nUid:\t5\t6\t7\t8\nGid:\t9\t10\t11\t12\n"
                    "VmSwapX:\t1 kB\nVmSwap:\t   2048 kB\nXRssAnon:\t3 kB\nRssAnon:\t10 kB\n"
                    "Threads:\t3";  /* no final newline */
    dp_status st;
    (void)state;

    assert_int_equal(dp_parse_status(s, strlen(s), &st), 0);
    assert_int_equal(st.uid[0], 5);
    assert_int_equal(st.uid[3], 8);
    assert_int_equal(st.gid[0], 9);
    assert_int_equal(st.gid[3], 12);
    assert_int_equal(st.vm_swap, 2048LL * 1024);
    assert_int_equal(st.rss_anon, 10LL * 1024);
    assert_int_equal(st.threads, 3);
    assert_int_equal(st.vm_rss, -1);
    assert_int_equal(st.vol_ctxt, -1);

    /* no Uid line (empty read, or not a status file): -1 */
    assert_int_equal(dp_parse_status("", 0, &st), -1);
    assert_int_equal(st.vm_rss, -1);
    s = "Name:\tx\nVmRSS:\t4 kB\n";
    assert_int_equal(dp_parse_status(s, strlen(s), &st), -1);
}

/* ---- dp_parse_statm, dp_parse_io --------------------------------------- */

/* Found by fuzzing: a value at the very end of an unterminated buffer, and
 * sizes whose kB-to-bytes product would overflow. */
static void test_status_unterminated_and_huge(void **state)
{
    static const char text[] = "Uid:\t0\t33\t0\t33\nVmRSS:\t99999999999999999 kB\n"
                               "VmSize:\t-5 kB\nCapPrm:\t000001ffffffffff\nGid:\t12";
    char *exact = malloc(sizeof(text) - 1);     /* no terminator after the last digit */
    dp_status ss;
    (void)state;
    memcpy(exact, text, sizeof(text) - 1);
    assert_int_equal(dp_parse_status(exact, sizeof(text) - 1, &ss), 0);
    assert_int_equal(ss.uid[1], 33);
    assert_int_equal(ss.uid[2], 0);
    assert_true(ss.vm_rss == LLONG_MAX);
    assert_true(ss.vm_size == -1);
    assert_true(ss.cap_prm == 0x1ffffffffffULL);
    assert_int_equal(ss.gid[0], 12);
    assert_int_equal(ss.gid[1], -1);
    free(exact);
}

static void test_statm(void **state)
{
    char *buf = fixture("statm_python", NULL);
    dp_statm sm;
    (void)state;

    assert_int_equal(dp_parse_statm(buf, &sm), 0);
    assert_int_equal(sm.size, 59517);
    assert_int_equal(sm.resident, 3467);
    assert_int_equal(sm.shared, 1673);
    assert_int_equal(sm.text, 1);
    assert_int_equal(sm.lib, 0);
    assert_int_equal(sm.data, 8309);
    assert_int_equal(sm.dirty, 0);

    assert_int_equal(dp_parse_statm("", &sm), -1);
    assert_int_equal(dp_parse_statm("1 2 3\n", &sm), -1);
    assert_int_equal(dp_parse_statm("a b c d e f g\n", &sm), -1);
}

static void test_io(void **state)
{
    size_t len;
    char *buf = fixture("io_python", &len);
    dp_io io;
    (void)state;

    assert_int_equal(dp_parse_io(buf, len, &io), 0);
    assert_int_equal(io.read_chars, 3612084);
    assert_int_equal(io.write_chars, 1711);
    assert_int_equal(io.read_count, 668);
    assert_int_equal(io.write_count, 29);
    assert_int_equal(io.read_bytes, 0);
    assert_int_equal(io.write_bytes, 0);

    /* cancelled_write_bytes must not be taken for write_bytes */
    {
        const char *s = "write_bytes: 4096\ncancelled_write_bytes: 99\n";
        assert_int_equal(dp_parse_io(s, strlen(s), &io), 0);
        assert_int_equal(io.write_bytes, 4096);
    }
    assert_int_equal(dp_parse_io("", 0, &io), -1);
    assert_int_equal(dp_parse_io("garbage\n", 8, &io), -1);
}

/* ---- dp_parse_maps ------------------------------------------------------ */

static const dp_map *find_map(const apr_array_header_t *maps, unsigned long long start)
{
    int i;
    for (i = 0; i < maps->nelts; i++)
        if (APR_ARRAY_IDX(maps, i, dp_map).start == start)
            return &APR_ARRAY_IDX(maps, i, dp_map);
    fail_msg("no mapping at %llx", start);
    return NULL;
}

static void test_maps_real(void **state)
{
    size_t len;
    char *buf = fixture("maps_python", &len);
    apr_array_header_t *maps = dp_parse_maps(buf, len, pool);
    const dp_map *m;
    char longpath[400];
    int i;
    (void)state;

    assert_int_equal(maps->nelts, 41);
    for (i = 0; i < maps->nelts; i++) {
        m = &APR_ARRAY_IDX(maps, i, dp_map);
        assert_non_null(m->path);
        assert_true(m->start < m->end);
        assert_int_equal(strlen(m->perms), 4);
    }

    m = &APR_ARRAY_IDX(maps, 0, dp_map);
    assert_int_equal(m->start, 0x558a75611000ULL);
    assert_int_equal(m->end, 0x558a757c2000ULL);
    assert_string_equal(m->perms, "rw-p");
    assert_string_equal(m->path, "[heap]");

    /* anonymous: the kernel ends the line with "0 " */
    m = find_map(maps, 0x7f2850000000ULL);
    assert_int_equal(m->end, 0x7f2850021000ULL);
    assert_string_equal(m->perms, "rw-p");
    assert_int_equal(m->inode, 0);
    assert_string_equal(m->path, "");
    m = find_map(maps, 0x7f2850021000ULL);
    assert_string_equal(m->perms, "---p");
    assert_string_equal(m->path, "");

    m = find_map(maps, 0x7f2864b79000ULL);
    assert_string_equal(m->perms, "rw-s");
    assert_int_equal(m->dev_major, 0);
    assert_int_equal(m->dev_minor, 1);
    assert_int_equal(m->inode, 2345);
    assert_string_equal(m->path, "/dev/zero (deleted)");

    m = find_map(maps, 0x7f2864cc3000ULL);
    snprintf(longpath, sizeof(longpath), "/tmp/dpfix/%.60s/%.60s/%.60s/%.60s/%.60s/long.bin",
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    assert_true(strlen(longpath) > 256);
    assert_string_equal(m->path, longpath);
    assert_int_equal(m->inode, 10952954);
    assert_string_equal(m->perms, "r--s");

    m = find_map(maps, 0x7f2864d30000ULL);
    assert_string_equal(m->path, "/tmp/dpfix/gone.bin (deleted)");
    m = find_map(maps, 0x7f2864d32000ULL);
    assert_string_equal(m->path, "/tmp/dpfix/with space (1).bin");
    assert_int_equal(m->inode, 10952952);

    m = find_map(maps, 0x7f2865244000ULL);
    assert_string_equal(m->path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
    assert_string_equal(m->perms, "r-xp");
    assert_int_equal(m->offset, 0x26000);
    assert_int_equal(m->dev_major, 0xfe);
    assert_int_equal(m->dev_minor, 0);
    assert_int_equal(m->inode, 332835);

    m = find_map(maps, 0x7f28659dc000ULL);
    assert_string_equal(m->path, "[vvar]");
    m = find_map(maps, 0x7f28659e2000ULL);
    assert_string_equal(m->path, "[vdso]");
    assert_string_equal(m->perms, "r-xp");
    m = find_map(maps, 0x7ffc96e71000ULL);
    assert_string_equal(m->path, "[stack]");
    assert_int_equal(m->end, 0x7ffc96e92000ULL);

    m = &APR_ARRAY_IDX(maps, maps->nelts - 1, dp_map);
    assert_int_equal(m->start, 0xffffffffff600000ULL);
    assert_int_equal(m->end, 0xffffffffff601000ULL);
    assert_string_equal(m->perms, "--xp");
    assert_string_equal(m->path, "[vsyscall]");
}

static void test_maps_synthetic(void **state)
{
    const char *s =
        "00400000-00452000 r-xp 00000000 103:02 4194317    /opt/a b/c  d\n"
        "garbage line\n"
        "\n"
        "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n"
        "7f0000001000-7f0000002000 rw-p 00001000 fd:01 77 /last/no/newline";
    apr_array_header_t *maps = dp_parse_maps(s, strlen(s), pool);
    const dp_map *m;
    (void)state;

    assert_int_equal(maps->nelts, 3);
    m = &APR_ARRAY_IDX(maps, 0, dp_map);
    assert_int_equal(m->start, 0x400000);
    assert_int_equal(m->dev_major, 0x103);
    assert_int_equal(m->dev_minor, 2);
    assert_int_equal(m->inode, 4194317);
    assert_string_equal(m->path, "/opt/a b/c  d");
    m = &APR_ARRAY_IDX(maps, 1, dp_map);
    assert_string_equal(m->path, "");   /* anonymous, no trailing space */
    m = &APR_ARRAY_IDX(maps, 2, dp_map);
    assert_int_equal(m->offset, 0x1000);
    assert_int_equal(m->dev_major, 0xfd);
    assert_int_equal(m->dev_minor, 1);
    assert_string_equal(m->path, "/last/no/newline");

    assert_int_equal(dp_parse_maps("", 0, pool)->nelts, 0);
    /* the length bounds the parse: the second line is not seen */
    {
        size_t first = (size_t)(strchr(s, '\n') - s) + 1;
        assert_int_equal(dp_parse_maps(s, first, pool)->nelts, 1);
        assert_string_equal(APR_ARRAY_IDX(dp_parse_maps(s, first - 4, pool), 0, dp_map).path,
                            "/opt/a b/c");
    }
}

/* ---- dp_split_nul, dp_process_name ------------------------------------- */

static void expect_args(const apr_array_header_t *a, int n, ...)
{
    va_list ap;
    int i;

    assert_int_equal(a->nelts, n);
    va_start(ap, n);
    for (i = 0; i < n; i++)
        assert_string_equal(APR_ARRAY_IDX(a, i, const char *), va_arg(ap, const char *));
    va_end(ap);
}

static void test_split_nul(void **state)
{
    size_t len;
    char *buf = fixture("cmdline_python", &len);
    (void)state;

    expect_args(dp_split_nul(buf, len, pool), 6, "/usr/bin/python3", "-c",
                "open(\"cmdline_python\",\"wb\").write(open(\"/proc/self/cmdline\",\"rb\").read())",
                "", "a b", "say \"hi\"");
    expect_args(dp_split_nul("a\0b\0", 4, pool), 2, "a", "b");
    expect_args(dp_split_nul("a\0b", 3, pool), 2, "a", "b");
    expect_args(dp_split_nul("a\0\0b\0", 5, pool), 3, "a", "", "b");
    expect_args(dp_split_nul("\0", 1, pool), 1, "");
    expect_args(dp_split_nul("\0\0", 2, pool), 2, "", "");
    expect_args(dp_split_nul("only", 4, pool), 1, "only");
    expect_args(dp_split_nul("", 0, pool), 0);
    /* len bounds it, a missing final NUL included */
    expect_args(dp_split_nul("abc\0def", 2, pool), 1, "ab");
}

static apr_array_header_t *argv1(const char *a0)
{
    apr_array_header_t *a = apr_array_make(pool, 1, sizeof(const char *));
    *(const char **)apr_array_push(a) = a0;
    return a;
}

/* the titles php-fpm8.2 wrote over argv[0] (read from /proc/PID/cmdline,
 * padded with NULs) */
static void test_php_fpm_title(void **state)
{
    const char *role, *fpm_pool;
    (void)state;

    assert_int_equal(dp_php_fpm_title("php-fpm8.2", dp_split_nul("php-fpm: pool www\0\0\0", 20,
                                                               pool), &role, &fpm_pool), 1);
    assert_string_equal(role, "worker");
    assert_string_equal(fpm_pool, "www");
    assert_int_equal(dp_php_fpm_title("php-fpm7.4", argv1("php-fpm: pool a b"), &role, &fpm_pool), 1);
    assert_string_equal(fpm_pool, "a b");
    assert_int_equal(dp_php_fpm_title("php-fpm8.2",
                                      argv1("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"),
                                      &role, &fpm_pool), 1);
    assert_string_equal(role, "master");
    assert_null(fpm_pool);
    /* another program's title, an empty pool name, no title, no argv */
    assert_int_equal(dp_php_fpm_title("bash", argv1("php-fpm: pool www"), &role, &fpm_pool), 0);
    assert_null(role);
    assert_null(fpm_pool);
    assert_int_equal(dp_php_fpm_title("php-fpm8.2", argv1("php-fpm: pool "), &role, &fpm_pool), 0);
    assert_int_equal(dp_php_fpm_title("php-fpm8.2", argv1("/usr/sbin/php-fpm8.2"), &role,
                                      &fpm_pool), 0);
    assert_int_equal(dp_php_fpm_title("php-fpm8.2", NULL, &role, &fpm_pool), 0);
    assert_int_equal(dp_php_fpm_title("php-fpm8.2", dp_split_nul("", 0, pool), &role, &fpm_pool), 0);
}

static void test_process_name(void **state)
{
    (void)state;

    /* short comm: comm, whatever argv says */
    assert_string_equal(dp_process_name("python3", argv1("/usr/bin/python3.11"), pool), "python3");
    assert_string_equal(dp_process_name("bash", argv1("-bash"), pool), "bash");
    /* 14 bytes is not a truncation */
    assert_string_equal(dp_process_name("abcdefghijklmn", argv1("/x/abcdefghijklmnop"), pool),
                        "abcdefghijklmn");
    /* 15 bytes and a prefix of argv[0]'s basename: the basename */
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1("/x/abcdefghijklmnopqrs"), pool),
                        "abcdefghijklmnopqrs");
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1("abcdefghijklmnopqrs"), pool),
                        "abcdefghijklmnopqrs");
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1("abcdefghijklmno"), pool),
                        "abcdefghijklmno");
    assert_string_equal(dp_process_name("systemd-journal", argv1("/lib/systemd/systemd-journald"),
                                        pool), "systemd-journald");
    /* not a prefix (the dir matches, the basename does not): comm */
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1("/abcdefghijklmnopqrs/other"),
                                        pool), "abcdefghijklmno");
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1("xabcdefghijklmnopq"), pool),
                        "abcdefghijklmno");
    /* empty basename, empty argv, no argv */
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1("/usr/bin/"), pool),
                        "abcdefghijklmno");
    assert_string_equal(dp_process_name("abcdefghijklmno", argv1(""), pool), "abcdefghijklmno");
    assert_string_equal(dp_process_name("abcdefghijklmno",
                                        apr_array_make(pool, 1, sizeof(const char *)), pool),
                        "abcdefghijklmno");
    assert_string_equal(dp_process_name("abcdefghijklmno", NULL, pool), "abcdefghijklmno");
}

/* ---- dp_parse_pid ------------------------------------------------------- */

static void test_parse_pid(void **state)
{
    static const char *malformed[] = {
        "", "-", "+1", " 1", "1 ", "1a", "0x10", "1.0", "1e3", "--1", "1-",
    };
    /* numbers no process can have: Kudu answers "not running" */
    static const char *none[] = {
        "-1", "-7", "-4194303", "99999999999", "18446744073709551617",
        "123456789012345678901234567890", "-123456789012345678901234567890",
    };
    char at_max[32];
    size_t i;
    pid_t pid;
    (void)state;

    pid = -7;
    assert_int_equal(dp_parse_pid("0", &pid), 0);
    assert_int_equal(pid, 0);
    assert_int_equal(dp_parse_pid("1", &pid), 0);
    assert_int_equal(pid, 1);
    assert_int_equal(dp_parse_pid("18467", &pid), 0);
    assert_int_equal(pid, 18467);
    assert_int_equal(dp_parse_pid("0018467", &pid), 0);     /* a leading zero: the same pid */
    assert_int_equal(pid, 18467);
    assert_int_equal(dp_parse_pid("000000000000000000001", &pid), 0);
    assert_int_equal(pid, 1);
    assert_int_equal(dp_parse_pid("-0", &pid), 0);
    assert_int_equal(pid, 0);
    snprintf(at_max, sizeof(at_max), "%ld", dp_pid_max() - 1);
    assert_int_equal(dp_parse_pid(at_max, &pid), 0);         /* the largest pid the kernel gives */
    assert_int_equal(pid, dp_pid_max() - 1);
    pid = 12345;
    snprintf(at_max, sizeof(at_max), "%ld", dp_pid_max());
    assert_int_equal(dp_parse_pid(at_max, &pid), DP_PID_NONE);
    assert_int_equal(pid, 12345);
    for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        if (dp_parse_pid(malformed[i], &pid) != -1)
            fail_msg("dp_parse_pid accepted \"%s\"", malformed[i]);
        assert_int_equal(pid, 12345);   /* untouched on failure */
    }
    for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        if (dp_parse_pid(none[i], &pid) != DP_PID_NONE)
            fail_msg("dp_parse_pid did not call \"%s\" no process", none[i]);
        assert_int_equal(pid, 12345);
    }
}

static void test_state_word(void **state)
{
    (void)state;
    assert_string_equal(dp_state_word('R'), "running");
    assert_string_equal(dp_state_word('S'), "sleeping");
    assert_string_equal(dp_state_word('D'), "disk-sleep");
    assert_string_equal(dp_state_word('T'), "stopped");
    assert_string_equal(dp_state_word('t'), "tracing-stop");
    assert_string_equal(dp_state_word('Z'), "zombie");
    assert_string_equal(dp_state_word('X'), "dead");
    assert_string_equal(dp_state_word('I'), "idle");
    assert_string_equal(dp_state_word('P'), "parked");
    assert_string_equal(dp_state_word('?'), "unknown");
    assert_string_equal(dp_state_word('\0'), "unknown");
}

/* ---- readers: fixture files and this very process ---------------------- */

static void test_read_small_and_file(void **state)
{
    size_t len, got;
    char *want = fixture("status_python", &len);
    char small[16], *buf;
    char tmpl[] = "/tmp/dp_test_read_XXXXXX";
    int fd, i;
    (void)state;

    assert_int_equal(dp_read_small(fixture_path("status_python"), small, sizeof(small)), 15);
    assert_memory_equal(small, want, 15);
    assert_int_equal(small[15], '\0');

    assert_int_equal(dp_read_file(fixture_path("status_python"), &buf, &got, pool), 0);
    assert_int_equal(got, len);
    assert_memory_equal(buf, want, len);
    assert_int_equal(buf[got], '\0');

    errno = 0;
    assert_int_equal(dp_read_file(fixture_path("no_such_file"), &buf, &got, pool), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(dp_read_small(fixture_path("no_such_file"), small, sizeof(small)), -1);
    assert_int_equal(errno, ENOENT);

    /* larger than the first 4 KiB buffer: grows and keeps every byte */
    fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    for (i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(write(fd, &c, 1), 1);
    }
    close(fd);
    assert_int_equal(dp_read_file(tmpl, &buf, &got, pool), 0);
    unlink(tmpl);
    assert_int_equal(got, 10000);
    assert_int_equal(strlen(buf), 10000);
    for (i = 0; i < 10000; i++)
        assert_int_equal(buf[i], 'a' + i % 26);
}

static void test_read_self(void **state)
{
    dp_stat st;
    dp_error err;
    apr_array_header_t *tids, *pids;
    int i, found = 0;
    (void)state;

    memset(&err, 0, sizeof(err));
    assert_int_equal(dp_read_stat(getpid(), 0, &st, &err), 0);
    assert_int_equal(st.pid, getpid());
    assert_int_equal(st.ppid, getppid());
    assert_int_equal(st.state, 'R');
    {
        /* the same name /proc/self/comm gives */
        char comm[64] = "";
        FILE *f = fopen("/proc/self/comm", "r");
        assert_non_null(f);
        assert_non_null(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        assert_string_equal(st.comm, comm);
    }
    assert_int_equal(st.num_threads, 1);
    assert_false(st.flags & DP_PF_KTHREAD);
    assert_int_equal(dp_read_stat(getpid(), getpid(), &st, &err), 0);
    assert_int_equal(st.pid, getpid());

    assert_int_equal(dp_read_stat(4194304, 0, &st, &err), -1);
    assert_int_equal(err.status, 404);
    assert_string_equal(err.msg, "Process with an Id of 4194304 is not running.");

    assert_int_equal(dp_proc_owner(getpid()), (long)getuid());
    assert_int_equal(dp_proc_owner(4194304), -1);

    tids = dp_list_tids(getpid(), pool);
    assert_non_null(tids);
    assert_int_equal(tids->nelts, 1);
    assert_int_equal(APR_ARRAY_IDX(tids, 0, int), getpid());
    assert_null(dp_list_tids(4194304, pool));

    pids = dp_list_pids(pool);
    for (i = 0; i < pids->nelts; i++) {
        if (i)
            assert_true(APR_ARRAY_IDX(pids, i - 1, int) < APR_ARRAY_IDX(pids, i, int));
        if (APR_ARRAY_IDX(pids, i, int) == getpid())
            found = 1;
    }
    assert_true(found);

    assert_true(dp_boot_time() > 1000000000LL);
    assert_int_equal(dp_clock_ticks(), sysconf(_SC_CLK_TCK));
    assert_int_equal(dp_page_size(), sysconf(_SC_PAGESIZE));
    assert_string_equal(dp_user_name(0, pool), "root");
    assert_string_equal(dp_user_name(1999999999, pool), "1999999999");
}

/* The live readers on this very process and a child of it. */
static void test_children_and_status_fields(void **state)
{
    char v[64];
    pid_t child = fork();
    apr_array_header_t *kids;
    int i, found = 0;
    (void)state;

    if (child == 0) {
        pause();
        _exit(0);
    }
    kids = dp_list_children(getpid(), pool);
    assert_non_null(kids);
    for (i = 0; i < kids->nelts; i++)
        found |= APR_ARRAY_IDX(kids, i, pid_t) == child;
    assert_true(found);
    assert_int_equal(dp_read_status_field(getpid(), 0, "Pid", v, sizeof(v)), 0);
    assert_int_equal(atoi(v), getpid());
    assert_int_equal(dp_read_status_field(getpid(), getpid(), "TracerPid", v, sizeof(v)), 0);
    assert_string_equal(v, "0");
    assert_int_equal(dp_read_status_field(getpid(), 0, "Pi", v, sizeof(v)), -1);  /* whole key only */
    assert_int_equal(dp_read_status_field(getpid(), 0, "NoSuchField", v, sizeof(v)), -1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_null(dp_list_children(child, pool));          /* gone */
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_and_status_fields),
        cmocka_unit_test(test_stat_real_process),
        cmocka_unit_test(test_stat_kernel_thread),
        cmocka_unit_test(test_stat_realtime_negative_priority),
        cmocka_unit_test(test_stat_negative_fields_synthetic),
        cmocka_unit_test(test_stat_hostile_comms),
        cmocka_unit_test(test_stat_name_that_looks_like_fields),
        cmocka_unit_test(test_stat_long_name_is_cut),
        cmocka_unit_test(test_stat_truncated_lines_fail),
        cmocka_unit_test(test_stat_every_prefix),
        cmocka_unit_test(test_status_real_process),
        cmocka_unit_test(test_status_kernel_thread),
        cmocka_unit_test(test_status_synthetic),
        cmocka_unit_test(test_status_unterminated_and_huge),
        cmocka_unit_test(test_statm),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_maps_real),
        cmocka_unit_test(test_maps_synthetic),
        cmocka_unit_test(test_split_nul),
        cmocka_unit_test(test_process_name),
        cmocka_unit_test(test_php_fpm_title),
        cmocka_unit_test(test_parse_pid),
        cmocka_unit_test(test_state_word),
        cmocka_unit_test(test_read_small_and_file),
        cmocka_unit_test(test_read_self),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    find_fixture_dir();
    rc = cmocka_run_group_tests_name("procfs", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc ? 1 : 0;
}
