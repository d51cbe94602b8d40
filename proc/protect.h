/* Protected targets: pid 1, the httpd parent, the helper, kernel threads. */
#ifndef DP_PROTECT_H
#define DP_PROTECT_H

#include <sys/types.h>
#include "proc/procfs.h"
#include "common/dp_error.h"

/* 0, or -1 with a 403 in err. helper_pid 0 = not known to the caller (the
 * helper refuses itself). */
int dp_check_protected(pid_t pid, const dp_stat *st, pid_t httpd_pid, pid_t helper_pid,
                       dp_error *err);

#endif
