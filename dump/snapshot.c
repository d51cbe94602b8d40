/* Copy-on-write snapshot of a stopped process by an injected clone(); see
 * snapshot.h for the why. The injection is the one debuggers use for
 * inferior calls: save the registers, point the thread at a `syscall`
 * instruction with orig_rax = -1 (so no interrupted call is restarted
 * into ours), single-step it, restore the registers. */
#include <errno.h>
#include <stdint.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/close_range.h>

/* glibc 2.31 (Debian 11) names no SYS_close_range; its kernel headers have
 * the number (Linux 5.9) */
#ifndef SYS_close_range
#define SYS_close_range __NR_close_range
#endif

#include "dump/snapshot.h"
#include "proc/procfs.h"

#define MAX_STEPS 8

/* Any `syscall` (0f 05) in the target's code will do: the vDSO has some. */
static unsigned long long find_syscall_insn(pid_t pid)
{
    char path[64], line[512], perms[8], name[256];
    unsigned long long start, end, found = 0;
    unsigned char buf[65536];
    FILE *f;
    int pass;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    for (pass = 0; pass < 2 && !found; pass++) {
        if (!(f = fopen(path, "re")))
            return 0;
        while (!found && fgets(line, sizeof(line), f)) {
            name[0] = '\0';
            if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &start, &end, perms, name) < 3
                || perms[0] != 'r' || perms[2] != 'x')
                continue;
            if ((pass == 0) != (strcmp(name, "[vdso]") == 0))
                continue;
            for (; start + 1 < end && !found; start += sizeof(buf) - 1) {
                size_t n = end - start < sizeof(buf) ? (size_t)(end - start) : sizeof(buf), k;
                struct iovec l = { buf, n }, r = { (void *)(uintptr_t)start, n };
                if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)n)
                    break;
                for (k = 0; k + 1 < n; k++)
                    if (buf[k] == 0x0f && buf[k + 1] == 0x05) {
                        found = start + k;
                        break;
                    }
            }
        }
        fclose(f);
    }
    return found;
}

pid_t dp_wait_traced(pid_t tid, int *status)
{
    pid_t r;
    do
        r = waitpid(tid, status, __WALL);
    while (r < 0 && errno == EINTR);
    return r;
}

static int wait_stop(pid_t tid, int *status)
{
    return dp_wait_traced(tid, status) == tid && WIFSTOPPED(*status) ? 0 : -1;
}

/* The new process must never run the target's code: killed if we die, and
 * pointed at exit_group should anything resume it. */
static void fence_copy(pid_t copy, unsigned long long insn)
{
    struct user_regs_struct r;
    int status;

    if (wait_stop(copy, &status) != 0)
        return;
    ptrace(PTRACE_SETOPTIONS, copy, NULL, (void *)(long)PTRACE_O_EXITKILL);
    if (ptrace(PTRACE_GETREGS, copy, NULL, &r) == 0) {
        r.rip = insn;
        r.rax = SYS_exit_group;
        r.orig_rax = (unsigned long long)-1;
        r.rdi = 0;
        ptrace(PTRACE_SETREGS, copy, NULL, &r);
    }
}

/* Runs one system call in the stopped thread `tid` and restores its registers.
 * A signal that arrives meanwhile is sent again afterwards. */
static int inject(pid_t pid, pid_t tid, unsigned long long insn, long nr, const long a[6],
                  long *ret, pid_t *copy)
{
    struct user_regs_struct saved, r;
    int status, steps, pending = 0, done = 0;

    if (ptrace(PTRACE_GETREGS, tid, NULL, &saved) != 0)
        return -1;
    r = saved;
    r.rip = insn;
    r.orig_rax = (unsigned long long)-1;
    r.rax = (unsigned long long)nr;
    r.rdi = (unsigned long long)a[0];
    r.rsi = (unsigned long long)a[1];
    r.rdx = (unsigned long long)a[2];
    r.r10 = (unsigned long long)a[3];
    r.r8 = (unsigned long long)a[4];
    r.r9 = (unsigned long long)a[5];
    if (ptrace(PTRACE_SETREGS, tid, NULL, &r) != 0)
        return -1;
    for (steps = 0; steps < MAX_STEPS && !done; steps++) {
        int event;
        if (ptrace(PTRACE_SINGLESTEP, tid, NULL, NULL) != 0 || wait_stop(tid, &status) != 0)
            break;          /* gone, or not in a stop: restore if we still can */
        event = status >> 16;
        if (event == PTRACE_EVENT_CLONE && copy) {
            unsigned long msg = 0;
            ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg);
            *copy = (pid_t)msg;
            fence_copy(*copy, insn);
        }
        else if (event)
            ;                       /* a group stop or another event: step on */
        else if (WSTOPSIG(status) == SIGTRAP
                 && ptrace(PTRACE_GETREGS, tid, NULL, &r) == 0 && r.rip == insn + 2)
            done = 1;
        else
            pending = WSTOPSIG(status);
    }
    if (done)
        *ret = (long)r.rax;
    ptrace(PTRACE_SETREGS, tid, NULL, &saved);
    if (pending)
        syscall(SYS_tgkill, pid, tid, pending);
    return done ? 0 : -1;
}

int dp_snapshot_refused(pid_t pid)
{
    char mode[16];
    return dp_read_status_field(pid, 0, "Seccomp", mode, sizeof(mode)) != 0 || atoi(mode) != 0;
}

int dp_snapshot_take(pid_t pid, pid_t tid, dp_snapshot *s)
{
    /* no exit signal: the target is never told of this child; shared fd
     * table: no file of the target's gets a second reference */
    const long clone_args[6] = { CLONE_FILES, 0, 0, 0, 0, 0 };
    /* then the copy leaves the table and closes its private duplicate: were
     * the target to die mid-dump, its files (a listening port, the socket to
     * our worker) must close with it, not live on in the copy */
    const long close_args[6] = { 0, ~0L, CLOSE_RANGE_UNSHARE, 0, 0, 0 };
    unsigned long long insn = find_syscall_insn(pid);
    long ret = -1, closed = -1;
    pid_t copy = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    if (!insn || ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)(long)PTRACE_O_TRACECLONE) != 0)
        return -1;
    rc = inject(pid, tid, insn, SYS_clone, clone_args, &ret, &copy);
    ptrace(PTRACE_SETOPTIONS, tid, NULL, NULL);
    s->pid = copy;
    s->pid_in_target = rc == 0 && ret > 0 ? (pid_t)ret : 0;
    if (!copy || !s->pid_in_target
        || inject(copy, copy, insn, SYS_close_range, close_args, &closed, NULL) != 0 || closed != 0) {
        dp_snapshot_drop(pid, s);
        return -1;
    }
    return 0;
}

/* wait4(copy, NULL, __WALL | WNOHANG) run by one of the target's threads. */
static void reap_in_target(pid_t pid, pid_t copy)
{
    const long args[6] = { copy, 0, __WALL | WNOHANG, 0, 0, 0 };
    unsigned long long insn = find_syscall_insn(pid);
    char path[64];
    struct dirent *e;
    DIR *d;
    int reaped = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if (!insn || !(d = opendir(path)))
        return;
    while (!reaped && (e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        int status;
        long ret;
        if (tid <= 0 || ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0)
            continue;
        if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) == 0 && wait_stop(tid, &status) == 0)
            reaped = inject(pid, tid, insn, SYS_wait4, args, &ret, NULL) == 0;
        ptrace(PTRACE_DETACH, tid, NULL, NULL);
    }
    closedir(d);
}

/* The pid a process has in its own (innermost) pid namespace: the last
 * of NSpid's. */
static pid_t pid_in_own_ns(pid_t pid)
{
    char ns[128], *last;
    if (dp_read_status_field(pid, 0, "NSpid", ns, sizeof(ns)) != 0)
        return 0;
    last = strrchr(ns, '\t') ? strrchr(ns, '\t') + 1 : ns;
    return (pid_t)atoi(last);
}

/* One pass: reaps the copies that are zombies already; counts those still dying. */
static int reap_orphans_once(pid_t pid, const dp_stat *target, unsigned long long since)
{
    apr_pool_t *p;
    apr_array_header_t *kids;
    dp_stat z;
    dp_error ignored = { 0 };
    int dying = 0, i;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS)
        return 0;
    kids = dp_list_children(pid, p);
    for (i = 0; kids && i < kids->nelts; i++) {
        pid_t child = APR_ARRAY_IDX(kids, i, pid_t), inner;
        if (dp_read_stat(child, 0, &z, &ignored) != 0 || z.exit_signal != 0
            || z.starttime < since || strcmp(z.comm, target->comm))
            continue;
        if (z.state != 'Z')
            dying++;
        else if ((inner = pid_in_own_ns(child)) > 0)
            reap_in_target(pid, inner);
    }
    apr_pool_destroy(p);
    return dying;
}

void dp_snapshot_reap_orphans(pid_t pid, unsigned long long since)
{
    dp_stat target;
    dp_error ignored = { 0 };
    int tries;

    if (dp_read_stat(pid, 0, &target, &ignored) != 0)
        return;
    /* the copy is killed as its tracer exits: it may take a moment to die */
    for (tries = 0; tries < 50 && reap_orphans_once(pid, &target, since) > 0; tries++)
        usleep(20 * 1000);
}

void dp_snapshot_drop(pid_t pid, dp_snapshot *s)
{
    int status, i;

    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    for (i = 0; i < 4; i++)
        if (dp_wait_traced(s->pid, &status) != s->pid || WIFEXITED(status) || WIFSIGNALED(status))
            break;
    if (s->pid_in_target)
        reap_in_target(pid, s->pid_in_target);
    s->pid = 0;
    s->pid_in_target = 0;
}
