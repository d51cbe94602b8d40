/* Sampled profiles of one process (DP_OP_PROFILE). A sample reads the
 * running threads' PHP or CPython frames from the target's memory without
 * stopping it; a running thread without language frames is stopped alone,
 * briefly, for its native stack (helper/profile_native.c). Samples are
 * counted per distinct stack in a bounded store. A session (START) is a
 * sampler process of its own that outlives the request (helper/profile.c). */
#ifndef DP_PROFILE_H
#define DP_PROFILE_H

#include <stdint.h>
#include <sys/types.h>
#include <apr_pools.h>
#include "common/dp_error.h"
#include "common/proto.h"
#include "helper/policy.h"

#define DP_PROF_MAX_STACKS 20000                /* distinct stacks kept */
#define DP_PROF_MAX_BYTES (64u * 1024 * 1024)   /* their bytes */

struct Dwfl;
typedef struct dp_profiler dp_profiler;

/* Opens pid's objects (before any sample), for sampling at hz. */
int dp_profiler_open(dp_profiler **out, pid_t pid, unsigned hz, apr_pool_t *p, dp_error *err);
/* One sample of every running thread: 0, or -1 when the target is gone. */
int dp_profiler_tick(dp_profiler *pr);
/* The wait before the next sample, in µs: the period jittered by ±50 %, so
 * that the samples do not keep step with a loop of the target. */
uint64_t dp_profiler_delay_us(dp_profiler *pr);
/* The answer: OK, the PROF_STACK records, PROF_SUMMARY, END. 0, or -1. */
int dp_profiler_send(dp_profiler *pr, int fd, const char *name, unsigned flags);
void dp_profiler_close(dp_profiler *pr);
/* Sampling has ended (the summary's duration ends here). */
void dp_profiler_ended(dp_profiler *pr);

/* ---- one thread's native stack, stopped alone (helper/profile_native.c) */
typedef struct dp_native_sampler dp_native_sampler;
dp_native_sampler *dp_native_sampler_open(struct Dwfl *dwfl, pid_t pid, apr_pool_t *p);
/* Stops tid (PTRACE_SEIZE + INTERRUPT), takes its registers, unwinds it
 * reading memory while it stays stopped, resumes it (detach) and names the
 * frames. Calls fn(arg, name, file) per frame, innermost first; 0, or -1
 * when the thread could not be stopped or read. */
typedef void dp_native_frame_fn(void *arg, const char *name, const char *file);
int dp_native_sample(dp_native_sampler *ns, pid_t tid, dp_native_frame_fn *fn, void *arg,
                     apr_pool_t *p);

/* ---- the operation (helper/profile.c) */
void dp_profile_serve(int fd, const dp_helper_policy *pol, const dp_request *rq,
                      const char *name, apr_pool_t *p);
/* The owner (uid) of the process a session profiles, as it was at the
 * start; -1 when no session of pid answers. For a stop after the target
 * exited. */
long dp_profile_owner(const dp_helper_policy *pol, pid_t pid);
/* The parent pid of pid, or -1. */
pid_t dp_ppid_of(pid_t pid);

#endif
