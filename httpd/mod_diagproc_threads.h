/* GET P/{id}/threads, P/{id}/threads/{tid}; the detail's threads. */
#ifndef MOD_DIAGPROC_THREADS_H
#define MOD_DIAGPROC_THREADS_H

#include "httpd.h"
#include <jansson.h>

int dp_route_threads(request_rec *r, const char **seg);
int dp_route_thread(request_rec *r, const char **seg);
/* [{id, href, state}] of every thread of pid. */
json_t *dp_threads_json(request_rec *r, pid_t pid);

#endif
