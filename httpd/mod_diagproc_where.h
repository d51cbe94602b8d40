/* Which backend process serves the request a worker thread proxies: the
 * helper's DP_READ_WHERE of a worker, parsed, and joined to P/requests. */
#ifndef MOD_DIAGPROC_WHERE_H
#define MOD_DIAGPROC_WHERE_H

#include "httpd.h"
#include <jansson.h>
#include "common/dp_error.h"
#include "worker/where_lines.h"

/* The connections the threads of worker wait on (dp_where_entry), read by
 * the helper without stopping it; 0, or -1 with err. */
int dp_where_read(request_rec *r, pid_t worker, apr_array_header_t **out, dp_error *err);

/* Adds "backend" to each entry of a P/requests list (objects with "pid" and
 * "tid") whose thread waits on a connection to another process or host:
 * one helper read per worker process. Without the helper nothing is added. */
void dp_where_attach(request_rec *r, json_t *list);

#endif
