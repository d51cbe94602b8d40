/* The capture spool (DiagProcSpool): one folder per capture, named by its
 * id (the time it was taken first, so that names sort oldest first), with
 * meta.json and its artifacts. The watcher (helper/watch.c) writes it and
 * keeps it within its quota; the helper serves DP_OP_CAPTURES from it. */
#ifndef DP_SPOOL_H
#define DP_SPOOL_H

#include <sys/types.h>
#include <apr_pools.h>
#include "common/capture.h"
#include "common/helper_config.h"
#include "common/proto.h"

typedef struct dp_spool_entry {
    char id[DP_CAP_ID_MAX + 1];
    unsigned long long bytes;       /* its files together */
} dp_spool_entry;

/* The captures, oldest first (folders whose names do not start with '.'). */
int dp_spool_list(const char *spool, dp_spool_entry **out, int *n, apr_pool_t *p);
/* Removes one capture's folder and its files; 0, or -1 (errno). */
int dp_spool_remove(const char *spool, const char *id);
/* Removes the oldest captures until the spool holds at most qbytes and
 * qfiles captures; how many it removed. */
int dp_spool_trim(const char *spool, unsigned long long qbytes, long qfiles, apr_pool_t *p);

/* DP_OP_CAPTURES, in a request's child of the helper. */
void dp_spool_serve(int fd, const dp_helper_policy *pol, const dp_request *rq, apr_pool_t *p);

#endif
