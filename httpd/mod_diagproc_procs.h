/* The read-only routes: process list, detail, threads, modules, environment. */
#ifndef MOD_DIAGPROC_PROCS_H
#define MOD_DIAGPROC_PROCS_H

#include "httpd.h"

int dp_route_list(request_rec *r, const char **seg);
int dp_route_detail(request_rec *r, const char **seg);
int dp_route_environment(request_rec *r, const char **seg);

#endif
