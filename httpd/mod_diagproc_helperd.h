/* The parent's side of the privileged helper: started after the
 * configuration is read, restarted when it dies, stopped with httpd */
#ifndef MOD_DIAGPROC_HELPERD_H
#define MOD_DIAGPROC_HELPERD_H

#include "httpd.h"

void dp_helperd_register_hooks(apr_pool_t *p);

#endif
