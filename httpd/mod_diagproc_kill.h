/* DELETE P/{id} and POST P/{id}/stop. */
#ifndef MOD_DIAGPROC_KILL_H
#define MOD_DIAGPROC_KILL_H

#include "httpd.h"

int dp_route_kill(request_rec *r, const char **seg);

#endif
