/* The ELF core writer: the PT_NOTE segment (process info, each thread's
 * registers, auxv, the mapped files), as the kernel writes it. */

#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/procfs.h>
#include <apr_strings.h>

#include "dump/core_internal.h"

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

void dp_core_build_notes(dp_core *c, const char *auxv, size_t auxv_len)
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
