/* Tree kill: stop every member first (so nothing forks or gets reparented
 * while we work), then kill leaves first. Members are held by pidfds whose
 * identity was checked against their start time. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "helper/kill.h"
#include "proc/procfs.h"
#include "common/clock.h"

#define DP_KILL_MAX_MEMBERS 65536

typedef struct member {
    pid_t pid;
    int fd;
} member;

typedef struct tree {
    member *m;
    int n, cap;
} tree;

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int fd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* A pidfd for pid if it is still the process that started at start_ticks
 * (0 = whatever runs now). -1 when gone or another process. */
static int open_checked(pid_t pid, unsigned long long start_ticks, dp_stat *st)
{
    int fd = pidfd_open_(pid);
    dp_stat tmp;

    if (!st)
        st = &tmp;
    if (fd < 0)
        return -1;
    /* stat is read after the pidfd pins the process; if the process is still
     * alive (signal 0 succeeds) the pid cannot have been reused in between */
    if (dp_read_stat(pid, 0, st, NULL) != 0 || (start_ticks && st->starttime != start_ticks)
        || pidfd_signal(fd, 0) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int tree_has(const tree *t, pid_t pid)
{
    int i;
    for (i = 0; i < t->n; i++)
        if (t->m[i].pid == pid)
            return 1;
    return 0;
}

static int tree_add(tree *t, pid_t pid, int fd)
{
    if (t->n == t->cap) {
        member *nm;
        if (t->cap >= DP_KILL_MAX_MEMBERS)
            return -1;
        t->cap = t->cap ? t->cap * 2 : 64;
        nm = realloc(t->m, (size_t)t->cap * sizeof(*nm));
        if (!nm)
            return -1;
        t->m = nm;
    }
    t->m[t->n].pid = pid;
    t->m[t->n].fd = fd;
    t->n++;
    return 0;
}

static void tree_free(tree *t)
{
    int i;
    for (i = 0; i < t->n; i++)
        close(t->m[i].fd);
    free(t->m);
}

/* Stops and adds every child of pid not yet in the tree; returns how many. */
static int add_children(tree *t, pid_t pid)
{
    int added = 0, i;
    apr_pool_t *p;
    apr_array_header_t *kids;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS)
        return 0;
    kids = dp_list_children(pid, p);
    for (i = 0; kids && i < kids->nelts; i++) {
        pid_t c = APR_ARRAY_IDX(kids, i, pid_t);
        int fd;
        if (tree_has(t, c) || (fd = open_checked(c, 0, NULL)) < 0)
            continue;
        pidfd_signal(fd, SIGSTOP);      /* before listing its children: it cannot fork on */
        if (tree_add(t, c, fd) != 0) {
            close(fd);
            break;
        }
        added++;
    }
    apr_pool_destroy(p);
    return added;
}

/* Waits until every member has exited (its pidfd turns readable). */
static void wait_gone(const tree *t, int timeout_ms)
{
    uint64_t t0 = dp_mono_ms();
    int i;

    for (i = 0; i < t->n; i++) {
        struct pollfd pfd = { t->m[i].fd, POLLIN, 0 };
        long left = timeout_ms - (long)(dp_mono_ms() - t0);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return;
    }
}

int dp_kill_tree(pid_t pid, unsigned long long start_time_ticks, dp_error *err)
{
    tree t = { NULL, 0, 0 };
    dp_stat st;
    int fd, i, grew;

    fd = open_checked(pid, start_time_ticks, &st);
    if (fd < 0)
        return dp_fail_not_running(err, pid);
    if (st.state == 'Z' || st.state == 'X') {
        close(fd);
        return dp_fail(err, 409, "Process %d is a zombie: it has already exited and waits "
                       "for its parent to reap it.", (int)pid);
    }
    if (pidfd_signal(fd, SIGSTOP) != 0) {
        int e = errno;
        close(fd);
        if (e == EPERM)
            return dp_fail(err, 403, "Not permitted to signal process %d (owned by uid %ld).",
                           (int)pid, dp_proc_owner(pid));
        return dp_fail_not_running(err, pid);
    }
    tree_add(&t, pid, fd);
    /* breadth first; a further pass until nothing new appears */
    do {
        grew = 0;
        for (i = 0; i < t.n; i++)
            grew += add_children(&t, t.m[i].pid);
    } while (grew);
    for (i = t.n - 1; i >= 0; i--)          /* leaves first */
        pidfd_signal(t.m[i].fd, SIGKILL);
    wait_gone(&t, 5000);
    tree_free(&t);
    return 0;
}
