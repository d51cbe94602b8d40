/* The ELF core writer: a live process as a core file gdb, lldb and eu-stack
 * open like a kernel core. Layout first (exact size known before the first
 * byte), then a stream to a dp_sink with a small constant buffer.
 *
 * The caller must be allowed to ptrace the target (the helper process). */
#ifndef DP_CORE_H
#define DP_CORE_H

#include <sys/types.h>
#include <apr_pools.h>
#include "common/dp_error.h"
#include "common/sink.h"
#include "common/dumptype.h"

typedef struct dp_core dp_core;

typedef struct dp_core_opts {
    pid_t pid;
    unsigned long dump_type;        /* validated MINIDUMP_TYPE bits */
    pid_t keep_running_tid;         /* thread never left stopped (the one that
                                       carries the stream when dumping ourselves); 0 = none */
    unsigned long long max_bytes;   /* refuse (413-like, status 409) a core larger than this; 0 = no cap */
    int snapshot;                   /* large dumps: pause only for a copy-on-write fork
                                       (dump/snapshot.h) instead of the whole stream */
    int hide_environment;           /* zero-fill the environment block (env_start..env_end)
                                       in every mapping the core holds */
    int stop_only;                  /* stop and take registers only: no core is laid out
                                       (a walk of the stopped target, then dp_core_close) */
    /* Called once the threads are stopped, before the layout: may add memory
     * with dp_core_want (the pages a language-level walk reads). */
    void (*add_memory)(dp_core *c, void *arg);
    void *add_memory_arg;
} dp_core_opts;
struct user_regs_struct;

/* Seize and stop the target's threads, capture registers, notes and the
 * memory layout. On failure nothing is left stopped. Errors: 404 not running,
 * 409 zombie / kernel thread / exited meanwhile / too large, 403 not permitted,
 * 500 otherwise. Registered as a cleanup on p: the target is always resumed. */
int dp_core_open(dp_core **out, const dp_core_opts *opts, apr_pool_t *p, dp_error *err);

/* Exact size in bytes of the core dp_core_write will produce. */
unsigned long long dp_core_size(const dp_core *c);

/* Stream exactly dp_core_size() bytes. Resumes the target as early as it can
 * (with a snapshot, already before the first byte; at the latest on return). -1 when the sink fails or the target vanished:
 * the caller must then make the truncation visible, never pad. */
int dp_core_write(dp_core *c, dp_sink *sink, dp_error *err);

/* The stopped target, for walks made while it is stopped: the number of
 * threads seen, the i-th one's tid (<= 0 when it could not be stopped) and
 * registers, and its memory as the core would hold it (-1 unless the whole
 * range was read). */
int dp_core_nthreads(const dp_core *c);
pid_t dp_core_thread(const dp_core *c, int i, const struct user_regs_struct **regs);
int dp_core_read(dp_core *c, unsigned long long addr, void *buf, size_t len);
/* Inside add_memory only: put [start, end) in the core (page-aligned outward). */
void dp_core_want(dp_core *c, unsigned long long start, unsigned long long end);

/* Detach and resume every thread; idempotent. */
void dp_core_close(dp_core *c);

#endif
