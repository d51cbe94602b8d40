/* The reserved process's read-ahead input filter (see the .c). */
#ifndef MOD_DIAGPROC_RESERVED_AHEAD_H
#define MOD_DIAGPROC_RESERVED_AHEAD_H

#include "httpd/mod_diagproc_reserved_loop.h"

void dp_ahead_register(void);
/* On an opaque connection, once its pre_connection hooks have run. */
void dp_ahead_add(dp_conn *cn);
/* Reads what can be read now, without blocking, into the filter (a TLS
 * handshake goes on meanwhile): the bytes it holds, or -1 when the
 * connection failed or ended. At most `want` bytes are held. */
apr_off_t dp_ahead_fill(dp_conn *cn, apr_off_t want);
/* Copies up to *len held bytes into buf. */
void dp_ahead_peek(dp_conn *cn, char *buf, apr_size_t *len);

#endif
