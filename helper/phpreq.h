/* DP_READ_PHP_REQUEST (common/proto.h): the request a PHP runtime serves,
 * from SG(request_info) in the target's own memory, read while it runs. */
#ifndef DP_PHPREQ_H
#define DP_PHPREQ_H

#include <stdint.h>
#include <sys/types.h>
#include <apr_pools.h>
#include "common/dp_error.h"

#define DP_PHPREQ_STR_MAX 2048      /* each string, bytes: longer ones are cut */

typedef struct dp_phpreq {
    const char *method, *uri, *query, *script;  /* "" when unset; all "" when idle */
} dp_phpreq;

/* Where a PHP runtime keeps its request: its sapi_globals and the layout of
 * its version. */
struct dp_lang_target;
struct dp_php_layout;
typedef struct dp_phpreq_at {
    uint64_t sg;
    const struct dp_php_layout *layout;
} dp_phpreq_at;

/* The PHP runtime of t's process: 0, or -1 with err (as below). */
int dp_phpreq_locate(struct dp_lang_target *t, dp_phpreq_at *at, dp_error *err);
/* The request it serves now, read through t (t's pool holds the strings). */
void dp_phpreq_read_at(struct dp_lang_target *t, const dp_phpreq_at *at, dp_phpreq *out);

/* 0 with out filled; -1 with err: 404 when pid runs no PHP, 501 when its
 * PHP has no layout entry (or is a thread-safe build), 409 when its objects
 * could not be read. The target is not stopped: a field that cannot be read
 * (the request ended meanwhile) comes back empty. */
int dp_phpreq_read(pid_t pid, dp_phpreq *out, apr_pool_t *p, dp_error *err);

#endif
