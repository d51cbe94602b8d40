/* What the pieces of the ELF core writer share (dump/coredump.c: open and
 * stream; core_threads.c: stop the threads, take their registers;
 * core_memory.c: read the target, choose the memory per dumpType;
 * core_layout.c: lay the file out in PT_LOADs; core_notes.c: the notes).
 * Internal to dump/: not part of dump/core.h's API. */
#ifndef DP_CORE_INTERNAL_H
#define DP_CORE_INTERNAL_H

#include <string.h>
#include <sys/types.h>
#include <sys/user.h>
#include <apr_tables.h>

#include "dump/core.h"
#include "dump/scrub.h"
#include "dump/snapshot.h"
#include "proc/procfs.h"

#define PAGE 4096ULL
#define PAGE_DOWN(a) ((a) & ~(PAGE - 1))
#define PAGE_UP(a) (((a) + PAGE - 1) & ~(PAGE - 1))
#define ZERO_GAP_PAGES 16           /* absent gaps this small are written as zeros */

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
    dp_scrub *scrub;                /* hide_environment: every byte written goes through it */
    apr_array_header_t *link_names; /* char *: the link maps' l_name strings, as the loader spells them */
    apr_array_header_t *want_now;   /* ranges being chosen, during add_memory */
};

typedef struct range {
    unsigned long long start, end;
} range;

static inline int is_special(const dp_map *m)
{
    return !strcmp(m->path, "[vvar]") || !strcmp(m->path, "[vvar_vclock]")
           || !strcmp(m->path, "[vsyscall]");
}

/* A read-only file-backed mapping: the one kind jhsdb's core reader accepts
 * only whole, as its first page, or not at all (it checks them against the
 * library's own segments). Device mappings never get here (see
 * unreadable_starts). */
static inline int read_only_file(const dp_map *m)
{
    return m->path[0] == '/' && m->perms[1] != 'w' && m->inode != 0;
}

/* core_threads.c */
int dp_core_stop_threads(dp_core *c, dp_error *err);
void dp_core_detach_all(dp_core *c);

/* core_memory.c */
ssize_t dp_core_read_mem(dp_core *c, unsigned long long addr, void *buf, size_t len);
/* What dumpType asks for, as page ranges (unsorted, may overlap). */
apr_array_header_t *dp_core_choose_memory(dp_core *c, const char *auxv, size_t auxv_len);

/* core_layout.c: the PT_LOADs and segments of the wanted ranges, the data
 * offset and the exact size (after the notes are built) */
void dp_core_lay_out(dp_core *c, apr_array_header_t *w);

/* core_notes.c */
void dp_core_build_notes(dp_core *c, const char *auxv, size_t auxv_len);

#endif
