/* The privileged helper daemon: forked from the httpd parent before it drops
 * privileges, it serves the workers' requests for what they may not do
 * themselves (ptrace, kill, other users' /proc files), each request in a
 * forked child, within a server-wide ceiling. No httpd headers. */
#ifndef DP_DAEMON_H
#define DP_DAEMON_H

#include <sys/types.h>
#include "common/helper_config.h"

/* The helper's exit status when it could not start (privileges, memory):
 * it has logged why, and the parent waits before it tries again, as
 * mod_cgid does with its DAEMON_STARTUP_ERROR. */
#define DP_HELPER_STARTUP_ERROR 254

/* Serves listen_fd until the parent stops it (SIGTERM, also sent when the
 * parent dies); never returns. */
void dp_daemon_main(int listen_fd, const dp_helper_policy *pol);

/* Is uid within the ceiling? (also used by the tests) */
int dp_policy_allows_uid(const dp_helper_policy *pol, long uid);

/* What a request may do, from its section numbers alone: the DP_ACT_* bits
 * its allow section grants over its scope section (0 when the pair cannot
 * occur), and whether uid is in that scope. */
unsigned dp_policy_actions(const dp_helper_policy *pol, int allow_section, int scope_section);
int dp_policy_in_scope(const dp_helper_policy *pol, int scope_section, long uid);

#endif
