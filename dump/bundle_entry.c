/* Small helpers every part of the bundle writer uses: one whole entry, a
 * shell-quoted path for the open-*.sh scripts, the check of an entry name,
 * the error of a cut stream. */
#include <string.h>
#include <apr_strings.h>

#include "dump/bundle_internal.h"

int dp_entry_put(dp_entry_sink *out, const char *name, long long mtime, unsigned mode,
                 const void *buf, size_t len)
{
    if (out->begin(out, name, mtime, mode) != 0 || dp_sink_write(&out->data, buf, len) != 0)
        return -1;
    return out->end(out);
}

const char *dp_shell_quote(const char *s, apr_pool_t *p)
{
    size_t n = 2, i = 0;
    const char *c;
    char *q;

    for (c = s; *c; c++)
        n += *c == '\'' ? 4 : 1;
    q = apr_palloc(p, n + 1);
    q[i++] = '\'';
    for (c = s; *c; c++) {
        if (*c == '\'') {
            memcpy(q + i, "'\\''", 4);
            i += 4;
        }
        else
            q[i++] = *c;
    }
    q[i++] = '\'';
    q[i] = '\0';
    return q;
}

/* An absolute path that makes a safe entry name below sysroot/ (the zip
 * writer refuses the others): no empty, "." or ".." component, no backslash. */
int dp_bundle_entry_path_ok(const char *path)
{
    const char *c = path;

    if (*c != '/' || strchr(path, '\\'))
        return 0;
    while (*c == '/') {
        const char *e = strchr(c + 1, '/');
        size_t k = e ? (size_t)(e - c - 1) : strlen(c + 1);
        if (k == 0 || (k == 1 && c[1] == '.') || (k == 2 && c[1] == '.' && c[2] == '.'))
            return 0;
        c += k + 1;
    }
    return 1;
}

int dp_bundle_sink_failed(bundle *b, const char *what)
{
    if (b->err->status)
        return -1;
    return dp_fail(b->err, 500, "Writing %s into the bundle failed (the stream was cut).", what);
}
