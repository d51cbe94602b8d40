/* GET P/{id}/dump. */
#ifndef MOD_DIAGPROC_DUMP_H
#define MOD_DIAGPROC_DUMP_H

#include "httpd.h"

int dp_route_dump(request_rec *r, const char **seg);

#endif
