/* httpd awareness: which processes are httpd's own (parent, workers, the
 * helper, the reserved process) and what each worker thread is serving,
 * read from httpd's scoreboard. Every entry is copied out, never held. */
#ifndef MOD_DIAGPROC_SCOREBOARD_H
#define MOD_DIAGPROC_SCOREBOARD_H

#include "httpd.h"
#include <jansson.h>
#include "worker/jsonw.h"

/* The roles of httpd's processes at one instant. */
typedef struct dp_roles dp_roles;
dp_roles *dp_roles_take(apr_pool_t *p);
/* "parent", "worker", "helper", "reserved" or NULL; slot and generation
 * for a worker (else -1). */
const char *dp_role_of(const dp_roles *roles, pid_t pid, int *slot, int *generation);

/* ,"httpd_role":…[,"httpd_slot":…,"httpd_generation":…] for a list entry. */
void dp_jw_role(dp_jsonw *w, const dp_roles *roles, pid_t pid);
/* The same fields into a detail object; for a worker also "httpd_threads",
 * what each of its threads is doing. */
void dp_json_role(request_rec *r, json_t *o, pid_t pid);

/* GET P/requests: every request httpd's workers are serving, longest first. */
int dp_route_requests(request_rec *r, const char **seg);

/* For the capture watcher (common/helper_config.h dp_watch_config): the
 * requests being served, and the workers' pids; how many were written. */
struct dp_inflight;
int dp_scoreboard_inflight(struct dp_inflight *out, int max);
int dp_scoreboard_workers(pid_t *out, int max);

void dp_scoreboard_register_hooks(apr_pool_t *p);

#endif
