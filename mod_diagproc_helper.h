/* The worker's side of the privileged helper: starting it from the httpd
 * parent, and the routes that go through it. */
#ifndef MOD_DIAGPROC_HELPER_H
#define MOD_DIAGPROC_HELPER_H

#include "httpd.h"
#include "proc/dp_error.h"

void dp_helper_register_hooks(apr_pool_t *p);

/* Private /proc reads the worker cannot do itself (other users' processes
 * on a root-started httpd); values as helper/proto.h's dp_priv. */
#define DP_PRIV_FDS     1   /* "fd\0target\0" pairs */
#define DP_PRIV_EXE     2
#define DP_PRIV_ENVIRON 3
#define DP_PRIV_CWD     4
#define DP_PRIV_MAPS    5
int dp_helper_proc_read(request_rec *r, pid_t pid, int what, char **buf, apr_size_t *len,
                        dp_error *err);

/* Route handlers, called once mod_diagproc.c checked route, method, policy
 * and scope. They send the whole response. */
int dp_handle_kill(request_rec *r, pid_t pid);
int dp_handle_dump(request_rec *r, pid_t pid, unsigned long dump_type, int zip);
/* href: the process's own href, for the threads' links */
int dp_handle_stacks(request_rec *r, pid_t pid, const char *href);

#endif
