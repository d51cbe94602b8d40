/* Forwarding headers: RFC 7239 Forwarded (last element; token or
 * quoted-string values) and the de-facto X-Forwarded-Host/-Proto/-Prefix
 * (last comma-separated entry). Everything that ends up in an href is
 * checked against a conservative character set. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "worker/forwarded.h"

#define DP_FWD_MAX_HOST   255
#define DP_FWD_MAX_PREFIX 1024

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The trimmed text after the last comma of a list header. */
static const char *last_entry(apr_pool_t *p, const char *v)
{
    const char *s = strrchr(v, ','), *e;

    s = s ? s + 1 : v;
    while (is_ows(*s))
        s++;
    e = s + strlen(s);
    while (e > s && is_ows(e[-1]))
        e--;
    return apr_pstrmemdup(p, s, (apr_size_t)(e - s));
}

/* host, host:port, [v6], [v6]:port: the characters of a DNS name or an IP
 * literal only, so that nothing can break out of the authority. */
static const char *valid_host(const char *h)
{
    const char *c = h;
    size_t n = strlen(h);

    if (n == 0 || n > DP_FWD_MAX_HOST)
        return NULL;
    if (*c == '[') {
        for (c++; *c && *c != ']'; c++)
            if (!apr_isxdigit(*c) && *c != ':' && *c != '.')
                return NULL;
        if (*c++ != ']')
            return NULL;
    }
    else {
        for (; *c && *c != ':'; c++)
            if (!apr_isalnum(*c) && *c != '-' && *c != '.')
                return NULL;
        if (c == h)
            return NULL;
    }
    if (*c == ':') {
        const char *d = ++c;
        for (; *c; c++)
            if (!apr_isdigit(*c))
                return NULL;
        if (c == d || c - d > 5)
            return NULL;
    }
    return *c ? NULL : h;
}

static const char *valid_scheme(const char *s)
{
    if (!strcasecmp(s, "http"))
        return "http";
    if (!strcasecmp(s, "https"))
        return "https";
    return NULL;
}

/* An absolute path of RFC 3986 path characters (pct-encoded allowed), with
 * its trailing slashes removed: "/" is the proxy's root, "". */
static const char *valid_prefix(apr_pool_t *p, const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > DP_FWD_MAX_PREFIX || s[0] != '/' || s[1] == '/')
        return NULL;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !apr_isxdigit(s[i + 1]) || !apr_isxdigit(s[i + 2]))
                return NULL;
        }
        else if (!apr_isalnum(c) && !strchr("/-._~!$&'()*+,;=:@", c))
            return NULL;
    }
    while (n > 0 && s[n - 1] == '/')
        n--;
    return apr_pstrmemdup(p, s, n);
}

/* One forwarded-pair's value at *sp: a token up to ';' or ',', or a
 * quoted-string (backslash escapes). NULL if malformed. */
static char *pair_value(apr_pool_t *p, const char **sp)
{
    const char *s = *sp;
    char *out, *o;

    if (*s != '"') {
        const char *e = s;
        while (*e && *e != ';' && *e != ',' && !is_ows(*e) && *e != '"')
            e++;
        *sp = e;
        return e > s ? apr_pstrmemdup(p, s, (apr_size_t)(e - s)) : NULL;
    }
    out = o = apr_palloc(p, strlen(s));
    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
            s++;
        *o++ = *s;
    }
    if (*s != '"')
        return NULL;
    *o = '\0';
    *sp = s + 1;
    return out;
}

/* The host= and proto= of Forwarded's last element. A malformed header
 * yields nothing at all: its last element cannot be told. */
static void parse_forwarded(apr_pool_t *p, const char *v, const char **host,
                            const char **proto)
{
    const char *s = v, *last = v, *h = NULL, *pr = NULL;
    int quoted = 0;

    /* the last element starts after the last comma outside a quoted-string */
    for (; *s; s++) {
        if (quoted && *s == '\\' && s[1])
            s++;
        else if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == ',')
            last = s + 1;
    }
    if (quoted)
        return;
    s = last;
    while (*s) {
        const char *name = s, *eq;
        char *val;
        while (is_ows(*name) || *name == ';')
            name++;
        if (!*name)
            break;
        eq = name;
        while (*eq && *eq != '=' && *eq != ';')
            eq++;
        if (*eq != '=')
            return;
        s = eq + 1;
        if (!(val = pair_value(p, &s)))
            return;
        if (eq - name == 4 && !strncasecmp(name, "host", 4))
            h = val;
        else if (eq - name == 5 && !strncasecmp(name, "proto", 5))
            pr = val;
        while (is_ows(*s))
            s++;
        if (*s && *s != ';')
            return;
    }
    *host = h;
    *proto = pr;
}

void dp_forwarded_parse(apr_pool_t *p, const char *forwarded, const char *xf_host,
                        const char *xf_proto, const char *xf_prefix, dp_forwarded *out)
{
    const char *host = NULL, *proto = NULL;

    memset(out, 0, sizeof(*out));
    if (forwarded)
        parse_forwarded(p, forwarded, &host, &proto);
    if (!host && xf_host)
        host = last_entry(p, xf_host);
    if (!proto && xf_proto)
        proto = last_entry(p, xf_proto);
    if (host)
        out->host = valid_host(host);
    if (proto)
        out->scheme = valid_scheme(proto);
    if (xf_prefix)
        out->prefix = valid_prefix(p, last_entry(p, xf_prefix));
}
