/* GET P/requests?stacks=1: where each in-flight request's code is (see the .c). */
#ifndef MOD_DIAGPROC_ATTRIBUTION_H
#define MOD_DIAGPROC_ATTRIBUTION_H

#include <jansson.h>
#include "httpd.h"

/* Adds "where" to the requests of list (P/requests' objects: pid, tid and,
 * when proxied, backend): the serving thread's frames, read once per
 * process. The number of processes read. */
int dp_attribute_requests(request_rec *r, json_t *list);

#endif
