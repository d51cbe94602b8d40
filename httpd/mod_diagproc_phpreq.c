/* The request a PHP process serves (httpd/mod_diagproc_phpreq.h): the
 * helper's DP_READ_PHP_REQUEST, "method\0uri\0query\0script\0". */
#include <string.h>
#include "apr_strings.h"

#include "httpd/mod_diagproc_phpreq.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_shared.h"
#include "proc/modules.h"

int dp_php_request_read(request_rec *r, pid_t pid, dp_php_request *out, dp_error *err)
{
    const char *f[4] = { "", "", "", "" };
    char *buf = NULL;
    apr_size_t len = 0, at = 0;
    int i;

    memset(out, 0, sizeof(*out));
    if (dp_helper_unavailable(r, err))
        return -1;
    if (!dp_shared_socket_path() || dp_shared_helper_retry_in() > 0)
        return dp_fail(err, 503, "The diagproc helper is not available.");
    if (dp_helper_proc_read(r, pid, DP_READ_PHP_REQUEST, &buf, &len, err) != 0)
        return -1;
    for (i = 0; i < 4 && at < len; i++) {
        const char *nul = memchr(buf + at, '\0', len - at);
        apr_size_t n = nul ? (apr_size_t)(nul - (buf + at)) : len - at;
        f[i] = apr_pstrmemdup(r->pool, buf + at, n);
        at += n + 1;
    }
    out->method = f[0];
    out->uri = f[1];
    out->query = f[2];
    out->script = f[3];
    return out->method[0] ? 1 : 0;
}

int dp_php_maybe(const apr_array_header_t *mods)
{
    int i;

    for (i = 0; mods && i < mods->nelts; i++) {
        const char *path = APR_ARRAY_IDX(mods, i, dp_module).path;
        const char *base = path ? strrchr(path, '/') : NULL;
        base = base ? base + 1 : path;
        if (base && (!strncmp(base, "php", 3) || !strncmp(base, "libphp", 6)))
            return 1;
    }
    return 0;
}

json_t *dp_php_request_json(request_rec *r, pid_t pid, const apr_array_header_t *mods)
{
    dp_php_request q;
    dp_error err = { 0 };

    if (!dp_php_maybe(mods) || dp_php_request_read(r, pid, &q, &err) != 1)
        return json_null();
    return json_pack("{s:o,s:o,s:o,s:o}",
                     "method", dp_json_cstr(r->pool, q.method),
                     "uri", dp_json_cstr(r->pool, q.uri),
                     "query", dp_json_cstr(r->pool, q.query),
                     "script", dp_json_cstr(r->pool, q.script));
}
