/* GET P/{id}/stacks. */
#ifndef MOD_DIAGPROC_STACKS_H
#define MOD_DIAGPROC_STACKS_H

#include "httpd.h"

int dp_route_stacks(request_rec *r, const char **seg);

#endif
