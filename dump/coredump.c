/* The ELF core writer (x86_64). Order of work:
 *   1. seize and interrupt every thread (re-scanning for new ones),
 *      capture registers, notes and the memory map;
 *   2. choose memory per dumpType, keep only present or swapped pages
 *      (pagemap), and lay the file out: its exact size is known before the
 *      first byte;
 *   3. stream headers, notes and memory through a 1 MiB buffer, then detach.
 * Untouched memory is never read (reading it would commit it).
 * Step 1 is in core_threads.c, the choice of memory in core_memory.c, the
 * layout in core_layout.c, the notes in core_notes.c; opening and streaming
 * here. */

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "dump/core_internal.h"

#define IO_CHUNK (1u << 20)
/* Up to about this much, the transport buffers the whole dump and the target
 * is resumed at once; beyond it the client's speed would set the pause. */
#define SNAPSHOT_MIN (4ULL << 20)

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
                dp_core_detach_all(c);
            }
            return;
        }
    }
}

static apr_status_t scrub_cleanup(void *data)
{
    dp_scrub_free(data);
    return APR_SUCCESS;
}

static void add_link(dp_core *c, apr_array_header_t *pub, const char *name)
{
    char path[64], to[PATH_MAX];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)c->pid, name);
    n = readlink(path, to, sizeof(to));
    if (n > 0 && n < (ssize_t)sizeof(to) && to[0] == '/')
        APR_ARRAY_PUSH(pub, const char *) = apr_pstrmemdup(c->pool, to, (apr_size_t)n);
}

/* The tokens of the environment's values (split at ':', ' ', '=', ',' and
 * ';', as PATH, PWD, LD_PRELOAD, PYTHONPATH and option lists such as
 * ASAN_OPTIONS' log_path=... or JAVA_TOOL_OPTIONS' -Dx=... list them) that are absolute paths -- a '/'
 * (not "//", as in a URL's authority) then only file-name characters: a path
 * is no secret, and zeroing its pieces would cut every file name that shares
 * them (a script's path in an interpreter's frames, sys.path, the loader's
 * names). Names and every other value stay secret. */
#define PATH_SEPARATORS ": =,;"

static int is_path_token(const char *t)
{
    if (t[0] != '/' || t[1] == '/')
        return 0;
    for (; *t; t++)
        if (!apr_isalnum(*t) && !strchr("/._+-@~", *t))
            return 0;
    return 1;
}

static void add_path_values(dp_core *c, apr_array_header_t *pub, const char *env, size_t len)
{
    const char *e = env, *end = env + len;

    for (; e < end; e += strnlen(e, (size_t)(end - e)) + 1) {
        const char *v = memchr(e, '=', strnlen(e, (size_t)(end - e)));
        char *val, *tok, *save;
        if (!v)
            continue;
        val = apr_pstrndup(c->pool, v + 1, (apr_size_t)(end - v - 1));
        for (tok = apr_strtok(val, PATH_SEPARATORS, &save); tok;
             tok = apr_strtok(NULL, PATH_SEPARATORS, &save))
            if (strlen(tok) >= DP_SCRUB_MIN && is_path_token(tok))
                APR_ARRAY_PUSH(pub, const char *) = tok;
    }
}

/* What the read-only routes show of the process anyway -- its command line,
 * cwd, executable, open files' and mapped files' paths -- is no secret of
 * its environment, and the debuggers need it whole (NT_FILE, the link maps,
 * a script's file name in an interpreter's frames). */
static apr_array_header_t *public_strings(dp_core *c)
{
    apr_array_header_t *pub = apr_array_make(c->pool, c->maps->nelts + 16, sizeof(char *));
    char path[64], *buf;
    size_t len;
    struct dirent *e;
    DIR *d;
    int i;

    for (i = 0; i < c->maps->nelts; i++)
        if (APR_ARRAY_IDX(c->maps, i, dp_map).path[0] == '/')
            APR_ARRAY_PUSH(pub, const char *) = APR_ARRAY_IDX(c->maps, i, dp_map).path;
    /* the same files as the loader names them (a path through a symlink, as
     * LD_PRELOAD may give it): gdb finds the libraries by these strings */
    apr_array_cat(pub, c->link_names);
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)c->pid);
    if (dp_read_file(path, &buf, &len, c->pool) == 0) {
        /* argv's own bytes: past them the kernel may append the environment */
        if (c->st.arg_end > c->st.arg_start && len > c->st.arg_end - c->st.arg_start)
            len = (size_t)(c->st.arg_end - c->st.arg_start);
        apr_array_cat(pub, dp_split_nul(buf, len, c->pool));
    }
    add_link(c, pub, "cwd");
    add_link(c, pub, "exe");
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)c->pid);
    if ((d = opendir(path))) {
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                add_link(c, pub, apr_pstrcat(c->pool, "fd/", e->d_name, NULL));
        closedir(d);
    }
    return pub;
}

/* The environment as the stopped target holds it, to be scrubbed out of
 * every byte of the core, but for the runs of what is public anyway. */
static int make_scrubber(dp_core *c, dp_error *err)
{
    apr_array_header_t *pub;
    char path[64], *env;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%d/environ", (int)c->pid);
    if (dp_read_file(path, &env, &len, c->pool) != 0)
        return dp_fail(err, 409, "The environment of process %d cannot be read, so it cannot "
                       "be left out of the dump.", (int)c->pid);
    pub = public_strings(c);
    add_path_values(c, pub, env, len);
    c->scrub = dp_scrub_new(env, len, (const char *const *)pub->elts, (size_t)pub->nelts);
    if (!c->scrub)
        return dp_fail(err, 500, "The environment of process %d is too large to be left out "
                       "of the dump.", (int)c->pid);
    apr_pool_cleanup_register(c->pool, c->scrub, scrub_cleanup, apr_pool_cleanup_null);
    return 0;
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
    if (dp_core_stop_threads(c, err) != 0) {
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
    c->link_names = apr_array_make(p, 32, sizeof(char *));
    dp_core_build_notes(c, auxv, auxv_len);
    dp_core_lay_out(c, dp_core_choose_memory(c, auxv, auxv_len));
    /* after the link maps were read: their names are public */
    if (opts->hide_environment && make_scrubber(c, err) != 0) {
        dp_core_close(c);
        return -1;
    }
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

/* The ELF header, the program headers (and section 0 beyond PN_XNUM of
 * them), the notes, and zeros up to the page-aligned data. */
static int write_headers(dp_core *c, dp_sink *sink, unsigned long long *written, char *io)
{
    int nph = 1 + c->loads->nelts, i;
    Elf64_Ehdr eh;
    Elf64_Phdr ph;

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
    if (put(sink, written, &eh, sizeof(eh)) != 0)
        return -1;
    memset(&ph, 0, sizeof(ph));
    ph.p_type = PT_NOTE;
    ph.p_offset = sizeof(eh) + (unsigned long long)nph * sizeof(Elf64_Phdr)
                  + (nph >= PN_XNUM ? sizeof(Elf64_Shdr) : 0);
    ph.p_filesz = c->notes_len;
    ph.p_align = 4;
    if (put(sink, written, &ph, sizeof(ph)) != 0)
        return -1;
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
        if (put(sink, written, &ph, sizeof(ph)) != 0)
            return -1;
    }
    if (nph >= PN_XNUM) {
        Elf64_Shdr sh;
        memset(&sh, 0, sizeof(sh));
        sh.sh_info = (Elf64_Word)nph;
        if (put(sink, written, &sh, sizeof(sh)) != 0)
            return -1;
    }
    if (put(sink, written, c->notes, c->notes_len) != 0)
        return -1;
    memset(io, 0, IO_CHUNK);
    if (put(sink, written, io, (size_t)(c->data_offset - *written)) != 0)
        return -1;
    return 0;
}

/* One stretch of a segment into buf: 0, or -2 when the target vanished. */
static int read_chunk(dp_core *c, const segment *s, unsigned long long a, char *buf, size_t n)
{
    size_t k;
    dp_stat now;

    if (s->src == SRC_FILE) {
        read_file_pages(c, s, a, buf, n);
        return 0;
    }
    if (s->src != SRC_ZERO && dp_core_read_mem(c, a, buf, n) == (ssize_t)n)
        return 0;
    /* page by page, so one bad page costs only itself */
    if (s->src == SRC_MEM && (dp_read_stat(c->mem_pid, 0, &now, NULL) != 0
                              || now.state == 'Z' || now.state == 'X'))
        return -2;      /* zeros now would make a dump that looks whole */
    for (k = 0; k < n; k += PAGE)
        if (s->src == SRC_ZERO || dp_core_read_mem(c, a + k, buf + k, PAGE) != (ssize_t)PAGE)
            memset(buf + k, 0, PAGE);
    return 0;
}

/* Every PT_LOAD's bytes: read straight into the sink's own buffer when it
 * lends one (the ring's slot: no copy on our side), else through io. -1
 * when the sink failed, -2 when the target vanished. */
static int write_memory(dp_core *c, dp_sink *sink, unsigned long long *written, char *io)
{
    int i, j;

    for (i = 0; i < c->loads->nelts; i++) {
        const load *l = &APR_ARRAY_IDX(c->loads, i, load);
        for (j = 0; j < l->nseg; j++) {
            const segment *s = &APR_ARRAY_IDX(c->segs, l->first_seg + j, segment);
            unsigned long long a = s->vaddr, end = s->vaddr + s->len;
            while (a < end) {
                size_t n = IO_CHUNK, room;
                char *buf = io;
                if (sink->reserve) {
                    if (!(buf = sink->reserve(sink, PAGE, &room)))
                        return -1;
                    n = room / PAGE * PAGE;     /* segments are whole pages */
                }
                if (end - a < n)
                    n = (size_t)(end - a);
                if (read_chunk(c, s, a, buf, n) != 0)
                    return -2;
                if (*written + n == c->size)
                    dp_core_close(c);   /* the last read: resume before the client has it all */
                *written += n;
                if ((sink->reserve ? sink->commit(sink, n) : dp_sink_write(sink, io, n)) != 0)
                    return -1;
                a += n;
            }
        }
    }
    return 0;
}

int dp_core_write(dp_core *c, dp_sink *sink, dp_error *err)
{
    unsigned long long written = 0;
    char *io = apr_palloc(c->pool, IO_CHUNK);
    dp_sink scrubbed;
    int rc;

    if (c->scrub) {         /* hide_environment: every byte of the file goes through it */
        dp_scrub_sink(c->scrub, sink, &scrubbed);
        sink = &scrubbed;
    }
    rc = write_headers(c, sink, &written, io);
    if (rc == 0)
        rc = write_memory(c, sink, &written, io);
    dp_core_close(c);       /* resume as soon as the last byte is read */
    if (rc == 0 && c->scrub && dp_scrub_flush(c->scrub) != 0)
        rc = -1;
    if (rc == -2)
        return dp_fail(err, 409, "Process %d exited while it was being dumped.", (int)c->pid);
    if (rc != 0)
        return dp_fail(err, 500, "The dump of process %d was not completed: its reader went "
                       "away.", (int)c->pid);
    return 0;
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
    return dp_core_read_mem(c, addr, buf, len) == (ssize_t)len ? 0 : -1;
}

void dp_core_close(dp_core *c)
{
    int i;

    if (!c || c->closed)
        return;
    c->closed = 1;
    dp_core_detach_all(c);
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
