/* Parsing a request's path and parameters: httpd-free, so that it can be
 * unit-tested and fuzzed alone. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>

#include "worker/route.h"

/* Splits rest ("/123/threads/", "") into at most 8 segments; a single
 * trailing slash is accepted, empty segments elsewhere are not. */
int dp_route_split(apr_pool_t *p, const char *rest, const char **seg, int max)
{
    int n = 0;
    char *s = apr_pstrdup(p, rest), *tok;

    if (*s == '/')
        s++;
    if (*s && s[strlen(s) - 1] == '/')
        s[strlen(s) - 1] = '\0';
    if (!*s)
        return 0;
    while ((tok = strsep(&s, "/")) != NULL) {
        if (!*tok || n == max)
            return -1;
        seg[n++] = tok;
    }
    return n;
}

int dp_route_match(const char *pattern, const char **seg, int n)
{
    const char *p = pattern;
    int i;

    for (i = 0; i < n; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return 0;
        if (!(len == 2 && !strncmp(p, "{}", 2)) && (strlen(seg[i]) != len || strncmp(seg[i], p, len)))
            return 0;
        p = slash ? slash + 1 : p + len;
        if (!slash && i + 1 < n)
            return 0;
    }
    return *p == '\0';
}

int dp_parse_dump_type(const char *s, unsigned long *type)
{
    char *end;
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');

    if (!*s || (!hex && !isdigit((unsigned char)s[0])) || (hex && !isxdigit((unsigned char)s[2])))
        return -1;
    errno = 0;
    *type = strtoul(hex ? s + 2 : s, &end, hex ? 16 : 10);
    return *end || errno ? -1 : 0;
}

/* As Kudu parses it: any case, empty = raw. */
int dp_parse_dump_format(const char *s, int *zip)
{
    *zip = 0;
    if (!s || !*s || !strcasecmp(s, "raw"))
        return 0;
    if (!strcasecmp(s, "zip")) {
        *zip = 1;
        return 0;
    }
    return -1;
}

/* One element's q-value ("q=0.5" among its parameters; 1000 = 1.000), or
 * -1 when it is malformed (the element is then ignored). */
static int qvalue(const char *params, size_t len)
{
    const char *p = params, *end = params + len;
    int q = 1000;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;
        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        if (stop - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            int digits = 0, scale = 100;
            p += 2;
            if (p >= stop || (*p != '0' && *p != '1'))
                return -1;
            q = (*p++ - '0') * 1000;
            if (p < stop && *p == '.')
                for (p++; p < stop && isdigit((unsigned char)*p) && digits < 3; p++, digits++) {
                    q += (*p - '0') * scale;
                    scale /= 10;
                }
            while (p < stop && (*p == ' ' || *p == '\t'))
                p++;
            if (p != stop || q > 1000)
                return -1;
        }
        p = semi ? semi + 1 : end;
    }
    return q;
}

int dp_pick_coding(const char *accept)
{
    /* q-values of zstd, gzip, identity and *; -1 = not named */
    int q[4] = { -1, -1, -1, -1 }, best = DP_CODING_IDENTITY, bestq;
    static const char *names[] = { "zstd", "gzip", "identity", "*" };
    const char *p = accept;

    if (!accept)
        return DP_CODING_IDENTITY;
    while (*p) {
        const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p), *t;
        size_t n, i;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        for (t = p; t < end && *t != ';' && *t != ' ' && *t != '\t'; t++)
            ;
        n = (size_t)(t - p);
        for (i = 0; i < 4; i++)
            if ((strlen(names[i]) == n && !strncasecmp(p, names[i], n))
                || (i == 1 && n == 6 && !strncasecmp(p, "x-gzip", 6))) {
                const char *semi = memchr(t, ';', (size_t)(end - t));
                int v = semi ? qvalue(semi + 1, (size_t)(end - semi - 1)) : 1000;
                if (v >= 0 && v > q[i])
                    q[i] = v;
            }
        p = comma ? comma + 1 : end;
    }
    if (q[0] < 0)
        q[0] = q[3] < 0 ? 0 : q[3];
    if (q[1] < 0)
        q[1] = q[3] < 0 ? 0 : q[3];
    if (q[2] < 0)                       /* identity: acceptable unless refused, */
        q[2] = q[3] == 0 ? 0 : q[3] > 0 ? q[3] : 1;    /* but no rival when not named */
    bestq = q[2];
    if (q[1] > 0 && q[1] >= bestq) {
        best = DP_CODING_GZIP;
        bestq = q[1];
    }
    if (q[0] > 0 && q[0] >= bestq)
        best = DP_CODING_ZSTD;
    return best;
}
