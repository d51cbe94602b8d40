/* A copy-on-write snapshot of a stopped process, so a large dump pauses the
 * target only for a fork instead of for the whole stream.
 *
 * One of the target's stopped threads is made to run clone() (no exit
 * signal, shared fd table); the new process starts under our ptrace, never
 * runs an instruction of the target, and holds the target's memory as it
 * was at that instant. The target then resumes while its memory is read
 * from the copy. Afterwards the copy is killed and, by a second injected
 * call, reaped inside the target, which never sees a signal or a child.
 *
 * x86-64 only, like the core writer. */
#ifndef DP_SNAPSHOT_H
#define DP_SNAPSHOT_H

#include <sys/types.h>

typedef struct dp_snapshot {
    pid_t pid;          /* the copy, in our pid namespace; 0 = none */
    pid_t pid_in_target;/* the same, as the target sees it (for the reap) */
} dp_snapshot;

/* The target must have no seccomp filter (an injected clone could kill it),
 * and `tid`, one of its threads, must be seized and in a ptrace stop.
 * 0 on success; -1 leaves the thread exactly as it was (the caller then dumps
 * without a snapshot). */
int dp_snapshot_take(pid_t pid, pid_t tid, dp_snapshot *s);

/* Kills the copy and reaps it inside the target (a stop of one thread for a
 * few microseconds). Idempotent. */
void dp_snapshot_drop(pid_t pid, dp_snapshot *s);

/* For a dumping process that died without dp_snapshot_drop (killed): its
 * copy died with it (PTRACE_O_EXITKILL) and is a zombie child of the target.
 * Reaps the target's zombie children that can only be such copies: no exit
 * signal, the target's name, started at or after `since` (clock ticks since
 * boot, like /proc's starttime). */
void dp_snapshot_reap_orphans(pid_t pid, unsigned long long since);

/* waitpid(tid, status, __WALL), again when a signal interrupts it: a wait
 * cut short would leave a thread stopped, or one we changed running. */
pid_t dp_wait_traced(pid_t tid, int *status);

/* 1 when the target runs under a seccomp filter or its mode cannot be read. */
int dp_snapshot_refused(pid_t pid);

#endif
