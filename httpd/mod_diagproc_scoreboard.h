/* httpd awareness: which processes are httpd's own (parent, workers, the
 * helper, the reserved process) and what each worker thread is serving,
 * read from httpd's scoreboard. Every entry is copied out, never held. */
#ifndef MOD_DIAGPROC_SCOREBOARD_H
#define MOD_DIAGPROC_SCOREBOARD_H

#include "httpd.h"
#include <jansson.h>
#include "worker/jsonw.h"
#include "httpd/mod_diagproc_roles.h"

/* The same fields into a detail object; for a worker also "httpd_threads",
 * what each of its threads is doing. */
void dp_json_role(request_rec *r, json_t *o, pid_t pid);

/* GET P/requests: every request httpd's workers are serving, longest first. */
int dp_route_requests(request_rec *r, const char **seg);

/* For the capture watcher (common/helper_config.h dp_watch_config): the
 * requests being served; how many were written (the workers' pids:
 * httpd/mod_diagproc_roles.h). */
struct dp_inflight;
int dp_scoreboard_inflight(struct dp_inflight *out, int max);

void dp_scoreboard_register_hooks(apr_pool_t *p);

#endif
