/* The ELF core writer, step 1: seize and interrupt every thread
 * (re-scanning for new ones) and capture its registers. */

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dump/core_internal.h"

#define XSTATE_MAX 16384
#define KEPT_STACK_MAX (1u << 20)   /* the running thread's stack kept from its stop */

static thread_regs *find_thread(dp_core *c, pid_t tid)
{
    int i;
    for (i = 0; i < c->threads->nelts; i++)
        if (APR_ARRAY_IDX(c->threads, i, thread_regs).tid == tid)
            return &APR_ARRAY_IDX(c->threads, i, thread_regs);
    return NULL;
}

void dp_core_detach_all(dp_core *c)
{
    int i;
    for (i = 0; c->threads && i < c->threads->nelts; i++) {
        thread_regs *t = &APR_ARRAY_IDX(c->threads, i, thread_regs);
        if (t->attached) {
            ptrace(PTRACE_DETACH, t->tid, NULL, NULL);
            t->attached = 0;
        }
    }
}

static int capture_regs(thread_regs *t)
{
    struct iovec iov = { &t->regs, sizeof(t->regs) };

    if (ptrace(PTRACE_GETREGSET, t->tid, (void *)NT_PRSTATUS, &iov) != 0)
        return -1;
    iov.iov_base = &t->fp;
    iov.iov_len = sizeof(t->fp);
    t->has_fp = ptrace(PTRACE_GETREGSET, t->tid, (void *)NT_PRFPREG, &iov) == 0;
    iov.iov_base = t->xstate;
    iov.iov_len = XSTATE_MAX;
    t->xstate_len = ptrace(PTRACE_GETREGSET, t->tid, (void *)NT_X86_XSTATE, &iov) == 0
                    ? iov.iov_len : 0;
    return 0;
}

/* The kernel refuses (EPERM) to attach to a thread that is exiting, the
 * same answer as for a real permission problem: tell them apart. */
static int thread_ended(pid_t pid, pid_t tid)
{
    dp_stat st;
    dp_error ignored = { 0 };
    return dp_read_stat(pid, tid, &st, &ignored) != 0 || st.state == 'Z' || st.state == 'X';
}

/* From below the red zone up to where the stack's mapping ends (or 1 MiB). */
static void keep_stack(dp_core *c, unsigned long long sp)
{
    struct iovec local, remote;
    ssize_t n;

    c->kept_stack = apr_palloc(c->pool, KEPT_STACK_MAX);
    c->kept_lo = PAGE_DOWN(sp - 128);
    local.iov_base = c->kept_stack;
    local.iov_len = KEPT_STACK_MAX;
    remote.iov_base = (void *)(uintptr_t)c->kept_lo;
    remote.iov_len = KEPT_STACK_MAX;
    n = process_vm_readv(c->pid, &local, 1, &remote, 1, 0);    /* stops at the mapping's end */
    c->kept_hi = n > 0 ? c->kept_lo + (unsigned long long)n : c->kept_lo;
}

/* TracerPid of one thread; 0 when none, -1 when unreadable. */
static long tracer_of(pid_t pid, pid_t tid)
{
    char v[32];
    return dp_read_status_field(pid, tid, "TracerPid", v, sizeof(v)) == 0 ? atol(v) : -1;
}

/* Seize + interrupt every thread until a scan finds no new one. */
int dp_core_stop_threads(dp_core *c, dp_error *err)
{
    int grew, i;

    do {
        apr_array_header_t *tids = dp_list_tids(c->pid, c->pool);
        grew = 0;
        if (!tids)
            return dp_fail(err, 409, "Process %d exited while it was being dumped.", (int)c->pid);
        for (i = 0; i < tids->nelts; i++) {
            pid_t tid = APR_ARRAY_IDX(tids, i, int);
            thread_regs *t;
            int status;
            if (find_thread(c, tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
                int e = errno;
                long tracer;
                if (e == ESRCH || (e == EPERM && thread_ended(c->pid, tid)))
                    continue;       /* the thread ended meanwhile */
                if (e == EPERM && (tracer = tracer_of(c->pid, tid)) > 0)
                    return dp_fail(err, 409, "Process %d is being traced by process %ld (a "
                                   "debugger, or another dump); try again once it has "
                                   "detached.", (int)c->pid, tracer);
                if (e == EPERM)
                    return dp_fail(err, 403, "Not permitted to trace process %d (missing "
                                   "CAP_SYS_PTRACE).", (int)c->pid);
                return dp_fail(err, 500, "PTRACE_SEIZE of thread %d failed: %s.", (int)tid,
                               strerror(e));
            }
            t = apr_array_push(c->threads);
            memset(t, 0, sizeof(*t));
            t->tid = tid;
            t->attached = 1;
            t->xstate = apr_palloc(c->pool, XSTATE_MAX);
            grew = 1;
            if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0
                || dp_wait_traced(tid, &status) != tid || !WIFSTOPPED(status)
                || capture_regs(t) != 0) {
                t->attached = 0;    /* gone: it will not be in the core */
                t->tid = -tid;
                continue;
            }
            if (tid == c->opts.keep_running_tid) {
                /* it carries the stream: registers and stack taken, let it run */
                keep_stack(c, t->regs.rsp);
                ptrace(PTRACE_DETACH, tid, NULL, NULL);
                t->attached = 0;
            }
        }
    } while (grew);
    return 0;
}
