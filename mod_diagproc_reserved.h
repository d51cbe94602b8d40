/* The reserved diagnostics process: DiagProcListen makes the httpd parent
 * open that listener and fork one process that serves it with httpd's own
 * connection and request processing, apart from the site's workers. */
#ifndef MOD_DIAGPROC_RESERVED_H
#define MOD_DIAGPROC_RESERVED_H

#include "httpd.h"
#include "http_config.h"

/* DiagProcListen [address:]port */
const char *dp_reserved_set_listen(cmd_parms *cmd, void *dconf, const char *arg);

void dp_reserved_register_hooks(apr_pool_t *p);

#endif
