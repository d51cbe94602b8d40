/* Inside helper/: how helper/unwind.c sets up the walkers' view of a target
 * (helper/lang_target.c). */
#ifndef DP_LANG_TARGET_H
#define DP_LANG_TARGET_H

#include <sys/types.h>
#include <apr_hash.h>
#include "helper/stacks.h"
#include "proc/runtime.h"

/* libdwfl's view of what pid maps (read from /proc, the target left
 * running); NULL with err set (409) when it could not be read. */
struct Dwfl *dp_lang_report_modules(pid_t pid, dp_error *err);
/* Module name -> dp_runtime_kind for every object of dwfl (the executable's
 * symbols read through /proc/PID/exe); before the target is stopped. */
apr_hash_t *dp_lang_runtime_kinds(struct Dwfl *dwfl, pid_t pid, apr_pool_t *p);
dp_runtime_kind dp_lang_kind_of(apr_hash_t *kinds, const char *mname);
/* 1 for an object whose interpreter has a frame walker here (CPython, PHP). */
int dp_lang_walked(apr_hash_t *kinds, const char *mname);
/* Ready for a walk of out's target: the interpreters' roots are collected. */
void dp_lang_target_init(dp_lang_target *t, struct Dwfl *dwfl, apr_hash_t *kinds, pid_t pid,
                         dp_stacks *out, apr_pool_t *p);

/* The same target read while it runs (a profile's sample): reads go through
 * process_vm_readv, the page cache starts empty, out gets the frames and p
 * the strings of this walk. */
void dp_lang_target_live(dp_lang_target *t, dp_stacks *out, apr_pool_t *p);

/* libdwfl's view of pid's mapped objects, opened and warmed (unwind
 * tables, interpreters' symbols), with the runtime of each: before a stop. */
struct Dwfl *dp_stacks_open_modules(pid_t pid, apr_hash_t **kinds, apr_pool_t *p,
                                    dp_error *err);

/* A HotSpot JVM (helper/jvmpages.c): adds to the core what jhsdb reads to
 * attach and list the Java threads; inside the core's add_memory. */
#define DP_JVM_MAX_PAGES 16384      /* 64 MiB at most: about a page per loaded class */
void dp_jvm_add_pages(dp_lang_target *t, dp_core *c);

#endif
