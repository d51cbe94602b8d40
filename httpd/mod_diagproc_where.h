/* Which backend process serves the request a worker thread proxies: the
 * helper's DP_READ_WHERE of a worker, parsed, and joined to P/requests. */
#ifndef MOD_DIAGPROC_WHERE_H
#define MOD_DIAGPROC_WHERE_H

#include "httpd.h"
#include <jansson.h>
#include "common/dp_error.h"

/* One socket a thread of the worker waits on, and its other end. */
typedef struct dp_where_entry {
    pid_t tid;
    const char *transport;      /* tcp, tcp6, unix */
    const char *local, *peer;   /* address:port, [v6]:port, or a socket's path ("" unnamed) */
    pid_t peer_pid;             /* 0: no process of this host holds the other end */
    long peer_uid;              /* -1 when peer_pid is 0 */
    const char *peer_comm;
} dp_where_entry;

/* The connections the threads of worker wait on (dp_where_entry), read by
 * the helper without stopping it; 0, or -1 with err. */
int dp_where_read(request_rec *r, pid_t worker, apr_array_header_t **out, dp_error *err);

/* Adds "backend" to each entry of a P/requests list (objects with "pid" and
 * "tid") whose thread waits on a connection to another process or host:
 * one helper read per worker process. Without the helper nothing is added. */
void dp_where_attach(request_rec *r, json_t *list);

#endif
