/* Which backend process serves the request a worker thread proxies
 * (mod_proxy_fcgi, mod_proxy_http, ajp ...): the helper matches the
 * thread's socket through the kernel's tables (helper/where.c); here its
 * answer is parsed and joined to the requests of P/requests. */

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_where.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_shared.h"
#include "common/format.h"
#include "common/proto.h"
#include "proc/procfs.h"

int dp_where_read(request_rec *r, pid_t worker, apr_array_header_t **out, dp_error *err)
{
    char *buf;
    apr_size_t len;

    if (dp_helper_proc_read(r, worker, DP_READ_WHERE, &buf, &len, err) != 0)
        return -1;
    *out = apr_array_make(r->pool, 8, sizeof(dp_where_entry));
    dp_where_parse(buf, *out, r->pool);
    return 0;
}

static json_t *backend_json(request_rec *r, const dp_where_entry *e)
{
    json_t *o = json_object();
    int local = e->peer_pid > 0;

    json_object_set_new(o, "transport", dp_json_cstr(r->pool, e->transport));
    json_object_set_new(o, "address", dp_json_cstr(r->pool, e->peer));
    json_object_set_new(o, "local", dp_json_cstr(r->pool, e->local));
    json_object_set_new(o, "pid", local ? json_integer(e->peer_pid) : json_null());
    json_object_set_new(o, "user", local && e->peer_uid >= 0
                        ? dp_json_cstr(r->pool, dp_user_name(e->peer_uid, r->pool)) : json_null());
    json_object_set_new(o, "remote", json_boolean(!local));
    if (local)
        json_object_set_new(o, "process", json_string(dp_proc_href(r, e->peer_pid)));
    return o;
}

/* The entry of tid that names a backend: a local process before a remote
 * end (a thread polling several connections), never the helper. */
static const dp_where_entry *entry_of(apr_array_header_t *entries, pid_t tid, pid_t helper)
{
    const dp_where_entry *best = NULL;
    int i;

    for (i = 0; i < entries->nelts; i++) {
        const dp_where_entry *e = &APR_ARRAY_IDX(entries, i, dp_where_entry);
        if (e->tid != tid || (helper > 0 && e->peer_pid == helper))
            continue;
        if (!best || (best->peer_pid == 0 && e->peer_pid > 0))
            best = e;
    }
    return best;
}

void dp_where_attach(request_rec *r, json_t *list)
{
    apr_hash_t *read = apr_hash_make(r->pool);
    dp_shared *sh = dp_shared_page();
    pid_t helper = sh ? __atomic_load_n(&sh->helper_pid, __ATOMIC_ACQUIRE) : 0;
    json_t *req;
    size_t i;

    json_array_foreach(list, i, req) {
        pid_t pid = (pid_t)dp_json_long(req, "pid"), tid = (pid_t)dp_json_long(req, "tid");
        apr_array_header_t *entries;
        const dp_where_entry *e;
        if (pid <= 0 || tid <= 0 || (pid == getpid() && tid == (pid_t)syscall(SYS_gettid)))
            continue;       /* the asking request is served here: no backend */
        entries = apr_hash_get(read, &pid, sizeof(pid));
        if (!entries) {
            pid_t *key = apr_pmemdup(r->pool, &pid, sizeof(pid));
            dp_error err = { 0 };
            int had_retry = apr_table_get(r->headers_out, "Retry-After") != NULL;
            if (dp_where_read(r, pid, &entries, &err) != 0) {
                /* without the helper the list goes out without backends: a
                   200, with no Retry-After of the helper's */
                if (!had_retry)
                    apr_table_unset(r->headers_out, "Retry-After");
                entries = apr_array_make(r->pool, 1, sizeof(dp_where_entry));
            }
            apr_hash_set(read, key, sizeof(*key), entries);
        }
        if ((e = entry_of(entries, tid, helper)) != NULL)
            json_object_set_new(req, "backend", backend_json(r, e));
    }
}
