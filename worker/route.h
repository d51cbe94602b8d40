/* Parsing a request's path and parameters (httpd-free). */
#ifndef DP_ROUTE_H
#define DP_ROUTE_H

#include <apr_pools.h>

/* Splits rest ("/123/threads/", "") into at most max segments; a single
 * trailing slash is accepted, empty segments elsewhere are not (-1). */
int dp_route_split(apr_pool_t *p, const char *rest, const char **seg, int max);
/* Does the pattern ("{}/threads/{}", "{}" = any one segment) match? */
int dp_route_match(const char *pattern, const char **seg, int n);
/* MINIDUMP_TYPE bits in decimal or 0x-hex: 0, or -1 when not a number. */
int dp_parse_dump_type(const char *s, unsigned long *type);
/* format=raw|zip (any case; empty or absent = raw): 0, or -1 when unknown. */
int dp_parse_dump_format(const char *s, int *zip);

#endif
