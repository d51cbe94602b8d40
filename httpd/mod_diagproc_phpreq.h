/* The request a PHP process is serving, as PHP itself keeps it
 * (SG(request_info)), read by the privileged helper from the process's
 * memory without stopping it (DP_READ_PHP_REQUEST): php-fpm's children are
 * not httpd's, and the scoreboard knows nothing of what they serve. */
#ifndef MOD_DIAGPROC_PHPREQ_H
#define MOD_DIAGPROC_PHPREQ_H

#include <sys/types.h>
#include <jansson.h>
#include "httpd.h"
#include "apr_tables.h"
#include "common/dp_error.h"

typedef struct dp_php_request {
    const char *method, *uri, *query, *script;  /* "" when PHP left one unset */
} dp_php_request;

/* 1 with out filled when pid's PHP is serving a request; 0 when it is idle
 * (between requests); -1 with err when it runs no PHP (404), its PHP has no
 * layout entry (501), the helper is not available or refuses (its status).
 * Asks the helper only when it is there to ask: a helper this request
 * already found unavailable, or one that could not start, is not waited
 * for. Like every helper call, a helper found unavailable is noted on r
 * (dp_helper_unavailable): a route for which this read is optional calls it
 * after its own check of that. */
int dp_php_request_read(request_rec *r, pid_t pid, dp_php_request *out, dp_error *err);

/* A likely PHP process, from its mapped files (proc/modules.h dp_module):
 * the php or php-fpm binary or libphp*.so; a cheap filter before asking the
 * helper, which decides. */
int dp_php_maybe(const apr_array_header_t *mods);

/* "php_request" of a process's detail: {"method","uri","query","script"} or
 * null (idle, not PHP, the helper not available: the detail never fails for
 * it). */
json_t *dp_php_request_json(request_rec *r, pid_t pid, const apr_array_header_t *mods);

#endif
