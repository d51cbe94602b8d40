/* The capture routes (GET P/captures, GET P/captures/{id}/{artifact},
 * DELETE P/captures/{id}); the spool itself is read by the helper. */
#ifndef MOD_DIAGPROC_CAPTURES_H
#define MOD_DIAGPROC_CAPTURES_H

#include "httpd.h"

int dp_route_captures(request_rec *r, const char **seg);
int dp_route_capture_artifact(request_rec *r, const char **seg);
int dp_route_capture_delete(request_rec *r, const char **seg);

#endif
