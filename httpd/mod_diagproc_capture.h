/* Capture rules in httpd: DiagProcSpool and DiagProcCapture, the status
 * counters the workers keep in a log_transaction hook, and the watcher's
 * configuration (the launcher, mod_diagproc_helperd.c, forks the watcher). */
#ifndef MOD_DIAGPROC_CAPTURE_H
#define MOD_DIAGPROC_CAPTURE_H

#include "httpd.h"
#include "http_config.h"
#include "common/helper_config.h"

const char *dp_capture_cmd_spool(cmd_parms *cmd, void *d, const char *dir, const char *bytes,
                                 const char *files);
const char *dp_capture_cmd_rule(cmd_parms *cmd, void *d, const char *args);

/* The spool's directory (DiagProcSpool, else under the runtime directory). */
const char *dp_capture_spool(void);
/* The watcher's configuration: the rules, spool and counters, and from the
 * helper's policy (pol) its ceiling and limits (the caller adds what reads
 * the scoreboard, and the instance); 0 when no rule is set (then no
 * watcher runs). */
int dp_capture_watch_config(apr_pool_t *pconf, const dp_helper_policy *pol,
                            dp_watch_config *out);

void dp_capture_register_hooks(apr_pool_t *p);

#endif
