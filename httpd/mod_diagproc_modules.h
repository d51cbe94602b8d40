/* GET P/{id}/modules, P/{id}/modules/{base_address}; the detail's modules. */
#ifndef MOD_DIAGPROC_MODULES_H
#define MOD_DIAGPROC_MODULES_H

#include "httpd.h"
#include <jansson.h>

int dp_route_modules(request_rec *r, const char **seg);
int dp_route_module(request_rec *r, const char **seg);
/* The mapped ELF objects of pid (dp_module), Kudu's order; NULL when unreadable. */
apr_array_header_t *dp_api_modules(request_rec *r, pid_t pid);
/* Their summaries as the list and the detail show them. */
json_t *dp_modules_json(request_rec *r, pid_t pid, apr_array_header_t *mods);

#endif
