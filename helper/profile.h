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
#include "common/slots.h"
#include "helper/policy.h"

#define DP_PROF_MAX_STACKS 20000                /* distinct stacks kept */
#define DP_PROF_MAX_BYTES (64u * 1024 * 1024)   /* their bytes */

struct Dwfl;
typedef struct dp_prof_store dp_prof_store;
typedef struct dp_profiler dp_profiler;

/* The samples of a profile at hz (of one process or several), each stack
 * labelled with its process, thread, runtime and, for httpd's threads, the
 * request slots[nslots] say it serves (NULL: no labels). */
dp_prof_store *dp_prof_store_make(unsigned hz, const dp_slot *slots, size_t nslots,
                                  apr_pool_t *p);
/* Sampling begins now (the summary's start and duration count from here;
 * the store's making is the default). */
void dp_prof_began(dp_prof_store *st);
/* The wait before the next sample, in µs: the period jittered by ±50 %, so
 * that the samples do not keep step with a loop of the target. */
uint64_t dp_prof_delay_us(dp_prof_store *st);
/* Sampling has ended (the summary's duration ends here). */
void dp_prof_ended(dp_prof_store *st);
/* The answer: OK, the PROF_STACK records, PROF_SUMMARY, END. 0, or -1. */
int dp_prof_send(dp_prof_store *st, int fd, const char *name, unsigned flags);

/* Opens pid's objects (before any sample) for samples into st; httpd: pid
 * is one of httpd's processes (its threads' requests label the samples). */
int dp_profiler_open(dp_profiler **out, dp_prof_store *st, pid_t pid, int httpd, apr_pool_t *p,
                     dp_error *err);
/* Labels a sample of thread tid of process pid with its request: uri and
 * vhost come filled with what the profiler knows ("" when nothing), and
 * may be changed (terminated, within their sizes). */
typedef void dp_prof_label_fn(void *arg, pid_t pid, pid_t tid, char uri[DP_SLOT_URI],
                              char vhost[64]);
void dp_profiler_set_label(dp_profiler *pr, dp_prof_label_fn *fn, void *arg);
/* One sample of every running thread: 0, or -1 when the target is gone. */
int dp_profiler_tick(dp_profiler *pr);
void dp_profiler_close(dp_profiler *pr);

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

/* ---- the table of sessions (helper/profile_table.c): shared memory of the
 * helper's own processes; nothing outside them can reach it */
enum { DP_PE_FREE = 0, DP_PE_SAMPLING = 1, DP_PE_KEPT = 2, DP_PE_FETCHING = 3 };
/* Maps the table: the daemon, before it forks any request child. 0, or -1. */
int dp_prof_table_init(void);
/* An entry for this process, sampling target: its slot, or -1 with the
 * answer's error (409: a profile of target runs or holds samples; 503: all
 * DP_PROF_SESSIONS entries are held by live processes). */
int dp_prof_claim(pid_t target, long owner, dp_error *err);
/* The holder's own changes: DP_PE_KEPT (sampling ended, samples kept),
 * DP_PE_FETCHING (a stop took them: no other stop or start finds it); the
 * nonce it listens under; the entry freed (at its end; its death frees it
 * too). */
void dp_prof_set_state(int slot, unsigned state);
void dp_prof_publish(int slot, const char *nonce);
void dp_prof_release(int slot);
/* 1 while a live sampler samples target. */
int dp_prof_sampling(pid_t target);
/* The target's uid recorded at its session's start, -1 when none. */
long dp_prof_owner(pid_t target);
/* The sampler of target's session that a stop connects to (its pid, the
 * nonce of its socket's name): 0, or -1 when no session of target listens. */
int dp_prof_find_stop(pid_t target, pid_t *sampler, char nonce[DP_PROF_NONCE_HEX + 1]);

/* ---- the operation (helper/profile.c) */
void dp_profile_serve(int fd, const dp_helper_policy *pol, const dp_request *rq,
                      const char *name, apr_pool_t *p);
/* The owner (uid) of the process a session profiles, as it was at the
 * start; -1 when no session of pid is found. For a stop after the target
 * exited. */
long dp_profile_owner(pid_t pid);
/* Closes every descriptor above 2 but keep[n] (sorted in place): a process
 * that samples for minutes must not hold the daemon's socket or other
 * workers' pending connections open (a worker would not see them close). */
void dp_prof_keep_fds(int *keep, int n);
/* A profile of the whole site (DP_PROF_SITE, helper/profile_site.c). */
void dp_profile_site(int fd, const dp_helper_policy *pol, const dp_request *rq, apr_pool_t *p);
/* The parent pid of pid, or -1. */
pid_t dp_ppid_of(pid_t pid);

#endif
