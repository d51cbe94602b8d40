/* The reserved diagnostics process: DiagProcListen makes the httpd parent
 * open that listener and fork one process that serves it with httpd's own
 * connection and request processing, apart from the site's workers. */
#ifndef MOD_DIAGPROC_RESERVED_H
#define MOD_DIAGPROC_RESERVED_H

#include "httpd.h"
#include "http_config.h"

void dp_reserved_register_hooks(apr_pool_t *p);

#endif
