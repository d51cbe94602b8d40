/* Native stacks of a stopped process through elfutils' libdwfl: the
 * registers and memory are the core writer's (dump/core.h), so the walk sees
 * exactly what a core would hold; CFI and symbols come from the mapped files
 * and separate debug info under /usr/lib/debug. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/user.h>
#include <elfutils/libdwfl.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <fcntl.h>

#include "helper/stacks.h"
#include "common/proto.h"
#include "helper/lang_target.h"
#include "common/clock.h"

#define USER_MIN 4096ULL
#define USER_MAX 0x7fffffffffffULL

typedef struct unwind_ctx {
    dp_core *core;
    dp_stacks *out;
    dp_stack_thread *cur;
    apr_array_header_t *activation;     /* per frame of cur: 1 = pc is exact (no call) */
    struct timespec deadline;
    int timed_out;
} unwind_ctx;

static char *debuginfo_path = NULL;     /* libdwfl's default: .debug and /usr/lib/debug */
static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

Dwfl *dp_lang_report_modules(pid_t pid, dp_error *err)
{
    Dwfl *dwfl;

    unsetenv("DEBUGINFOD_URLS");        /* never fetch debug info over the network */
    dwfl = dwfl_begin(&dwfl_callbacks);
    if (!dwfl) {
        dp_fail(err, 500, "libdwfl could not start: %s.", dwfl_errmsg(-1));
        return NULL;
    }
    dwfl_report_begin(dwfl);
    if (dwfl_linux_proc_report(dwfl, pid) != 0 || dwfl_report_end(dwfl, NULL, NULL) != 0) {
        dwfl_end(dwfl);
        dp_fail(err, 409, "The objects mapped by process %d could not be read (did it exit?).",
                (int)pid);
        return NULL;
    }
    return dwfl;
}


/* Opens what the walk will need (each object's ELF and unwind tables, the
 * interpreters' symbol tables) so that the target's pause is the walk alone. */
static int warm_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                       void *arg)
{
    Dwarf_Addr bias;
    (void)userdata;
    (void)base;
    if (dwfl_module_getelf(mod, &bias)) {
        dwfl_module_eh_cfi(mod, &bias);
        dwfl_module_dwarf_cfi(mod, &bias);     /* .debug_frame, from debug info if any */
    }
    if (dp_lang_walked(arg, name))
        dwfl_module_getsymtab(mod);
    return DWARF_CB_OK;
}

struct Dwfl *dp_stacks_open_modules(pid_t pid, apr_hash_t **kinds, apr_pool_t *p,
                                    dp_error *err)
{
    Dwfl *dwfl = dp_lang_report_modules(pid, err);

    if (!dwfl)
        return NULL;
    *kinds = dp_lang_runtime_kinds(dwfl, pid, p);
    dwfl_getmodules(dwfl, warm_module, *kinds, 0);
    return dwfl;
}

/* ------------------------------------------------- libdwfl's callbacks */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    unwind_ctx *u = arg;
    dp_stack_thread *base = (dp_stack_thread *)(void *)u->out->threads->elts;
    int i = *thread_argp ? (int)((dp_stack_thread *)*thread_argp - base) + 1 : 0;

    (void)dwfl;
    for (; i < u->out->threads->nelts; i++)
        if (!(base[i].flags & DP_ST_NOT_STOPPED)) {
            *thread_argp = &base[i];
            return base[i].tid;
        }
    return 0;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    unwind_ctx *u = arg;
    (void)dwfl;
    return addr >= USER_MIN && addr < USER_MAX && dp_core_read(u->core, addr, result, 8) == 0;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
    const struct user_regs_struct *r = ((dp_stack_thread *)thread_arg)->regs;
    /* DWARF numbering of x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8-r15, then rip */
    Dwarf_Word d[17] = { r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp,
                         r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip };
    return dwfl_thread_state_registers(thread, 0, 17, d);
}

static void thread_detach(Dwfl_Thread *thread, void *thread_arg)
{
    (void)thread;
    (void)thread_arg;       /* the core writer resumes the threads */
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
    .thread_detach = thread_detach,
};

static int past(const struct timespec *deadline)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec > deadline->tv_sec
           || (ts.tv_sec == deadline->tv_sec && ts.tv_nsec >= deadline->tv_nsec);
}

static int on_frame(Dwfl_Frame *state, void *arg)
{
    unwind_ctx *u = arg;
    dp_stack_thread *th = u->cur;
    dp_native_frame *f;
    Dwarf_Addr pc;
    bool activation;

    if (!dwfl_frame_pc(state, &pc, &activation))
        return DWARF_CB_ABORT;
    if (th->native->nelts >= DP_STACK_MAX_FRAMES) {
        th->flags |= DP_ST_TRUNCATED;
        return DWARF_CB_ABORT;
    }
    if (past(&u->deadline)) {
        u->timed_out = 1;
        return DWARF_CB_ABORT;
    }
    f = apr_array_push(th->native);
    memset(f, 0, sizeof(*f));
    f->pc = pc;
    f->offset = UINT64_MAX;
    *(char *)apr_array_push(u->activation) = activation;
    return DWARF_CB_OK;
}

/* Names, modules and lines, once the target runs again. */
static void symbolize(Dwfl *dwfl, dp_stack_thread *th, const char *activation, apr_pool_t *p)
{
    int i;

    for (i = 0; i < th->native->nelts; i++) {
        dp_native_frame *f = &APR_ARRAY_IDX(th->native, i, dp_native_frame);
        /* a return address points after the call: look up the call itself */
        Dwarf_Addr at = activation[i] ? f->pc : f->pc - 1;
        Dwfl_Module *mod = dwfl_addrmodule(dwfl, at);
        Dwfl_Line *line;
        GElf_Off off;
        GElf_Sym sym;
        const char *name, *file;
        int lineno;

        if (!mod)
            continue;
        f->module = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        name = dwfl_module_addrinfo(mod, at, &off, &sym, NULL, NULL, NULL);
        if (name) {
            /* "clock_nanosleep@GLIBC_2.2.5": the name, as gdb shows it */
            f->function = apr_pstrndup(p, name, strcspn(name, "@"));
            f->offset = off + (f->pc - at);
        }
        line = dwfl_module_getsrc(mod, at);
        if (line && (file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL))) {
            f->file = apr_pstrdup(p, file);
            f->line = lineno;
        }
        if (f->module)
            f->module = apr_pstrdup(p, f->module);
    }
}

/* Language frame groups to the native frames that run them. */
static void place_lang_frames(dp_stack_thread *th, const char *runner)
{
    int i, n = 0, runners[DP_STACK_MAX_FRAMES];

    for (i = 0; runner && i < th->native->nelts; i++) {
        const dp_native_frame *f = &APR_ARRAY_IDX(th->native, i, dp_native_frame);
        if (f->function && !strcmp(f->function, runner))
            runners[n++] = i;
    }
    for (i = 0; i < th->lang->nelts; i++) {
        dp_lang_frame *l = &APR_ARRAY_IDX(th->lang, i, dp_lang_frame);
        l->native_index = n == 0 ? UINT32_MAX
                        : (uint32_t)runners[l->native_index < (uint32_t)n ? (int)l->native_index : n - 1];
    }
}

static void list_threads(dp_core *core, pid_t keep_running_tid, dp_stacks *s, apr_pool_t *p)
{
    int i;

    s->threads = apr_array_make(p, 16, sizeof(dp_stack_thread));
    for (i = 0; i < dp_core_nthreads(core); i++) {
        const struct user_regs_struct *regs;
        pid_t tid = dp_core_thread(core, i, &regs);
        dp_stack_thread *th;
        if (tid <= 0)
            continue;       /* ended while it was being stopped */
        th = apr_array_push(s->threads);
        memset(th, 0, sizeof(*th));
        th->tid = tid;
        th->regs = regs;
        th->flags = tid == keep_running_tid ? DP_ST_RUNNING : 0;
        th->native = apr_array_make(p, 32, sizeof(dp_native_frame));
        th->lang = apr_array_make(p, 8, sizeof(dp_lang_frame));
    }
}


static void walk_interpreter(dp_lang_target *t, dp_core *core)
{
    t->core = core;
    if (!dp_pystack_walk(t))
        dp_phpstack_walk(t);
}

int dp_stacks_collect(pid_t pid, pid_t keep_running_tid, dp_stacks **out, apr_pool_t *p,
                      dp_error *err)
{
    dp_stacks *s = apr_pcalloc(p, sizeof(*s));
    unwind_ctx u;
    dp_core_opts o;
    dp_core *core;
    Dwfl *dwfl;
    uint64_t start = dp_mono_us(), stopped;
    apr_array_header_t **activation;
    dp_lang_target lt;
    apr_hash_t *kinds;
    int i;

    /* the objects are found and opened before the target is stopped */
    if (!(dwfl = dp_lang_report_modules(pid, err)))
        return -1;
    kinds = dp_lang_runtime_kinds(dwfl, pid, p);
    dwfl_getmodules(dwfl, warm_module, kinds, 0);
    dp_lang_target_init(&lt, dwfl, kinds, pid, s, p);
    memset(&o, 0, sizeof(o));
    o.pid = pid;
    o.keep_running_tid = keep_running_tid;
    o.stop_only = 1;
    stopped = dp_mono_us();
    if (dp_core_open(&core, &o, p, err) != 0) {
        dwfl_end(dwfl);
        return -1;
    }
    list_threads(core, keep_running_tid, s, p);
    memset(&u, 0, sizeof(u));
    u.core = core;
    u.out = s;
    clock_gettime(CLOCK_MONOTONIC, &u.deadline);
    u.deadline.tv_sec += DP_STACK_TIME_CAP_MS / 1000;
    u.deadline.tv_nsec += (DP_STACK_TIME_CAP_MS % 1000) * 1000000L;
    if (u.deadline.tv_nsec >= 1000000000L) {
        u.deadline.tv_sec++;
        u.deadline.tv_nsec -= 1000000000L;
    }
    activation = apr_pcalloc(p, sizeof(*activation) * (size_t)(s->threads->nelts + 1));
    if (dwfl_attach_state(dwfl, NULL, pid, &thread_callbacks, &u)) {
        for (i = 0; i < s->threads->nelts && !u.timed_out; i++) {
            dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
            u.activation = activation[i] = apr_array_make(p, 32, 1);
            u.cur = th;
            if (dwfl_getthread_frames(dwfl, th->tid, on_frame, &u) != 0 && th->native->nelts == 0)
                th->why = apr_pstrdup(p, dwfl_errmsg(-1));
        }
    }
    else {
        for (i = 0; i < s->threads->nelts; i++)
            APR_ARRAY_IDX(s->threads, i, dp_stack_thread).why =
                apr_psprintf(p, "libdwfl: %s", dwfl_errmsg(-1));
    }
    if (u.timed_out)
        s->flags |= DP_SS_TIME_CAP;
    if (!u.timed_out)
        walk_interpreter(&lt, core);
    dp_core_close(core);
    s->paused_us = dp_mono_us() - stopped;
    for (i = 0; i < s->threads->nelts; i++) {
        dp_stack_thread *th = &APR_ARRAY_IDX(s->threads, i, dp_stack_thread);
        if (activation[i])
            symbolize(dwfl, th, activation[i]->elts, p);
        place_lang_frames(th, s->runner);
    }
    dwfl_end(dwfl);
    s->elapsed_us = dp_mono_us() - start;
    *out = s;
    return 0;
}

void dp_stacks_add_lang_pages(dp_core *c, void *arg)
{
    pid_t pid = *(const pid_t *)arg;
    apr_pool_t *p;
    dp_stacks s;
    dp_error err = { 0 };
    Dwfl *dwfl;
    int i;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS)
        return;
    memset(&s, 0, sizeof(s));
    if ((dwfl = dp_lang_report_modules(pid, &err))) {
        dp_lang_target lt;
        list_threads(c, 0, &s, p);
        dp_lang_target_init(&lt, dwfl, dp_lang_runtime_kinds(dwfl, pid, p), pid, &s, p);
        walk_interpreter(&lt, c);
        dp_jvm_add_pages(&lt, c);
        for (i = 0; i < s.pages->nelts; i++) {
            uint64_t page = APR_ARRAY_IDX(s.pages, i, uint64_t);
            dp_core_want(c, page, page + 4096);
        }
        dwfl_end(dwfl);
    }
    apr_pool_destroy(p);
}
