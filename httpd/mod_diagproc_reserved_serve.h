/* The reserved diagnostics process itself (see the .c): forked by the
 * parent side (mod_diagproc_reserved.c), it serves the DiagProcListen
 * sockets through httpd's own connection and request processing. */
#ifndef MOD_DIAGPROC_RESERVED_SERVE_H
#define MOD_DIAGPROC_RESERVED_SERVE_H

#include <sys/types.h>
#include "httpd.h"

/* The forked child's whole life, over the listeners fds[0..n-1]: never returns. */
void dp_reserved_serve(server_rec *s, pid_t parent, apr_pool_t *pool, const int *fds, int n);

/* Its connection hooks (they act on its own connections only). */
void dp_reserved_serve_register_hooks(void);

#endif
