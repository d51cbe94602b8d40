/* A profile's native sample of one thread: stopped alone (PTRACE_SEIZE +
 * INTERRUPT, never ATTACH: a sampler killed meanwhile leaves it running),
 * its registers taken, unwound by libdwfl while it stays stopped, resumed
 * (detached) at once; the frames are named after it runs again. The other
 * threads never stop. */
#include <errno.h>
#include <elf.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <elfutils/libdwfl.h>
#include <apr_strings.h>

#include "helper/profile.h"

#define USER_MIN 4096ULL
#define USER_MAX 0x7fffffffffffULL

struct dp_native_sampler {
    Dwfl *dwfl;
    pid_t pid, cur;
    int attached;
    struct user_regs_struct regs;
    int n;
    uint64_t pc[DP_PROF_MAX_FRAMES];
    char exact[DP_PROF_MAX_FRAMES];
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    dp_native_sampler *ns = arg;
    (void)dwfl;
    if (*thread_argp)
        return 0;
    *thread_argp = ns;
    return ns->cur;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
    dp_native_sampler *ns = arg;
    (void)dwfl;
    if (tid != ns->cur)
        return false;
    *thread_argp = ns;
    return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    dp_native_sampler *ns = arg;
    struct iovec local = { result, 8 }, remote = { (void *)(uintptr_t)addr, 8 };
    (void)dwfl;
    return addr >= USER_MIN && addr < USER_MAX
           && process_vm_readv(ns->pid, &local, 1, &remote, 1, 0) == 8;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
    const struct user_regs_struct *r = &((dp_native_sampler *)thread_arg)->regs;
    /* DWARF numbering of x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8-r15, then rip */
    Dwarf_Word d[17] = { r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp,
                         r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip };
    return dwfl_thread_state_registers(thread, 0, 17, d);
}

static void thread_detach(Dwfl_Thread *thread, void *thread_arg)
{
    (void)thread;
    (void)thread_arg;       /* dp_native_sample detaches */
}

static const Dwfl_Thread_Callbacks callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
    .thread_detach = thread_detach,
};

dp_native_sampler *dp_native_sampler_open(Dwfl *dwfl, pid_t pid, apr_pool_t *p)
{
    dp_native_sampler *ns = apr_pcalloc(p, sizeof(*ns));

    ns->dwfl = dwfl;
    ns->pid = pid;
    ns->attached = dwfl && dwfl_attach_state(dwfl, NULL, pid, &callbacks, ns);
    return ns;
}

static int on_frame(Dwfl_Frame *state, void *arg)
{
    dp_native_sampler *ns = arg;
    Dwarf_Addr pc;
    bool activation;

    if (ns->n >= DP_PROF_MAX_FRAMES || !dwfl_frame_pc(state, &pc, &activation))
        return DWARF_CB_ABORT;
    ns->pc[ns->n] = pc;
    ns->exact[ns->n++] = activation;
    return DWARF_CB_OK;
}

/* Stopped by our INTERRUPT: 0 with the signal to give back on detach (a
 * signal that arrived meanwhile), -1 when the thread is gone. */
static int wait_stopped(pid_t tid, int *resend)
{
    int status;

    *resend = 0;
    for (;;) {
        pid_t w = waitpid(tid, &status, __WALL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w != tid || !WIFSTOPPED(status))
            return -1;
        if ((status >> 16) == PTRACE_EVENT_STOP)
            return 0;
        /* a signal-delivery stop came first: it is delivered on detach */
        *resend = WSTOPSIG(status);
        return 0;
    }
}

/* The registers and the walk, while tid is stopped; it is always resumed. */
static int stopped_walk(dp_native_sampler *ns, pid_t tid)
{
    struct iovec io = { &ns->regs, sizeof(ns->regs) };
    int resend, rc = -1;

    if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0)
        return -1;
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0 || wait_stopped(tid, &resend) != 0) {
        ptrace(PTRACE_DETACH, tid, 0, 0);
        return -1;
    }
    ns->cur = tid;
    ns->n = 0;
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &io) == 0) {
        dwfl_getthread_frames(ns->dwfl, tid, on_frame, ns);
        rc = ns->n > 0 ? 0 : -1;
    }
    ptrace(PTRACE_DETACH, tid, 0, (void *)(uintptr_t)resend);
    return rc;
}

int dp_native_sample(dp_native_sampler *ns, pid_t tid, dp_native_frame_fn *fn, void *arg,
                     apr_pool_t *p)
{
    int i;

    if (!ns->attached || stopped_walk(ns, tid) != 0)
        return -1;
    for (i = 0; i < ns->n; i++) {
        /* a return address points after the call: name the call itself */
        Dwarf_Addr at = ns->exact[i] ? ns->pc[i] : ns->pc[i] - 1;
        Dwfl_Module *mod = dwfl_addrmodule(ns->dwfl, at);
        const char *name = mod ? dwfl_module_addrname(mod, at) : NULL;
        const char *file = mod ? dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL,
                                                  NULL) : NULL;
        if (file && strrchr(file, '/'))
            file = strrchr(file, '/') + 1;      /* the object's name is enough here */
        fn(arg, name ? apr_pstrndup(p, name, strcspn(name, "@"))
                     : apr_psprintf(p, "0x%" APR_UINT64_T_HEX_FMT, (apr_uint64_t)ns->pc[i]), file);
    }
    return 0;
}
