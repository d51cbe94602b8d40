/* httpd's processes from the scoreboard and the shared page. */
#ifndef MOD_DIAGPROC_ROLES_H
#define MOD_DIAGPROC_ROLES_H

#include "httpd.h"
#include "worker/jsonw.h"

/* The roles of httpd's processes at one instant. */
typedef struct dp_roles dp_roles;
dp_roles *dp_roles_take(apr_pool_t *p);
/* "parent", "worker", "helper", "reserved" or NULL; slot and generation
 * for a worker (else -1). */
const char *dp_role_of(const dp_roles *roles, pid_t pid, int *slot, int *generation);

/* ,"httpd_role":…[,"httpd_slot":…,"httpd_generation":…] for a list entry. */
void dp_jw_role(dp_jsonw *w, const dp_roles *roles, pid_t pid);

/* The workers' pids (the capture watcher's dp_watch_config.workers): how
 * many were written. */
int dp_scoreboard_workers(pid_t *out, int max);

#endif
