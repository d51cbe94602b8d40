/* DP_READ_WHERE in the helper: the connections a target's threads wait on
 * and the processes holding their other ends, read without stopping the
 * target (common/proto.h has the answer's format). Internal to helper/. */
#ifndef DP_WHERE_H
#define DP_WHERE_H

#include <sys/types.h>
#include <apr_pools.h>
#include "common/dp_error.h"

/* The answer's lines for pid, in *out (pool memory, NUL-terminated).
 * Sockets whose other end one of the pids in skip holds (the helper's own
 * connection to the asking worker) are left out. 0, or -1 with err. */
int dp_where_collect(pid_t pid, const pid_t *skip, int nskip, char **out, size_t *len,
                     apr_pool_t *p, dp_error *err);

#endif
