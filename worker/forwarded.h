/* Where a client sent its request, as a proxy in front of us forwards it:
 * RFC 7239 Forwarded, or X-Forwarded-Host / -Proto / -Prefix. Plain strings
 * in, validated strings out; no httpd. The caller decides whether the peer
 * is a proxy it trusts: these headers are anyone's to send. */
#ifndef DP_FORWARDED_H
#define DP_FORWARDED_H

#include <apr_pools.h>

typedef struct dp_forwarded {
    const char *scheme;     /* "http" or "https"; NULL: not forwarded */
    const char *host;       /* host[:port] or [v6]:port; NULL: not forwarded */
    const char *prefix;     /* the path the proxy mounts us at, no trailing '/'
                             * ("" for its root); NULL: not forwarded */
} dp_forwarded;

/* Each argument is a header's value or NULL. Each proxy of a chain appends
 * its element, so the last one is what the nearest (trusted) proxy saw.
 * Forwarded's host= and proto= win over X-Forwarded-Host/-Proto; values
 * that are not well-formed are ignored as if absent. */
void dp_forwarded_parse(apr_pool_t *p, const char *forwarded, const char *xf_host,
                        const char *xf_proto, const char *xf_prefix, dp_forwarded *out);

#endif
