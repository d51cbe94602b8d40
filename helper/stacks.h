/* Stacks of a stopped process: native frames unwound with elfutils' libdwfl
 * (helper/unwind.c), and where a thread runs PHP or CPython code the
 * language frames read from the interpreter's own structures
 * (helper/pystack.c, helper/phpstack.c). Everything is collected while the
 * target is stopped and sent after it runs again. */
#ifndef DP_STACKS_H
#define DP_STACKS_H

#include <stdint.h>
#include <sys/types.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include "dump/core.h"
#include "common/dp_error.h"
#include "proc/runtime.h"

#define DP_STACK_MAX_FRAMES 512     /* per thread, native and language each */
#define DP_STACK_TIME_CAP_MS 2000   /* the whole walk, while the target is stopped */
#define DP_LANG_MAX_PAGES 128       /* pages a minimal core adds for the language walk (512 KiB) */

typedef struct dp_native_frame {
    uint64_t pc, offset;            /* offset: from the function's start; UINT64_MAX = unknown */
    int line;                       /* 0 = unknown */
    const char *function, *module, *file;   /* NULL = unknown */
} dp_native_frame;

typedef struct dp_lang_frame {
    uint32_t native_index;          /* the native frame that runs it; UINT32_MAX = unknown */
    int line;
    const char *function, *class_name, *file;
} dp_lang_frame;

typedef struct dp_stack_thread {
    pid_t tid;
    unsigned flags;                 /* DP_ST_* (helper/proto.h) */
    const char *why;                /* why the walk stopped early, or NULL */
    const struct user_regs_struct *regs;
    apr_array_header_t *native;     /* dp_native_frame, innermost first */
    apr_array_header_t *lang;       /* dp_lang_frame, innermost first */
} dp_stack_thread;

typedef struct dp_stacks {
    apr_array_header_t *threads;    /* dp_stack_thread */
    unsigned flags;                 /* DP_SS_* */
    const char *runtime, *version, *unsupported;
    const char *runner;             /* the native function that runs language frames */
    uint64_t paused_us, elapsed_us;
    apr_array_header_t *pages;      /* uint64_t page addresses the language walk read */
} dp_stacks;

/* Stops pid (keeping keep_running_tid running, as the core writer does),
 * unwinds every thread, walks an interpreter it finds, resumes the target.
 * Errors as dp_core_open's. */
int dp_stacks_collect(pid_t pid, pid_t keep_running_tid, dp_stacks **out, apr_pool_t *p,
                      dp_error *err);

/* For a minimal core (dump/core.h add_memory): walks the interpreter of the
 * stopped target and adds the pages that walk read; arg = the pid. */
void dp_stacks_add_lang_pages(dp_core *c, void *arg);

/* The gdb commands (php-bt, py-bt) a bundle ships: a gdb Python script. */
const char *dp_lang_gdb_script(apr_pool_t *p);

/* ---- shared by the language walkers ---- */
struct Dwfl;
typedef struct dp_lang_target {
    dp_core *core;
    struct Dwfl *dwfl;
    pid_t pid;
    struct apr_hash_t *kinds;       /* module name -> dp_runtime_kind (proc/runtime.h) */
    dp_stacks *out;
    apr_pool_t *pool;
    struct apr_hash_t *symbols;     /* the interpreters' roots, found before the stop */
    struct lang_page *cache;        /* pages read during the walk */
    apr_pool_t *keep;               /* lives as long as the target's view (pool may be a
                                       profile sample's) */
    const char *php_api;            /* the PHP object's module build id, once found ("" none) */
    int no_lines;                   /* frames without line numbers (a profile's samples) */
} dp_lang_target;

/* A checked read of the stopped target (user addresses only, all or nothing);
 * the page is recorded in out->pages. */
int dp_lang_read(dp_lang_target *t, uint64_t addr, void *buf, size_t len);
int dp_lang_ptr(dp_lang_target *t, uint64_t addr, uint64_t *v);
/* A symbol of an object that is the core of that runtime (proc/runtime.h);
 * 0 when found. */
int dp_lang_symbol(dp_lang_target *t, dp_runtime_kind kind, const char *name,
                   uint64_t *addr, uint64_t *size, const char **module);
/* A language frame of th; the walker sets native_index to the frame's group
 * (0 = run by the innermost `runner` native frame, 1 = the next, ...), which
 * becomes a native frame index once the native frames are symbolized. */
dp_lang_frame *dp_lang_push(dp_stack_thread *th);
/* The bytes of a mapped object's file (as found by libdwfl), or NULL. */
const char *dp_lang_file(dp_lang_target *t, const char *module, size_t *size);

/* 1 when the process runs that interpreter (frames added to out), 0 when it
 * does not; an unknown version sets out->unsupported. */
int dp_pystack_walk(dp_lang_target *t);
int dp_phpstack_walk(dp_lang_target *t);
/* The PHP module build id ("API20220829,NTS") in the object's file, or NULL. */
const char *dp_php_build_id(dp_lang_target *t, const char *module);

#endif
