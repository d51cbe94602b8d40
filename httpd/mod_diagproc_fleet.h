/* The fleet view on a front httpd (SetHandler diagproc-fleet). */
#ifndef MOD_DIAGPROC_FLEET_H
#define MOD_DIAGPROC_FLEET_H

#include "httpd.h"

#define DP_FLEET_HANDLER "diagproc-fleet"

void dp_fleet_register_hooks(apr_pool_t *p);

#endif
