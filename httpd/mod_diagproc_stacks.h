/* GET P/{id}/stacks. */
#ifndef MOD_DIAGPROC_STACKS_H
#define MOD_DIAGPROC_STACKS_H

#include "httpd.h"
#include "common/dp_error.h"
#include "worker/stacks.h"

int dp_route_stacks(request_rec *r, const char **seg);

/* The stacks of pid through the helper (the target paused once; timeout_s
 * 0 = the helper's own cap), and its name: 0, or -1 with err set. */
int dp_stacks_take(request_rec *r, pid_t pid, unsigned timeout_s, dp_stacks_view **out,
                   char **name, dp_error *err);

#endif
