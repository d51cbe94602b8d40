/* The ELF core writer, step 2: the wanted ranges laid out as PT_LOADs of
 * present (or swapped) pages, read-only file mappings whole or as their
 * first page, and the file's exact size, known before the first byte. */

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dump/core_internal.h"

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

/* PAGEMAP_SCAN (Linux 6.7, <linux/fs.h>): the page table walked for the
 * first page held, skipping empty tables whole, where pagemap's reads cost
 * one entry per page. Declared here: the build's headers may predate it. */
#define DP_PAGE_IS_PRESENT (1ULL << 3)
#define DP_PAGE_IS_SWAPPED (1ULL << 4)
struct dp_page_region { uint64_t start, end, categories; };
struct dp_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define DP_PAGEMAP_SCAN _IOWR('f', 16, struct dp_pm_scan_arg)

/* The first page in [addr, end) the target holds; end when none; addr
 * itself when the kernel cannot say (then pagemap decides page by page). */
static unsigned long long first_held(int pagemap, unsigned long long addr, unsigned long long end)
{
    struct dp_page_region reg;
    struct dp_pm_scan_arg a;
    int n;

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.start = addr;
    a.end = end;
    a.vec = (uint64_t)(uintptr_t)&reg;
    a.vec_len = 1;
    a.max_pages = 1;
    a.category_anyof_mask = a.return_mask = DP_PAGE_IS_PRESENT | DP_PAGE_IS_SWAPPED;
    n = pagemap < 0 ? -1 : ioctl(pagemap, DP_PAGEMAP_SCAN, &a);
    if (n == 1 && reg.start >= addr && reg.start < end)
        return reg.start;
    return n == 0 && a.walk_end >= end ? end : addr;
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
 * short absent gaps inside a run become zeros, longer ones end the run.
 * Only the wanted stretches are looked up, and empty stretches of them are
 * passed with PAGEMAP_SCAN: pagemap's cost grows with the mapping's size,
 * and a mapping can be terabytes reserved with little in it (a sanitizer's
 * shadow, a runtime's heap reservation). */
static void lay_out_mapping(dp_core *c, const dp_map *m, const apr_array_header_t *w,
                            int *cursor, int pagemap)
{
    const range *r = (const range *)w->elts;
    unsigned long long addr = m->start, gap = 0;
    uint64_t entries[512];
    load cur;
    int in_run = 0;

    memset(&cur, 0, sizeof(cur));
    while (addr < m->end) {
        unsigned long long stop = m->end, next;
        size_t k, n;
        if (!wanted(w, cursor, addr))
            next = *cursor < w->nelts && r[*cursor].start < m->end ? r[*cursor].start : m->end;
        else {
            stop = r[*cursor].end < m->end ? r[*cursor].end : m->end;
            next = first_held(pagemap, addr, stop);
        }
        if (next > addr) {
            /* jump to the next page wanted and held, counting what is passed as gap */
            gap += (next - addr) / PAGE;
            addr = next;
            if (in_run && gap > ZERO_GAP_PAGES) {
                cur.memsz = cur.filesz;
                *(load *)apr_array_push(c->loads) = cur;
                in_run = 0;
            }
            if (!in_run)
                gap = 0;
            continue;
        }
        n = (size_t)((stop - addr) / PAGE);
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

void dp_core_lay_out(dp_core *c, apr_array_header_t *w)
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
