/* The copy-on-write snapshot alone, on a child of the test: the copy holds
 * the memory of the instant it was taken, none of the target's files, and
 * leaves nothing behind in the target when dropped, or when its dumping
 * process died and the orphan is reaped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <unistd.h>
#include <cmocka.h>
#include <apr_general.h>
#include "dump/snapshot.h"

#define PAGES 8

typedef struct target {
    pid_t pid;
    volatile long *mem;         /* shared with the test: the child writes, we look */
} target;

/* A child that writes `value` into its private pages whenever the shared
 * word says so, and otherwise sleeps. */
static target spawn(int seccomp)
{
    target t;
    long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int ready[2];
    char c;

    assert_true(shared != MAP_FAILED);
    assert_int_equal(pipe(ready), 0);
    t.mem = shared;
    t.pid = fork();
    if (t.pid == 0) {
        long *priv = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int k;
        if (seccomp) {
            struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
            struct sock_fprog prog = { 1, &allow };
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
        }
        for (k = 0; k < PAGES; k++)
            priv[k * 512] = 1;
        shared[0] = (long)(uintptr_t)priv;
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        for (;;) {
            if (shared[1])              /* asked to write a new value */
                for (k = 0; k < PAGES; k++)
                    priv[k * 512] = shared[1];
            usleep(1000);
        }
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    return t;
}

static void stop(pid_t pid)
{
    int status;
    assert_int_equal(ptrace(PTRACE_SEIZE, pid, NULL, NULL), 0);
    assert_int_equal(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL), 0);
    assert_int_equal(dp_wait_traced(pid, &status), pid);
    assert_true(WIFSTOPPED(status));
}

static long peek(pid_t pid, unsigned long long addr)
{
    char path[64];
    long v = -1;
    int fd;
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, &v, sizeof(v), (off_t)addr) != (ssize_t)sizeof(v))
            v = -1;
        close(fd);
    }
    return v;
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int has_children(pid_t pid)
{
    char path[64], buf[256] = "";
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    if ((f = fopen(path, "r"))) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    return buf[0] != '\0';
}

static void finish(target *t)
{
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0);
    munmap((void *)t->mem, 4096);
}

static void test_copy_holds_one_instant(void **state)
{
    target t = spawn(0);
    unsigned long long priv = (unsigned long long)t.mem[0];
    dp_snapshot s;
    char fds[64];
    int k;
    (void)state;

    assert_int_equal(dp_snapshot_refused(t.pid), 0);
    stop(t.pid);
    assert_int_equal(dp_snapshot_take(t.pid, t.pid, &s), 0);
    assert_true(s.pid > 0 && s.pid != t.pid);
    assert_int_equal(s.pid_in_target, s.pid);          /* same pid namespace */
    assert_true(has_children(t.pid));
    ptrace(PTRACE_DETACH, t.pid, NULL, NULL);

    t.mem[1] = 7;                       /* the target writes on... */
    for (k = 0; k < 1000 && peek(t.pid, priv + (PAGES - 1) * 4096) != 7; k++)
        usleep(1000);
    assert_int_equal(peek(t.pid, priv + (PAGES - 1) * 4096), 7);
    for (k = 0; k < PAGES; k++)         /* ...the copy keeps the instant */
        assert_int_equal(peek(s.pid, priv + (unsigned long long)k * 4096), 1);

    snprintf(fds, sizeof(fds), "/proc/%d/fd", (int)s.pid);
    assert_int_equal(count_entries(fds), 0);            /* none of the target's files */

    dp_snapshot_drop(t.pid, &s);
    assert_int_equal(s.pid, 0);
    assert_false(has_children(t.pid));                  /* reaped inside the target */
    assert_int_equal(kill(t.pid, 0), 0);                 /* which lives on */
    finish(&t);
}

static void test_orphan_of_a_killed_dumper_is_reaped(void **state)
{
    target t = spawn(0);
    dp_snapshot s;
    int status;
    (void)state;

    stop(t.pid);
    assert_int_equal(dp_snapshot_take(t.pid, t.pid, &s), 0);
    ptrace(PTRACE_DETACH, t.pid, NULL, NULL);
    /* what the dumper's death does: the copy is killed (EXITKILL) and left a
     * zombie child of the target */
    kill(s.pid, SIGKILL);
    assert_int_equal(dp_wait_traced(s.pid, &status), s.pid);
    assert_true(has_children(t.pid));
    dp_snapshot_reap_orphans(t.pid, 0);
    assert_false(has_children(t.pid));
    finish(&t);
}

static void test_seccomp_target_is_refused(void **state)
{
    target t = spawn(1);
    (void)state;
    assert_int_equal(dp_snapshot_refused(t.pid), 1);
    finish(&t);
    assert_int_equal(dp_snapshot_refused(t.pid), 1);      /* gone: refused too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_holds_one_instant),
        cmocka_unit_test(test_orphan_of_a_killed_dumper_is_reaped),
        cmocka_unit_test(test_seccomp_target_is_refused),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
