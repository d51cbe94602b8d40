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

/* The content coding a raw dump goes out with, from the request's
 * Accept-Encoding (RFC 9110, 12.5.3; NULL = the field is absent):
 * DP_CODING_ZSTD, DP_CODING_GZIP (also named x-gzip) or DP_CODING_IDENTITY.
 * The acceptable coding with the highest q-value wins, zstd before gzip
 * before identity on a tie; `*` gives its q-value to what the field does
 * not name; identity is acceptable unless `identity;q=0` (or `*;q=0`
 * without identity) says otherwise, and when the field does not name it,
 * it only comes after every coding the field accepts. A field that names nothing acceptable
 * at all is ignored: the dump goes out unencoded, as without the field. */
enum dp_coding { DP_CODING_IDENTITY = 0, DP_CODING_GZIP = 1, DP_CODING_ZSTD = 2 };
int dp_pick_coding(const char *accept_encoding);

#endif
