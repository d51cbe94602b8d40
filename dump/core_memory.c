/* The ELF core writer: reading the target's memory, and choosing what the
 * core holds per dumpType (stacks, the dynamic linker's view, 0x40's
 * referenced memory, 0x100's thread data, whole mappings by kind). */

#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <apr_hash.h>

#include "dump/core_internal.h"
#include <apr_strings.h>

#define STACK_CAP (64ULL << 20)
#define TLS_BELOW (16ULL << 10)     /* dumpType 0x100: static TLS below fs_base... */
#define TCB_ABOVE (8ULL << 10)      /* ...and glibc's struct pthread above it */

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

ssize_t dp_core_read_mem(dp_core *c, unsigned long long addr, void *buf, size_t len)
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
    return dp_core_read_mem(c, addr, out, 8) == 8 ? 0 : -1;
}

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
        if (dp_core_read_mem(c, phdr + i * sizeof(ph), &ph, sizeof(ph)) != sizeof(ph))
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
        if (dp_core_read_mem(c, dyn + i * sizeof(d), &d, sizeof(d)) != sizeof(d)
            || d.d_tag == DT_NULL)
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
        if (dp_core_read_mem(c, lm, &l, sizeof(l)) != sizeof(l))
            break;
        want(w, lm, lm + 2 * PAGE);            /* the public part and rtld's own fields */
        if (l.l_name) {
            unsigned long long at = (uintptr_t)l.l_name;
            size_t to_page = (size_t)(PAGE - at % PAGE);
            ssize_t k = dp_core_read_mem(c, at, name, sizeof(name) - 1);
            if (k <= 0 && to_page < sizeof(name) - 1)
                k = dp_core_read_mem(c, at, name, to_page);
            if (k > 0) {
                want(w, at, at + sizeof(name));
                name[k] = '\0';
                if (name[0] && c->link_names)
                    APR_ARRAY_PUSH(c->link_names, char *) = apr_pstrdup(c->pool, name);
            }
        }
        if (l.l_ld)
            want(w, (uintptr_t)l.l_ld, (uintptr_t)l.l_ld + 64 * sizeof(Elf64_Dyn));
        lm = (unsigned long long)(uintptr_t)l.l_next;
    }
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
            || dp_core_read_mem(rf->c, page, buf, PAGE) != (ssize_t)PAGE) {
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
apr_array_header_t *dp_core_choose_memory(dp_core *c, const char *auxv, size_t auxv_len)
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

/* Read-only file mappings are left to the debugger, which has the file (one
 * page of them would put the whole mapping in the core). */
void dp_core_want(dp_core *c, unsigned long long start, unsigned long long end)
{
    const dp_map *m = map_of(c, start);
    if (c->want_now && m && !is_special(m) && !read_only_file(m))
        want(c->want_now, PAGE_DOWN(start), PAGE_UP(end));
}
