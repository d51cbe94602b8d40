/* The ELF core writer (x86_64). Order of work:
 *   1. seize and interrupt every thread (re-scanning for new ones),
 *      capture registers, notes and the memory map;
 *   2. choose memory per dumpType, keep only present or swapped pages
 *      (pagemap), and lay the file out: its exact size is known before the
 *      first byte;
 *   3. stream headers, notes and memory through a 1 MiB buffer, then detach.
 * Untouched memory is never read (reading it would commit it). */

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "dump/core.h"
#include "dump/snapshot.h"
#include "proc/procfs.h"

#define PAGE 4096ULL
#define PAGE_DOWN(a) ((a) & ~(PAGE - 1))
#define PAGE_UP(a) (((a) + PAGE - 1) & ~(PAGE - 1))
#define IO_CHUNK (1u << 20)
#define STACK_CAP (64ULL << 20)
#define XSTATE_MAX 16384
#define ZERO_GAP_PAGES 16           /* absent gaps this small are written as zeros */
/* Up to about this much, the transport buffers the whole dump and the target
 * is resumed at once; beyond it the client's speed would set the pause. */
#define SNAPSHOT_MIN (4ULL << 20)
#define KEPT_STACK_MAX (1u << 20)   /* the running thread's stack kept from its stop */
#define TLS_BELOW (16ULL << 10)     /* dumpType 0x100: static TLS below fs_base... */
#define TCB_ABOVE (8ULL << 10)      /* ...and glibc's struct pthread above it */

typedef struct thread_regs {
    pid_t tid;
    int attached;
    struct user_regs_struct regs;
    struct user_fpregs_struct fp;
    int has_fp;
    size_t xstate_len;
    unsigned char *xstate;
} thread_regs;

/* Where a stretch of the core's bytes comes from. */
enum { SRC_MEM, SRC_ZERO, SRC_FILE };

/* A stretch of the address space in the file: read it from memory, from the
 * mapped file (pages of a read-only mapping the target never faulted in), or
 * write zeros. */
typedef struct segment {
    unsigned long long vaddr, len;
    int src;
    int file;                   /* SRC_FILE: index into dp_core.files */
    unsigned long long foff;    /* SRC_FILE: offset of vaddr in that file */
} segment;

/* A file some mappings are read from, opened once, kept until the end. */
typedef struct mapped_file {
    unsigned long long inode;
    unsigned dev_major, dev_minor;
    int fd;                     /* -1: could not be opened as the mapped file */
    unsigned long long size;
} mapped_file;
#define MAPPED_FILES_MAX 256

typedef struct load {
    unsigned long long vaddr, memsz, filesz, offset;
    unsigned flags;
    int first_seg, nseg;        /* segments behind filesz */
} load;

struct dp_core {
    apr_pool_t *pool;
    pid_t pid;
    pid_t mem_pid;                  /* where memory is read: pid, or its snapshot */
    dp_snapshot snap;
    dp_core_opts opts;
    dp_stat st;
    apr_array_header_t *threads;    /* thread_regs */
    apr_array_header_t *maps;       /* dp_map */
    apr_array_header_t *segs;       /* segment */
    apr_array_header_t *loads;      /* load */
    apr_array_header_t *files;      /* mapped_file */
    char *notes;
    size_t notes_len;
    unsigned long long size, data_offset;
    int memfd;
    int closed;
    /* The thread kept running goes on using its stack: the core gets the
     * stack as it was when its registers were taken, or they would not match. */
    unsigned long long kept_lo, kept_hi;
    char *kept_stack;
    unsigned long long env_lo, env_hi;     /* zero-filled when hide_environment */
    apr_array_header_t *want_now;   /* ranges being chosen, during add_memory */
};

/* ------------------------------------------------------------ ptrace */

static thread_regs *find_thread(dp_core *c, pid_t tid)
{
    int i;
    for (i = 0; i < c->threads->nelts; i++)
        if (APR_ARRAY_IDX(c->threads, i, thread_regs).tid == tid)
            return &APR_ARRAY_IDX(c->threads, i, thread_regs);
    return NULL;
}

static void detach_all(dp_core *c)
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
static int stop_threads(dp_core *c, dp_error *err)
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

/* ------------------------------------------------------------ memory */

static ssize_t read_proc_mem(dp_core *c, unsigned long long addr, void *buf, size_t len)
{
    if (c->memfd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)c->mem_pid);
        c->memfd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return c->memfd >= 0 ? pread(c->memfd, buf, len, (off_t)addr) : -1;
}

/* The target is read with process_vm_readv. A snapshot is read through
 * /proc/PID/mem: process_vm_readv pins pages, and pinning a page shared with
 * the target makes the kernel copy it. What a snapshot lacks (MADV_DONTFORK
 * mappings) comes from the live target. */
static ssize_t read_live(dp_core *c, unsigned long long addr, void *buf, size_t len)
{
    struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
    int snapshot = c->mem_pid != c->pid;

    if ((!snapshot && process_vm_readv(c->pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
        || read_proc_mem(c, addr, buf, len) == (ssize_t)len
        || (snapshot && process_vm_readv(c->pid, &local, 1, &remote, 1, 0) == (ssize_t)len))
        return (ssize_t)len;
    return -1;
}

static ssize_t read_mem(dp_core *c, unsigned long long addr, void *buf, size_t len)
{
    unsigned long long lo = addr > c->kept_lo ? addr : c->kept_lo;
    unsigned long long hi = addr + len < c->kept_hi ? addr + len : c->kept_hi;

    if (read_live(c, addr, buf, len) != (ssize_t)len)
        return -1;
    if (lo < hi)
        memcpy((char *)buf + (lo - addr), c->kept_stack + (lo - c->kept_lo), (size_t)(hi - lo));
    lo = addr > c->env_lo ? addr : c->env_lo;
    hi = addr + len < c->env_hi ? addr + len : c->env_hi;
    if (lo < hi)
        memset((char *)buf + (lo - addr), 0, (size_t)(hi - lo));
    return (ssize_t)len;
}

static int read_word(dp_core *c, unsigned long long addr, unsigned long long *out)
{
    return read_mem(c, addr, out, 8) == 8 ? 0 : -1;
}

typedef struct range {
    unsigned long long start, end;
} range;

static void want(apr_array_header_t *want, unsigned long long start, unsigned long long end)
{
    range *r;
    if (end <= start)
        return;
    r = apr_array_push(want);
    r->start = PAGE_DOWN(start);
    r->end = PAGE_UP(end);
}

/* maps come sorted by address: a binary search, since 0x40 asks for every
 * word of every stack. */
static const dp_map *map_of(dp_core *c, unsigned long long addr)
{
    int lo = 0, hi = c->maps->nelts - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const dp_map *m = &APR_ARRAY_IDX(c->maps, mid, dp_map);
        if (addr < m->start)
            hi = mid - 1;
        else if (addr >= m->end)
            lo = mid + 1;
        else
            return m;
    }
    return NULL;
}

/* The dynamic linker's view: the exe's .dynamic, r_debug, every link_map
 * and its name. Debuggers walk exactly this to find shared libraries. */
static void want_link_maps(dp_core *c, const char *auxv, size_t auxv_len, apr_array_header_t *w)
{
    const Elf64_auxv_t *a = (const Elf64_auxv_t *)auxv;
    unsigned long long phdr = 0, phnum = 0, bias = 0, dyn = 0, rdebug = 0, lm;
    size_t i, n = auxv_len / sizeof(*a);
    int guard;

    for (i = 0; i < n; i++) {
        if (a[i].a_type == AT_PHDR)
            phdr = a[i].a_un.a_val;
        else if (a[i].a_type == AT_PHNUM)
            phnum = a[i].a_un.a_val;
    }
    for (i = 0; phdr && i < phnum && i < 64; i++) {
        Elf64_Phdr ph;
        if (read_mem(c, phdr + i * sizeof(ph), &ph, sizeof(ph)) != sizeof(ph))
            return;
        if (ph.p_type == PT_PHDR)
            bias = phdr - ph.p_vaddr;
        else if (ph.p_type == PT_DYNAMIC)
            dyn = ph.p_vaddr;
    }
    if (!dyn)
        return;
    dyn += bias;
    want(w, phdr, phdr + phnum * sizeof(Elf64_Phdr));
    for (i = 0; i < 512; i++) {
        Elf64_Dyn d;
        if (read_mem(c, dyn + i * sizeof(d), &d, sizeof(d)) != sizeof(d) || d.d_tag == DT_NULL)
            break;
        if (d.d_tag == DT_DEBUG)
            rdebug = d.d_un.d_ptr;
    }
    want(w, dyn, dyn + (i + 1) * sizeof(Elf64_Dyn));
    if (!rdebug)
        return;
    want(w, rdebug, rdebug + sizeof(struct r_debug));
    if (read_word(c, rdebug + offsetof(struct r_debug, r_map), &lm) != 0)
        return;
    for (guard = 0; lm && guard < 4096; guard++) {
        struct link_map l;
        char name[512];
        if (read_mem(c, lm, &l, sizeof(l)) != sizeof(l))
            break;
        want(w, lm, lm + 2 * PAGE);            /* the public part and rtld's own fields */
        if (l.l_name) {
            ssize_t k = read_mem(c, (unsigned long long)(uintptr_t)l.l_name, name, 1);
            if (k == 1)
                want(w, (uintptr_t)l.l_name, (uintptr_t)l.l_name + sizeof(name));
        }
        if (l.l_ld)
            want(w, (uintptr_t)l.l_ld, (uintptr_t)l.l_ld + 64 * sizeof(Elf64_Dyn));
        lm = (unsigned long long)(uintptr_t)l.l_next;
    }
}

static int is_special(const dp_map *m)
{
    return !strcmp(m->path, "[vvar]") || !strcmp(m->path, "[vvar_vclock]")
           || !strcmp(m->path, "[vsyscall]");
}

/* Mappings that must never be read: device memory (io) and MADV_DONTDUMP (dd). */
static apr_array_header_t *unreadable_starts(dp_core *c)
{
    apr_array_header_t *out = apr_array_make(c->pool, 8, sizeof(unsigned long long));
    char path[64], line[512];
    unsigned long long cur = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)c->pid);
    f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long s, e;
        if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
            cur = s;
        else if (!strncmp(line, "VmFlags:", 8) && (strstr(line, " dd") || strstr(line, " io")))
            *(unsigned long long *)apr_array_push(out) = cur;
    }
    if (f)
        fclose(f);
    return out;
}

static int in_list(const apr_array_header_t *a, unsigned long long v)
{
    int i;
    for (i = 0; i < a->nelts; i++)
        if (APR_ARRAY_IDX(a, i, unsigned long long) == v)
            return 1;
    return 0;
}

/* The stretch of a thread's stack every dump holds: from below the red zone
 * to the end of its mapping, capped. */
static int stack_range(dp_core *c, const thread_regs *th, range *out)
{
    unsigned long long sp = th->regs.rsp - 128;
    const dp_map *m = th->tid > 0 ? map_of(c, sp) : NULL;
    if (!m)
        return -1;
    out->start = sp;
    out->end = m->end - sp > STACK_CAP ? sp + STACK_CAP : m->end;
    return 0;
}

/* MiniDumpWithIndirectlyReferencedMemory, as Breakpad and Windows do it: each
 * value in a thread's registers and on its stack that points into readable
 * data brings the memory around it, so a minimal core shows the objects the
 * stuck frames were working on. Pointers into code or read-only files (the
 * debugger has the files, and such a mapping may only be whole in a core),
 * into the stacks (already there) or nowhere bring nothing. Bounded: DP_INDIRECT_MAX in all. Each
 * thread first gets an equal share, registers then its stack from the top
 * (where the stuck frames are), so one stack full of pointers cannot take
 * the whole budget; what is left goes on in thread order. Only present
 * stack pages are scanned, at most DP_INDIRECT_SCAN_MAX of each. */
typedef struct referenced {
    dp_core *c;
    apr_array_header_t *w;
    const apr_array_header_t *never;
    const range *stacks;
    int nstacks;
    apr_hash_t *seen;
    unsigned long long pages_left;  /* in all */
    unsigned long long quota;       /* for the thread being scanned */
} referenced;

#define REF_BEFORE 256ULL           /* around each pointer, as Breakpad takes */
#define REF_AFTER 1024ULL
#define REF_SHARE_MIN 16ULL         /* pages each thread may take first */

static int in_list(const apr_array_header_t *a, unsigned long long v);
static int is_special(const dp_map *m);

/* A short gap between two taken stretches is written as zeros (see
 * lay_out_mapping): it counts against the budget too. */
static unsigned long long zero_fill_between(referenced *rf, unsigned long long lo,
                                            unsigned long long hi)
{
    unsigned long long fill = 0, d, pg;

    for (d = 1; d <= ZERO_GAP_PAGES && lo >= d * PAGE; d++) {
        pg = lo - d * PAGE;
        if (apr_hash_get(rf->seen, &pg, sizeof(pg))) {
            fill += d - 1;
            break;
        }
    }
    for (d = 0; d < ZERO_GAP_PAGES; d++) {
        pg = hi + d * PAGE;
        if (apr_hash_get(rf->seen, &pg, sizeof(pg))) {
            fill += d;
            break;
        }
    }
    return fill;
}

/* 1 when v wants more pages than the quota has left: the caller stops there
 * (and goes on from v when the quota is renewed) rather than scan past it. */
static int take_referenced(referenced *rf, unsigned long long v)
{
    const dp_map *m;
    unsigned long long lo, hi, pg, n = 0;
    int i;

    if (v < PAGE || v >= (1ULL << 47))
        return 0;
    for (i = 0; i < rf->nstacks; i++)
        if (v >= rf->stacks[i].start && v < rf->stacks[i].end)
            return 0;
    m = map_of(rf->c, v);
    if (!m || m->perms[0] != 'r' || m->perms[2] == 'x' || is_special(m)
        || in_list(rf->never, m->start) || (m->path[0] == '/' && m->perms[1] != 'w'))
        return 0;
    lo = PAGE_DOWN(v - m->start < REF_BEFORE ? m->start : v - REF_BEFORE);
    hi = PAGE_UP(m->end - v < REF_AFTER ? m->end : v + REF_AFTER);
    for (pg = lo; pg < hi; pg += PAGE)
        n += apr_hash_get(rf->seen, &pg, sizeof(pg)) == NULL;
    if (!n)
        return 0;
    n += zero_fill_between(rf, lo, hi);
    if (n > rf->quota || n > rf->pages_left)
        return 1;
    for (pg = lo; pg < hi; pg += PAGE) {
        unsigned long long *key = apr_palloc(rf->c->pool, sizeof(*key));
        *key = pg;
        apr_hash_set(rf->seen, key, sizeof(*key), key);
    }
    rf->pages_left -= n;
    rf->quota -= n;
    want(rf->w, lo, hi);
    return 0;
}

/* Scans one stack from *pos while the quota lasts; *pos is where it stopped.
 * A value that does not fit a thread's share ends its first turn there; one
 * that does not fit what is left in all is skipped (nothing ever will fit it). */
static void scan_stack(referenced *rf, int pagemap, const range *st, unsigned long long *pos,
                       unsigned long long *buf)
{
    unsigned long long end = st->end - st->start > DP_INDIRECT_SCAN_MAX
                             ? st->start + DP_INDIRECT_SCAN_MAX : st->end;

    while (*pos < end && rf->quota) {
        unsigned long long page = PAGE_DOWN(*pos);
        uint64_t e = 0;
        if (pagemap < 0 || pread(pagemap, &e, 8, (off_t)(page / PAGE * 8)) != 8 || !(e >> 62)
            || read_mem(rf->c, page, buf, PAGE) != (ssize_t)PAGE) {
            *pos = page + PAGE;     /* never touched: nothing was stored there */
            continue;
        }
        for (; *pos < end && *pos < page + PAGE && rf->quota; *pos += 8)
            if (take_referenced(rf, buf[(*pos - page) / 8]) && rf->quota < rf->pages_left)
                return;
    }
}

static void want_referenced(dp_core *c, apr_array_header_t *w, const apr_array_header_t *never)
{
    int n = c->threads->nelts, i, pagemap;
    range *stacks = apr_pcalloc(c->pool, sizeof(range) * (size_t)(n ? n : 1));
    unsigned long long *pos = apr_pcalloc(c->pool, sizeof(*pos) * (size_t)(n ? n : 1));
    referenced rf = { c, w, never, stacks, n, apr_hash_make(c->pool), DP_INDIRECT_MAX / PAGE, 0 };
    unsigned long long *buf = apr_palloc(c->pool, PAGE), share;
    char path[64];

    for (i = 0; i < n; i++) {
        if (stack_range(c, &APR_ARRAY_IDX(c->threads, i, thread_regs), &stacks[i]) != 0)
            stacks[i].start = stacks[i].end = 0;
        pos[i] = stacks[i].start & ~7ULL;
    }
    share = rf.pages_left / (unsigned long long)(n ? n : 1);
    if (share < REF_SHARE_MIN)
        share = REF_SHARE_MIN;
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->pid);
    pagemap = open(path, O_RDONLY | O_CLOEXEC);
    for (i = 0; i < n && rf.pages_left; i++) {
        const thread_regs *th = &APR_ARRAY_IDX(c->threads, i, thread_regs);
        const unsigned long long *reg = (const unsigned long long *)&th->regs;
        size_t k;
        if (th->tid <= 0)
            continue;
        rf.quota = share;
        for (k = 0; k < sizeof(th->regs) / sizeof(*reg); k++)
            take_referenced(&rf, reg[k]);
        scan_stack(&rf, pagemap, &stacks[i], &pos[i], buf);
    }
    for (i = 0; i < n && rf.pages_left; i++) {
        rf.quota = rf.pages_left;
        if (APR_ARRAY_IDX(c->threads, i, thread_regs).tid > 0)
            scan_stack(&rf, pagemap, &stacks[i], &pos[i], buf);
    }
    if (pagemap >= 0)
        close(pagemap);
}

/* Each thread's thread control block and the static TLS below it (x86_64
 * puts them at fs_base): Linux's counterpart of the TEB. */
static void want_thread_data(dp_core *c, apr_array_header_t *w)
{
    int i;
    for (i = 0; i < c->threads->nelts; i++) {
        const thread_regs *th = &APR_ARRAY_IDX(c->threads, i, thread_regs);
        unsigned long long fs = th->regs.fs_base;
        const dp_map *m = th->tid > 0 && fs ? map_of(c, fs) : NULL;
        if (m && m->perms[0] == 'r')
            want(w, fs - m->start < TLS_BELOW ? m->start : fs - TLS_BELOW,
                 m->end - fs < TCB_ABOVE ? m->end : fs + TCB_ABOVE);
    }
}

/* What dumpType asks for, as page ranges. */
static apr_array_header_t *choose_memory(dp_core *c, const char *auxv, size_t auxv_len)
{
    apr_array_header_t *w = apr_array_make(c->pool, 64, sizeof(range));
    unsigned long t = c->opts.dump_type;
    apr_array_header_t *never = unreadable_starts(c);
    int i;

    for (i = 0; i < c->threads->nelts; i++) {
        range st;
        if (stack_range(c, &APR_ARRAY_IDX(c->threads, i, thread_regs), &st) == 0)
            want(w, st.start, st.end);
    }
    want_link_maps(c, auxv, auxv_len, w);
    if (t & DP_DUMP_INDIRECT_MEMORY)
        want_referenced(c, w, never);
    if (t & DP_DUMP_PROCESS_THREAD_DATA)
        want_thread_data(c, w);
    for (i = 0; i < c->maps->nelts; i++) {
        const dp_map *m = &APR_ARRAY_IDX(c->maps, i, dp_map);
        const dp_map *prev = i > 0 ? &APR_ARRAY_IDX(c->maps, i - 1, dp_map) : NULL;
        int file = m->path[0] == '/';
        /* an object's .bss beyond its last file page: the anonymous mapping
           right after its writable one */
        int bss = !m->path[0] && !m->inode && m->perms[1] == 'w' && prev
                  && prev->path[0] == '/' && prev->perms[1] == 'w' && prev->end == m->start;
        if (m->perms[0] != 'r' || is_special(m) || in_list(never, m->start))
            continue;
        if (!strcmp(m->path, "[vdso]"))
            want(w, m->start, m->end);
        else if (file && m->offset == 0)
            want(w, m->start, m->start + PAGE);       /* ELF header, phdrs, build id */
        if ((t & DP_DUMP_FULL_MEMORY)
            || ((t & DP_DUMP_DATA_SEGS) && ((file && m->perms[1] == 'w') || bss))
            || ((t & DP_DUMP_PRIVATE_RW_MEMORY) && !file && m->perms[1] == 'w'
                && m->perms[3] == 'p')
            || ((t & DP_DUMP_CODE_SEGS) && file && m->perms[2] == 'x')
            || ((t & DP_DUMP_PRIVATE_WRITE_COPY) && file && m->perms[1] == 'w'
                && m->perms[3] == 'p'))
            want(w, m->start, m->end);
    }
    if (c->opts.add_memory) {
        c->want_now = w;
        c->opts.add_memory(c, c->opts.add_memory_arg);
        c->want_now = NULL;
    }
    return w;
}

static int by_start(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorted, without overlaps: pages are then matched with one moving cursor. */
static void sort_ranges(apr_array_header_t *w)
{
    range *r = (range *)w->elts;
    int i, out = 0;

    if (!w->nelts)
        return;
    qsort(r, (size_t)w->nelts, sizeof(*r), by_start);
    for (i = 1; i < w->nelts; i++) {
        if (r[i].start <= r[out].end) {
            if (r[i].end > r[out].end)
                r[out].end = r[i].end;
        }
        else
            r[++out] = r[i];
    }
    w->nelts = out + 1;
}

/* Is page `addr` wanted? Addresses only grow, so the cursor only moves on. */
static int wanted(const apr_array_header_t *w, int *cursor, unsigned long long addr)
{
    const range *r = (const range *)w->elts;
    while (*cursor < w->nelts && r[*cursor].end <= addr)
        (*cursor)++;
    return *cursor < w->nelts && r[*cursor].start <= addr;
}

/* Extends the load's last segment when the new one continues it. */
static void add_segment(dp_core *c, load *l, unsigned long long vaddr, unsigned long long len,
                        int src, int file, unsigned long long foff)
{
    segment *s = l->nseg ? &APR_ARRAY_IDX(c->segs, c->segs->nelts - 1, segment) : NULL;

    l->filesz += len;
    if (s && s->src == src && s->vaddr + s->len == vaddr
        && (src != SRC_FILE || (s->file == file && s->foff + s->len == foff))) {
        s->len += len;
        return;
    }
    s = apr_array_push(c->segs);
    s->vaddr = vaddr;
    s->len = len;
    s->src = src;
    s->file = file;
    s->foff = foff;
    if (!l->nseg)
        l->first_seg = c->segs->nelts - 1;
    l->nseg++;
}

static unsigned phdr_flags(const dp_map *m)
{
    return (m->perms[0] == 'r' ? PF_R : 0) | (m->perms[1] == 'w' ? PF_W : 0)
           | (m->perms[2] == 'x' ? PF_X : 0);
}

/* A page of memory the target has (bit 63) or swapped out (bit 62). */
#define PM_HELD(e) ((e) >> 62)
/* Present and not a page of the file (bit 61 clear): the target's own copy. */
#define PM_COPY(e) (((e) >> 63) && !(((e) >> 61) & 1))

static int read_pagemap(int pagemap, unsigned long long addr, uint64_t *entries, size_t n)
{
    if (pagemap < 0 || pread(pagemap, entries, n * 8, (off_t)(addr / PAGE * 8)) != (ssize_t)(n * 8)) {
        memset(entries, 0, n * 8);      /* unknown: treat as absent, never read */
        return -1;
    }
    return 0;
}

/* A read-only file-backed mapping: the one kind jhsdb's core reader accepts
 * only whole, as its first page, or not at all (it checks them against the
 * library's own segments). Device mappings never get here (see
 * unreadable_starts). */
static int read_only_file(const dp_map *m)
{
    return m->path[0] == '/' && m->perms[1] != 'w' && m->inode != 0;
}

/* The file behind mapping m, opened once per file: map_files (the mapped
 * file itself, even deleted), else the path in the target's root when it is
 * still that file. Only regular files: opening anything else could act. */
static int mapped_file_of(dp_core *c, const dp_map *m)
{
    char path[PATH_MAX + 64];
    mapped_file *f;
    struct stat st;
    int i, fd = -1, k;

    for (i = 0; i < c->files->nelts; i++) {
        f = &APR_ARRAY_IDX(c->files, i, mapped_file);
        if (f->inode == m->inode && f->dev_major == m->dev_major && f->dev_minor == m->dev_minor)
            return f->fd >= 0 ? i : -1;
    }
    if (c->files->nelts >= MAPPED_FILES_MAX)
        return -1;
    for (k = 0; k < 2 && fd < 0; k++) {
        if (k == 0)
            snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)c->pid,
                     m->start, m->end);
        else if (!strstr(m->path, " (deleted)"))
            snprintf(path, sizeof(path), "/proc/%d/root%s", (int)c->pid, m->path);
        else
            break;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != m->inode
            || major(st.st_dev) != m->dev_major || minor(st.st_dev) != m->dev_minor)
            continue;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != m->inode
                        || major(st.st_dev) != m->dev_major || minor(st.st_dev) != m->dev_minor)) {
            close(fd);
            fd = -1;
        }
    }
    f = apr_array_push(c->files);
    f->inode = m->inode;
    f->dev_major = m->dev_major;
    f->dev_minor = m->dev_minor;
    f->fd = fd;
    f->size = fd >= 0 ? (unsigned long long)st.st_size : 0;
    return fd >= 0 ? c->files->nelts - 1 : -1;
}

/* A read-only file-backed mapping goes into the core whole, as its first
 * page, or not at all. Whole when a page beyond the first is wanted (or,
 * with dumpType 0x1, when the target has copied pages of it: RELRO's .got
 * and .data.rel.ro); its first page when only that is wanted. Pages the
 * target holds come from its memory, the others from the file itself, so
 * nothing is faulted into the target. Without the file, whole falls back to
 * the first page, and a first page that is not in memory to nothing. */
static void lay_out_file_mapping(dp_core *c, const dp_map *m, const apr_array_header_t *w,
                                 int *cursor, int pagemap)
{
    unsigned long long addr, end, npages = (m->end - m->start) / PAGE, held = 0;
    int first_wanted = 0, other_wanted = 0, copied = 0, first_held = 0, file = -1, probe = *cursor;
    uint64_t entries[512];
    load cur;

    for (addr = m->start; addr < m->end; ) {
        size_t k, n = (size_t)((m->end - addr) / PAGE);
        if (n > 512)
            n = 512;
        read_pagemap(pagemap, addr, entries, n);
        for (k = 0; k < n; k++, addr += PAGE) {
            int wnt = wanted(w, &probe, addr);
            if (addr == m->start) {
                first_wanted = wnt;
                first_held = PM_HELD(entries[k]) != 0;
            }
            else
                other_wanted |= wnt;
            copied |= PM_COPY(entries[k]) != 0;
            held += PM_HELD(entries[k]) != 0;
        }
    }
    while (*cursor < w->nelts && ((const range *)w->elts)[*cursor].end <= m->end)
        (*cursor)++;
    end = other_wanted || (copied && (c->opts.dump_type & DP_DUMP_DATA_SEGS)) ? m->end
          : first_wanted ? m->start + PAGE : m->start;
    if (end == m->start)
        return;
    if ((end == m->end ? held < npages : !first_held) && (file = mapped_file_of(c, m)) < 0) {
        if (!first_held)
            return;
        end = m->start + PAGE;
    }
    memset(&cur, 0, sizeof(cur));
    cur.vaddr = m->start;
    cur.memsz = end - m->start;
    cur.flags = phdr_flags(m);
    for (addr = m->start; addr < end; ) {
        size_t k, n = (size_t)((end - addr) / PAGE);
        if (n > 512)
            n = 512;
        read_pagemap(pagemap, addr, entries, n);
        for (k = 0; k < n; k++, addr += PAGE) {
            unsigned long long foff = m->offset + (addr - m->start);
            /* (reclaim may have dropped a page since the count: then the file) */
            if (PM_HELD(entries[k]) || (file < 0 && (file = mapped_file_of(c, m)) < 0))
                add_segment(c, &cur, addr, PAGE, SRC_MEM, 0, 0);
            else if (foff < APR_ARRAY_IDX(c->files, file, mapped_file).size)
                add_segment(c, &cur, addr, PAGE, SRC_FILE, file, foff);
            else
                goto past_eof;              /* the rest is beyond the file: memsz only */
        }
    }
past_eof:
    *(load *)apr_array_push(c->loads) = cur;
}

/* One mapping into PT_LOADs: runs of wanted, present (or swapped) pages;
 * short absent gaps inside a run become zeros, longer ones end the run. */
static void lay_out_mapping(dp_core *c, const dp_map *m, const apr_array_header_t *w,
                            int *cursor, int pagemap)
{
    unsigned long long addr = m->start, gap = 0;
    uint64_t entries[512];
    load cur;
    int in_run = 0;

    memset(&cur, 0, sizeof(cur));
    while (addr < m->end) {
        size_t k, n = (size_t)((m->end - addr) / PAGE);
        if (n > 512)
            n = 512;
        read_pagemap(pagemap, addr, entries, n);
        for (k = 0; k < n; k++, addr += PAGE) {
            int take = (entries[k] >> 62) && wanted(w, cursor, addr);
            if (take) {
                if (!in_run) {
                    memset(&cur, 0, sizeof(cur));
                    cur.vaddr = addr;
                    cur.flags = phdr_flags(m);
                    in_run = 1;
                }
                else if (gap)
                    add_segment(c, &cur, addr - gap * PAGE, gap * PAGE, SRC_ZERO, 0, 0);
                gap = 0;
                add_segment(c, &cur, addr, PAGE, SRC_MEM, 0, 0);
            }
            else if (in_run && ++gap > ZERO_GAP_PAGES) {
                cur.memsz = cur.filesz;
                *(load *)apr_array_push(c->loads) = cur;
                in_run = 0;
                gap = 0;
            }
        }
    }
    if (in_run) {
        cur.memsz = cur.filesz;
        *(load *)apr_array_push(c->loads) = cur;
    }
}

/* ------------------------------------------------------------ notes */

typedef struct nbuf {
    apr_pool_t *pool;
    char *p;
    size_t len, cap;
} nbuf;

static void append(nbuf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        char *np;
        b->cap = (b->len + n) * 2 + 4096;
        np = apr_palloc(b->pool, b->cap);
        if (b->len)
            memcpy(np, b->p, b->len);
        b->p = np;
    }
    if (data)
        memcpy(b->p + b->len, data, n);
    else
        memset(b->p + b->len, 0, n);
    b->len += n;
}

static void note(nbuf *b, const char *name, unsigned type, const void *desc, size_t len)
{
    Elf64_Nhdr h = { (Elf64_Word)(strlen(name) + 1), (Elf64_Word)len, type };
    size_t nl = (h.n_namesz + 3) & ~3U, dl = (len + 3) & ~3UL;

    append(b, &h, sizeof(h));
    append(b, name, h.n_namesz);
    append(b, NULL, nl - h.n_namesz);
    append(b, desc, len);
    append(b, NULL, dl - len);
}

static void build_notes(dp_core *c, const char *auxv, size_t auxv_len)
{
    nbuf nb = { c->pool, NULL, 0, 0 }, fb = { c->pool, NULL, 0, 0 };
    struct elf_prpsinfo ps;
    char path[64], *cmd;
    size_t cmdlen, i;
    unsigned long long count = 0, page = PAGE;
    int t;

    memset(&ps, 0, sizeof(ps));
    ps.pr_state = c->st.state == 'R' ? 0 : 1;
    ps.pr_sname = c->st.state;
    ps.pr_nice = (char)c->st.nice;
    ps.pr_flag = c->st.flags;
    ps.pr_uid = (unsigned)dp_proc_owner(c->pid);
    ps.pr_pid = c->pid;
    ps.pr_ppid = c->st.ppid;
    ps.pr_pgrp = c->st.pgrp;
    ps.pr_sid = c->st.session;
    apr_cpystrn(ps.pr_fname, c->st.comm, sizeof(ps.pr_fname));
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)c->pid);
    if (dp_read_file(path, &cmd, &cmdlen, c->pool) == 0) {
        /* a process that rewrote its argv area without a final NUL gets its
         * environment appended by the kernel: keep to argv's own bytes */
        if (c->opts.hide_environment && c->st.arg_end > c->st.arg_start
            && cmdlen > c->st.arg_end - c->st.arg_start)
            cmdlen = (size_t)(c->st.arg_end - c->st.arg_start);
        for (i = 0; i < cmdlen && i < sizeof(ps.pr_psargs) - 1; i++)
            ps.pr_psargs[i] = cmd[i] ? cmd[i] : ' ';
    }
    note(&nb, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
    for (t = 0; t < c->threads->nelts; t++) {
        const thread_regs *th = &APR_ARRAY_IDX(c->threads, t, thread_regs);
        struct elf_prstatus pr;
        if (th->tid <= 0)
            continue;
        memset(&pr, 0, sizeof(pr));
        pr.pr_pid = th->tid;
        pr.pr_ppid = c->st.ppid;
        pr.pr_pgrp = c->st.pgrp;
        pr.pr_sid = c->st.session;
        memcpy(&pr.pr_reg, &th->regs, sizeof(th->regs));
        note(&nb, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
        if (th->has_fp)
            note(&nb, "CORE", NT_PRFPREG, &th->fp, sizeof(th->fp));
        if (th->xstate_len)
            note(&nb, "LINUX", NT_X86_XSTATE, th->xstate, th->xstate_len);
    }
    note(&nb, "CORE", NT_AUXV, auxv, auxv_len);
    /* NT_FILE: count, page size, (start, end, offset in pages)..., names */
    for (t = 0; t < c->maps->nelts; t++)
        count += APR_ARRAY_IDX(c->maps, t, dp_map).path[0] == '/';
    append(&fb, &count, 8);
    append(&fb, &page, 8);
    for (t = 0; t < c->maps->nelts; t++) {
        const dp_map *m = &APR_ARRAY_IDX(c->maps, t, dp_map);
        unsigned long long tri[3] = { m->start, m->end, m->offset / PAGE };
        if (m->path[0] == '/')
            append(&fb, tri, sizeof(tri));
    }
    for (t = 0; t < c->maps->nelts; t++) {
        const dp_map *m = &APR_ARRAY_IDX(c->maps, t, dp_map);
        if (m->path[0] == '/')
            append(&fb, m->path, strlen(m->path) + 1);
    }
    note(&nb, "CORE", NT_FILE, fb.p, fb.len);
    c->notes = nb.p;
    c->notes_len = nb.len;
}

/* ------------------------------------------------------------ layout */

static void lay_out(dp_core *c, apr_array_header_t *w)
{
    char path[64];
    unsigned long long off;
    int pagemap, i, nph, cursor = 0;

    sort_ranges(w);
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->pid);
    pagemap = open(path, O_RDONLY | O_CLOEXEC);
    for (i = 0; i < c->maps->nelts; i++) {
        const dp_map *m = &APR_ARRAY_IDX(c->maps, i, dp_map);
        if (m->perms[0] != 'r' || is_special(m))
            continue;
        if (read_only_file(m))
            lay_out_file_mapping(c, m, w, &cursor, pagemap);
        else
            lay_out_mapping(c, m, w, &cursor, pagemap);
    }
    if (pagemap >= 0)
        close(pagemap);
    nph = 1 + c->loads->nelts;
    off = sizeof(Elf64_Ehdr) + (unsigned long long)nph * sizeof(Elf64_Phdr)
          + (nph >= PN_XNUM ? sizeof(Elf64_Shdr) : 0);
    off += c->notes_len;
    c->data_offset = PAGE_UP(off);
    off = c->data_offset;
    for (i = 0; i < c->loads->nelts; i++) {
        load *l = &APR_ARRAY_IDX(c->loads, i, load);
        l->offset = off;
        off += l->filesz;
    }
    c->size = off;
}

/* ------------------------------------------------------------ API */

/* A large dump reads a copy-on-write copy, and the target runs on at once. */
static void take_snapshot(dp_core *c)
{
    int i;

    if (c->size - c->data_offset < SNAPSHOT_MIN || dp_snapshot_refused(c->pid))
        return;
    for (i = 0; i < c->threads->nelts; i++) {
        const thread_regs *t = &APR_ARRAY_IDX(c->threads, i, thread_regs);
        if (t->attached) {
            if (dp_snapshot_take(c->pid, t->tid, &c->snap) == 0) {
                c->mem_pid = c->snap.pid;
                if (c->memfd >= 0)
                    close(c->memfd);        /* the target's; reopened for the copy */
                c->memfd = -1;
                detach_all(c);
            }
            return;
        }
    }
}

static apr_status_t core_cleanup(void *data)
{
    dp_core_close(data);
    return APR_SUCCESS;
}

int dp_core_open(dp_core **out, const dp_core_opts *opts, apr_pool_t *p, dp_error *err)
{
    dp_core *c = apr_pcalloc(p, sizeof(*c));
    char path[64], *buf, *auxv;
    size_t len, auxv_len;

    if (opts->dump_type & ~DP_DUMP_SUPPORTED)
        return dp_fail(err, 400, "dumpType 0x%lx has unsupported bits.", opts->dump_type);
    c->pool = p;
    c->pid = c->mem_pid = opts->pid;
    c->opts = *opts;
    c->memfd = -1;
    c->threads = apr_array_make(p, 16, sizeof(thread_regs));
    c->segs = apr_array_make(p, 256, sizeof(segment));
    c->loads = apr_array_make(p, 64, sizeof(load));
    c->files = apr_array_make(p, 16, sizeof(mapped_file));
    if (dp_read_stat(c->pid, 0, &c->st, err) != 0)
        return -1;
    if (c->st.state == 'Z' || c->st.state == 'X')
        return dp_fail(err, 409, "Process %d is a zombie: nothing is left to dump.", (int)c->pid);
    if (c->st.flags & DP_PF_KTHREAD)
        return dp_fail(err, 409, "Process %d is a kernel thread: it has no user memory.",
                       (int)c->pid);
    if (opts->hide_environment) {
        /* fail closed: a block we cannot locate cannot be hidden */
        if (c->st.env_end <= c->st.env_start)
            return dp_fail(err, 403, "The environment of process %d cannot be located, so it "
                           "cannot be left out of the dump.", (int)c->pid);
        c->env_lo = c->st.env_start;
        c->env_hi = c->st.env_end;
    }
    apr_pool_cleanup_register(p, c, core_cleanup, apr_pool_cleanup_null);
    if (stop_threads(c, err) != 0) {
        dp_core_close(c);
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)c->pid);
    if (dp_read_file(path, &buf, &len, p) != 0) {
        dp_core_close(c);
        return dp_fail(err, 409, "Process %d exited while it was being dumped.", (int)c->pid);
    }
    c->maps = dp_parse_maps(buf, len, p);
    if (opts->stop_only) {
        *out = c;
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/auxv", (int)c->pid);
    if (dp_read_file(path, &auxv, &auxv_len, p) != 0)
        auxv_len = 0;
    build_notes(c, auxv, auxv_len);
    lay_out(c, choose_memory(c, auxv, auxv_len));
    if (opts->max_bytes && c->size > opts->max_bytes) {
        dp_core_close(c);
        return dp_fail(err, 409, "The core would be %llu bytes, more than DiagProcMaxDumpSize "
                       "(%llu); ask for a smaller dumpType.", c->size, opts->max_bytes);
    }
    if (opts->snapshot)
        take_snapshot(c);
    *out = c;
    return 0;
}

unsigned long long dp_core_size(const dp_core *c)
{
    return c->size;
}

/* n bytes of a file segment from address a; what the file no longer has
 * (truncated since) is zeros, as the target would fault on it. */
static void read_file_pages(dp_core *c, const segment *s, unsigned long long a, char *buf, size_t n)
{
    int fd = APR_ARRAY_IDX(c->files, s->file, mapped_file).fd;
    size_t got = 0;

    while (got < n) {
        ssize_t k = pread(fd, buf + got, n - got, (off_t)(s->foff + (a - s->vaddr) + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    memset(buf + got, 0, n - got);
}

static int put(dp_sink *sink, unsigned long long *written, const void *buf, size_t len)
{
    *written += len;
    return dp_sink_write(sink, buf, len);
}

int dp_core_write(dp_core *c, dp_sink *sink, dp_error *err)
{
    unsigned long long written = 0;
    int nph = 1 + c->loads->nelts, i, j;
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    char *io = apr_palloc(c->pool, IO_CHUNK);

    memset(&eh, 0, sizeof(eh));
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_CORE;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = nph >= PN_XNUM ? PN_XNUM : (Elf64_Half)nph;
    if (nph >= PN_XNUM) {
        /* more than 65534 segments: the real count lives in section 0 */
        eh.e_shoff = sizeof(eh) + (unsigned long long)nph * sizeof(Elf64_Phdr);
        eh.e_shentsize = sizeof(Elf64_Shdr);
        eh.e_shnum = 1;
    }
    if (put(sink, &written, &eh, sizeof(eh)) != 0)
        goto gone;
    memset(&ph, 0, sizeof(ph));
    ph.p_type = PT_NOTE;
    ph.p_offset = sizeof(eh) + (unsigned long long)nph * sizeof(Elf64_Phdr)
                  + (nph >= PN_XNUM ? sizeof(Elf64_Shdr) : 0);
    ph.p_filesz = c->notes_len;
    ph.p_align = 4;
    if (put(sink, &written, &ph, sizeof(ph)) != 0)
        goto gone;
    for (i = 0; i < c->loads->nelts; i++) {
        const load *l = &APR_ARRAY_IDX(c->loads, i, load);
        memset(&ph, 0, sizeof(ph));
        ph.p_type = PT_LOAD;
        ph.p_offset = l->offset;
        ph.p_vaddr = l->vaddr;
        ph.p_filesz = l->filesz;
        ph.p_memsz = l->memsz;
        ph.p_flags = l->flags;
        ph.p_align = PAGE;
        if (put(sink, &written, &ph, sizeof(ph)) != 0)
            goto gone;
    }
    if (nph >= PN_XNUM) {
        Elf64_Shdr sh;
        memset(&sh, 0, sizeof(sh));
        sh.sh_info = (Elf64_Word)nph;
        if (put(sink, &written, &sh, sizeof(sh)) != 0)
            goto gone;
    }
    if (put(sink, &written, c->notes, c->notes_len) != 0)
        goto gone;
    memset(io, 0, IO_CHUNK);
    if (put(sink, &written, io, (size_t)(c->data_offset - written)) != 0)
        goto gone;
    for (i = 0; i < c->loads->nelts; i++) {
        const load *l = &APR_ARRAY_IDX(c->loads, i, load);
        for (j = 0; j < l->nseg; j++) {
            const segment *s = &APR_ARRAY_IDX(c->segs, l->first_seg + j, segment);
            unsigned long long a = s->vaddr, end = s->vaddr + s->len;
            while (a < end) {
                size_t n = end - a < IO_CHUNK ? (size_t)(end - a) : IO_CHUNK;
                if (s->src == SRC_FILE)
                    read_file_pages(c, s, a, io, n);
                else if (s->src == SRC_ZERO || read_mem(c, a, io, n) != (ssize_t)n) {
                    /* page by page, so one bad page costs only itself */
                    size_t k;
                    dp_stat now;
                    if (s->src == SRC_MEM && (dp_read_stat(c->mem_pid, 0, &now, NULL) != 0
                                     || now.state == 'Z' || now.state == 'X'))
                        goto vanished;  /* zeros now would make a dump that looks whole */
                    for (k = 0; k < n; k += PAGE)
                        if (s->src == SRC_ZERO || read_mem(c, a + k, io + k, PAGE) != (ssize_t)PAGE)
                            memset(io + k, 0, PAGE);
                }
                if (written + n == c->size)
                    dp_core_close(c);   /* the last read: resume before the client has it all */
                if (put(sink, &written, io, n) != 0)
                    goto gone;
                a += n;
            }
        }
    }
    dp_core_close(c);       /* resume as soon as the last byte is read */
    return 0;
vanished:
    dp_core_close(c);
    return dp_fail(err, 409, "Process %d exited while it was being dumped.", (int)c->pid);
gone:
    dp_core_close(c);
    return dp_fail(err, 500, "The dump of process %d was not completed: its reader went away.",
                   (int)c->pid);
}

int dp_core_nthreads(const dp_core *c)
{
    return c->threads->nelts;
}

pid_t dp_core_thread(const dp_core *c, int i, const struct user_regs_struct **regs)
{
    const thread_regs *t = &APR_ARRAY_IDX(c->threads, i, thread_regs);
    *regs = &t->regs;
    return t->tid;
}

int dp_core_read(dp_core *c, unsigned long long addr, void *buf, size_t len)
{
    return read_mem(c, addr, buf, len) == (ssize_t)len ? 0 : -1;
}

/* Read-only file mappings are left to the debugger, which has the file (one
 * page of them would put the whole mapping in the core). */
void dp_core_want(dp_core *c, unsigned long long start, unsigned long long end)
{
    const dp_map *m = map_of(c, start);
    if (c->want_now && m && !is_special(m) && !read_only_file(m))
        want(c->want_now, PAGE_DOWN(start), PAGE_UP(end));
}

void dp_core_close(dp_core *c)
{
    int i;

    if (!c || c->closed)
        return;
    c->closed = 1;
    detach_all(c);
    dp_snapshot_drop(c->pid, &c->snap);
    if (c->memfd >= 0)
        close(c->memfd);
    c->memfd = -1;
    for (i = 0; c->files && i < c->files->nelts; i++) {
        mapped_file *f = &APR_ARRAY_IDX(c->files, i, mapped_file);
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
    }
}
