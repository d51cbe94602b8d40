/* The privileged helper daemon: forked from the httpd parent before it drops
 * privileges, it serves the workers' requests for what they may not do
 * themselves (ptrace, kill, other users' /proc files), each request in a
 * forked child, within a server-wide ceiling. No httpd headers. */
#ifndef DP_DAEMON_H
#define DP_DAEMON_H

#include <sys/types.h>

typedef struct dp_helper_policy {
    uid_t peer_uid;             /* who may connect: the workers' user (root always may) */
    int drop_to_peer;           /* started as root: become peer_uid, keep only the caps we need */
    gid_t peer_gid;
    pid_t httpd_pid;            /* the httpd parent: protected */
    int all_users;              /* ceiling: every user but root... */
    const uid_t *uids;          /* ...or only these (root only if listed) */
    int nuids;
    int max_dumps;              /* concurrent dumps server-wide */
    int snapshot;               /* DiagProcDumpSnapshot: large dumps read a copy-on-write fork */
    int dump_nice;              /* DiagProcDumpNice: CPU priority of a dumping child (0-19) */
    int dump_ioprio;            /* DiagProcDumpIOPriority: ioprio_set value, 0 = unchanged */
} dp_helper_policy;

/* Serves listen_fd until the parent goes away; never returns. */
void dp_helper_main(int listen_fd, const dp_helper_policy *pol);

/* ioprio_set(2) values for dump_ioprio */
#define DP_IOPRIO_VALUE(cls, level) (((cls) << 13) | (level))
#define DP_IOPRIO_CLASS_BE   2
#define DP_IOPRIO_CLASS_IDLE 3

/* Is uid within the ceiling? (also used by the tests) */
int dp_policy_allows_uid(const dp_helper_policy *pol, long uid);

#endif
