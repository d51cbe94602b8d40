/* Killing a process tree so that none of it escapes and nothing else is hit. */
#ifndef DP_KILL_H
#define DP_KILL_H

#include <sys/types.h>
#include "common/dp_error.h"

/* Stops pid and every descendant (re-scanning until no new child appears, so
 * a child that keeps forking cannot escape), then SIGKILLs them leaves first
 * and waits until they are gone. Each member is signalled through a pidfd
 * whose start time was checked, so a pid reused meanwhile is never hit.
 * start_time_ticks: what the caller saw for pid (0 = take it now); a
 * different start time means the process it meant is gone (404).
 * Errors: 404 not running, 403 not permitted, 409 zombie, 500 otherwise. */
int dp_kill_tree(pid_t pid, unsigned long long start_time_ticks, dp_error *err);

#endif
