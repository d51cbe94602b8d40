/* The parent's side of the privileged helper: started after the
 * configuration is read, restarted when it dies, stopped with httpd */
#ifndef MOD_DIAGPROC_HELPERD_H
#define MOD_DIAGPROC_HELPERD_H

#include "httpd.h"

void dp_helperd_register_hooks(apr_pool_t *p);
/* The helper's socket, set in the parent before the workers are forked. */
const char *dp_helperd_socket_path(void);
/* This generation's secret (DP_SECRET_LEN bytes), inherited in memory. */
const unsigned char *dp_helperd_secret(void);

#endif
