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
