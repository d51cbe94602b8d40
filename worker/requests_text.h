/* P/requests as text (format=text): a request a paragraph, with where its
 * code is when the answer has it (stacks=1). No httpd here. */
#ifndef DP_WORKER_REQUESTS_TEXT_H
#define DP_WORKER_REQUESTS_TEXT_H

#include <jansson.h>
#include <apr_pools.h>

/* o: {"count", "extended_status", "requests": [...]} as P/requests answers. */
char *dp_requests_text(apr_pool_t *p, json_t *o);

#endif
