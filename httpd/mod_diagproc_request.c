/* What every route uses: answers and errors, the query, the prefix,
 * the Location's scope, the target of a route and the refusals. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_core.h"
#include "util_script.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "common/actions.h"
#include "proc/procfs.h"
#include "common/format.h"
#include "worker/forwarded.h"
#include "proc/protect.h"
#include "common/format.h"

APLOG_USE_MODULE(diagproc);

/* The <Location> path the handler was mounted at, without a trailing slash.
 * Taken from core's merged section path: our own per-dir config only exists
 * in sections that use one of our directives. */
const char *dp_prefix(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *d = cd && cd->d ? cd->d : "";
    size_t n = strlen(d);

    while (n > 0 && d[n - 1] == '/')
        n--;
    return apr_pstrmemdup(r->pool, d, n);
}

/* What a trusted proxy says its client asked for; all NULL from anyone else,
 * whose forwarding headers are ignored. */
static void trusted_forwarded(request_rec *r, dp_forwarded *fw)
{
    if (!dp_from_trusted_proxy(r)) {
        memset(fw, 0, sizeof(*fw));
        return;
    }
    dp_forwarded_parse(r->pool, apr_table_get(r->headers_in, "Forwarded"),
                       apr_table_get(r->headers_in, "X-Forwarded-Host"),
                       apr_table_get(r->headers_in, "X-Forwarded-Proto"),
                       apr_table_get(r->headers_in, "X-Forwarded-Prefix"), fw);
}

const char *dp_client_prefix(request_rec *r)
{
    dp_forwarded fw;

    trusted_forwarded(r, &fw);
    /* as the client wrote it: the Location may match any case */
    return fw.prefix ? fw.prefix : apr_pstrmemdup(r->pool, r->uri, strlen(dp_prefix(r)));
}

static const char *client_origin(request_rec *r, const dp_forwarded *fw)
{
    char *own = ap_construct_url(r->pool, "", r);     /* scheme://host[:port] */
    size_t n = strlen(own);

    while (n && own[n - 1] == '/')
        own[--n] = '\0';
    if (!fw->host && !fw->scheme)
        return own;
    return apr_pstrcat(r->pool, fw->scheme ? fw->scheme : ap_http_scheme(r), "://",
                       fw->host ? fw->host : strstr(own, "://") + 3, NULL);
}

const char *dp_client_origin(request_rec *r)
{
    dp_forwarded fw;

    trusted_forwarded(r, &fw);
    return client_origin(r, &fw);
}

const char *dp_base_href(request_rec *r)
{
    dp_forwarded fw;

    trusted_forwarded(r, &fw);
    return apr_pstrcat(r->pool, client_origin(r, &fw), fw.prefix ? fw.prefix
                       : apr_pstrmemdup(r->pool, r->uri, strlen(dp_prefix(r))), NULL);
}

const char *dp_proc_href(request_rec *r, long pid)
{
    return apr_psprintf(r->pool, "%s/%ld", dp_base_href(r), pid);
}

void dp_set_instance_header(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "X-Diagproc-Instance", dp_instance_name(r->server));
}

/* httpd's own error answers in our URL space (a Require that fails, an
 * encoded '/' or NUL in the path, a request too large) get the API's JSON
 * body instead of core's HTML page, unless the operator set an
 * ErrorDocument: a custom response text, and a filter that gives it its
 * type (core sets text/html after the insert_error_filter hooks run). */
#define DP_JSON_ERROR_FILTER "DIAGPROC_JSON_ERROR"

static apr_status_t json_error_type(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json; charset=utf-8");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void dp_json_error_register(void)
{
    ap_register_output_filter(DP_JSON_ERROR_FILTER, json_error_type, NULL, AP_FTYPE_RESOURCE);
}

void dp_json_error_body(request_rec *r)
{
    const char *path = r->unparsed_uri ? r->unparsed_uri : "";
    const char *why = "";
    json_t *o;
    char *text;

    if (r->status < 400 || ap_response_code_string(r, ap_index_of_response(r->status)))
        return;
    if (ap_strcasestr(path, "%2f"))
        why = " The path holds an encoded '/' (%2F), which httpd refuses.";
    else if (strstr(path, "%00"))
        why = " The path holds an encoded NUL (%00), which httpd refuses.";
    o = json_pack("{s:s}", "Message", apr_psprintf(r->pool, "httpd answered %s before "
                  "mod_diagproc saw the request.%s", ap_get_status_line(r->status), why));
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return;
    ap_custom_response(r, r->status, apr_pstrcat(r->pool, text, "\n", NULL));
    free(text);
    ap_add_output_filter(DP_JSON_ERROR_FILTER, NULL, r, r->connection);
}

/* --------------------------------------------------------------- responses */

int dp_send_json(request_rec *r, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    r->status = status;
    ap_set_content_type(r, "application/json; charset=utf-8");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only)
        ap_rwrite(text, (int)strlen(text), r);
    free(text);
    return DONE;    /* the response is complete: callers test `!= OK` */
}

int dp_send_error(request_rec *r, int status, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    /* messages echo what the client sent: any bytes, valid UTF-8 or not */
    msg = (char *)dp_utf8(msg, strlen(msg), r->pool);
    if (status >= 500)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, DPLOGNO(00010) "%s", msg);
    else
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, DPLOGNO(00011) "%d: %s", status, msg);
    return dp_send_json(r, status, json_pack("{s:s}", "Message", msg));
}

int dp_send_dp_error(request_rec *r, const dp_error *err)
{
    if (err->status == 503 && !apr_table_get(r->headers_out, "Retry-After"))
        apr_table_setn(r->headers_out, "Retry-After", "5");
    return dp_send_error(r, err->status ? err->status : 500, "%s",
                         err->msg[0] ? err->msg : "internal error");
}

/* ------------------------------------------------------------------ policy */

apr_table_t *dp_query(request_rec *r)
{
    apr_table_t *t = NULL;

    /* parsed once, kept with the request */
    if (apr_pool_userdata_get((void **)&t, "diagproc-query", r->pool) == APR_SUCCESS && t)
        return t;
    ap_args_to_table(r, &t);
    apr_pool_userdata_setn(t, "diagproc-query", NULL, r->pool);
    return t;
}

int dp_in_scope(request_rec *r, long uid)
{
    dp_dir_conf *c = dp_dir_config(r);
    int i;

    if (!c->uids) {     /* default: the httpd User, i.e. whoever the worker runs as */
        static long worker_uid = -1;    /* fixed once the worker started: ask once */
        if (worker_uid < 0)
            worker_uid = (long)geteuid();
        return uid == worker_uid;
    }
    if (c->all_users)
        return 1;
    for (i = 0; i < c->uids->nelts; i++)
        if ((long)APR_ARRAY_IDX(c->uids, i, uid_t) == uid)
            return 1;
    return 0;
}

/* The target as the routes see it: pid resolved (0 = this process), running,
 * within this Location's scope. */
int dp_resolve_target(request_rec *r, const char *idstr, pid_t *pid, dp_stat *st)
{
    dp_error err = { 0 };
    long owner;

    switch (dp_parse_pid(idstr, pid)) {
    case 0:
        break;
    case DP_PID_NONE:       /* a number, but no process can have it: as Kudu answers */
        return dp_send_error(r, HTTP_NOT_FOUND, "Process with an Id of %s is not running.",
                             idstr);
    default:
        return dp_send_error(r, HTTP_BAD_REQUEST, "'%s' is not a valid process id: use a "
                             "decimal pid, or 0 for the httpd process serving this request",
                             idstr);
    }
    if (*pid == 0)
        *pid = getpid();
    if (dp_read_stat(*pid, 0, st, &err) != 0 || (owner = dp_proc_owner(*pid)) < 0) {
        dp_fail_not_running(&err, *pid);
        return dp_send_dp_error(r, &err);
    }
    if (!dp_in_scope(r, owner))
        return dp_send_error(r, HTTP_FORBIDDEN, "Process %d belongs to user '%s', outside "
                             "this location's scope (DiagProcUsers).", (int)*pid,
                             dp_user_name(owner, r->pool));
    return OK;
}

/* pid 1, the httpd parent, kernel threads: never killed or dumped from here. */
int dp_refuse_protected(request_rec *r, pid_t pid, const dp_stat *st)
{
    dp_error err = { 0 };

    /* a worker's (and the reserved process's) parent is the httpd parent */
    if (dp_check_protected(pid, st, getppid(), 0, &err) != 0)
        return dp_send_dp_error(r, &err);
    return OK;
}

int dp_require_allowed(request_rec *r, unsigned bit)
{
    const dp_action *a = dp_action_by_bit(bit);

    if ((unsigned)dp_dir_config(r)->allow & bit)
        return OK;
    return dp_send_error(r, HTTP_FORBIDDEN, "%s: not enabled here; add "
                         "'DiagProcAllow %s' to this <Location> to enable it.", a->subject,
                         a->word);
}

/* A page on another site must not be able to kill or dump through the
 * operator's browser (a plain form post needs no CORS preflight). */
int dp_refuse_cross_site(request_rec *r)
{
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *origin = apr_table_get(r->headers_in, "Origin");

    if (site && !strcasecmp(site, "cross-site"))
        return dp_send_error(r, HTTP_FORBIDDEN, "Cross-site requests may not change "
                             "processes (Sec-Fetch-Site: cross-site).");
    if (origin && strcmp(origin, "null") != 0) {
        /* behind a trusted front, the front's origin is ours */
        const char *own = dp_client_origin(r);
        size_t n = strlen(own);
        if (strlen(origin) != n || strncasecmp(origin, own, n) != 0)
            return dp_send_error(r, HTTP_FORBIDDEN, "Requests from another origin (%s) may "
                                 "not change processes.", origin);
    }
    else if (origin)
        return dp_send_error(r, HTTP_FORBIDDEN, "Requests from an opaque origin may not "
                             "change processes.");
    return OK;
}

/* Every kill, dump, environment read and stacks request leaves one NOTICE
 * line: who asked (client, authenticated user), the target as it was before
 * the action (pid, uid, name), the action and its outcome (the status). */
int dp_audited(request_rec *r, unsigned action, int (*fn)(request_rec *, const char **),
               const char **seg)
{
    long pid = -1, uid = -1;
    const char *name = "-";
    dp_stat st;
    pid_t p;
    int rv;

    if (dp_parse_pid(seg[0], &p) == 0) {
        pid = p ? p : getpid();
        if (dp_read_stat((pid_t)pid, 0, &st, NULL) == 0) {
            uid = dp_proc_owner((pid_t)pid);
            name = apr_pstrdup(r->pool, st.comm);
        }
    }
    else
        name = seg[0];      /* a route of no process: P/profile names "profile" */
    rv = fn(r, seg);
    dp_audit_log(r, action, pid, uid, name, r->status);
    return rv;
}

void dp_audit_log(request_rec *r, unsigned action, long pid, long uid, const char *name,
                  int outcome)
{
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, DPLOGNO(00012)
                  "diagproc audit: client %s user %s action %s pid %ld uid %ld name \"%s\" "
                  "outcome %d", r->useragent_ip ? r->useragent_ip : "-",
                  r->user ? dp_utf8(r->user, strlen(r->user), r->pool) : "-",
                  dp_action_by_bit(action)->word, pid, uid,
                  dp_utf8(name, strlen(name), r->pool), outcome);
}

json_t *dp_json_cstr(apr_pool_t *p, const char *s)
{
    return s ? json_string(dp_utf8(s, strlen(s), p)) : json_null();
}

long dp_json_long(json_t *o, const char *key)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}
