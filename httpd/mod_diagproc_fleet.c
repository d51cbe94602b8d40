/* The fleet view on a front httpd: one list of every member's processes,
 * or of every member's captures (its captures route), each entry with its
 * instance. The members are asked through httpd's own
 * subrequests to the URL-paths that reach them on this server (as
 * mod_include's virtual includes do), so mod_proxy does the HTTP, the
 * connection reuse and the timeouts. A member that fails, or does not
 * answer within its ProxyPass timeout, is named in "instances" with its
 * status; the others are still shown. */

#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_fleet.h"

#define DP_FLEET_CAPTURE  "DIAGPROC_FLEET_CAPTURE"
/* a member's list of 5000 processes is about 1.5 MiB */
#define DP_FLEET_MAX_BODY ((apr_size_t)16 << 20)

static ap_filter_rec_t *capture_handle;

/* A member's answer, collected in the subrequest's pool. */
typedef struct {
    char *buf;
    apr_size_t len, cap;
    int too_large, read_failed;
} dp_capture;

/* Above SUBREQ_CORE in the member's subrequest: keeps the body, passes
 * nothing on, so none of it reaches the client. */
static apr_status_t capture_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    dp_capture *c = f->ctx;
    apr_bucket *b;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t n;

        if (APR_BUCKET_IS_METADATA(b) || c->too_large || c->read_failed)
            continue;
        if (apr_bucket_read(b, &data, &n, APR_BLOCK_READ) != APR_SUCCESS) {
            c->read_failed = 1;
            continue;
        }
        if (n > DP_FLEET_MAX_BODY - c->len) {
            c->too_large = 1;
            continue;
        }
        if (c->len + n > c->cap) {
            apr_size_t cap = c->cap ? c->cap : 64 * 1024;
            char *nb;
            while (cap < c->len + n)
                cap *= 2;
            nb = apr_palloc(f->r->pool, cap);
            if (c->len)
                memcpy(nb, c->buf, c->len);
            c->buf = nb;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, data, n);
        c->len += n;
    }
    apr_brigade_cleanup(bb);
    return APR_SUCCESS;
}

/* The member's error message, if it answered one of ours. */
static const char *member_message(apr_pool_t *p, const dp_capture *c)
{
    json_t *j = c->len ? json_loadb(c->buf, c->len, 0, NULL) : NULL;
    const char *msg = NULL;

    if (json_is_object(j) && json_is_string(json_object_get(j, "Message")))
        msg = apr_pstrdup(p, json_string_value(json_object_get(j, "Message")));
    json_decref(j);
    return msg;
}

static const char *failure(request_rec *r, request_rec *rr, int status, const dp_capture *c)
{
    const char *msg = member_message(r->pool, c);

    /* mod_proxy notes a read timeout, then answers 502 or 504 */
    if (status == HTTP_GATEWAY_TIME_OUT || apr_table_get(rr->notes, "proxy_timedout"))
        return "no answer in time (the proxy's timeout)";
    if (status == HTTP_BAD_GATEWAY || status == HTTP_SERVICE_UNAVAILABLE)
        return apr_psprintf(r->pool, "not reachable (%d %s)", status,
                            ap_get_status_line(status) + 4);
    return apr_psprintf(r->pool, "answered %d%s%s", status, msg ? ": " : "", msg ? msg : "");
}

/* What the fleet view lists: the members' route that answers it, the key
 * of the answer that holds it, what an answer that is not a list is called. */
typedef struct fleet_list {
    const char *route, *key, *not_a_list;
} fleet_list;

static const fleet_list fleet_processes = { "", "processes", "answer is not a process list" };
static const fleet_list fleet_captures = { "/captures", "captures",
                                           "answer is not a list of captures" };

/* Asks one member for its list; appends its entries to procs, and its
 * status to instances. */
static void ask_member(request_rec *r, const dp_fleet_member *m, const fleet_list *what,
                       const char *query, json_t *procs, json_t *instances)
{
    json_t *st = json_object(), *list = NULL;
    const char *reported;
    request_rec *rr;
    dp_capture cap;
    int rv, status;
    size_t i;

    json_object_set_new(st, "name", json_string(m->name));
    json_object_set_new(st, "href", json_string(apr_pstrcat(r->pool, dp_client_origin(r),
                                                            m->path, NULL)));
    memset(&cap, 0, sizeof(cap));
    rr = ap_sub_req_lookup_uri(apr_pstrcat(r->pool, m->path, what->route, query, NULL), r,
                               r->output_filters);
    status = rr->status;
    if (status == HTTP_OK) {
        /* the member answers JSON, whole, whatever the browser asked for */
        apr_table_setn(rr->headers_in, "Accept", "application/json");
        apr_table_unset(rr->headers_in, "Accept-Encoding");
        apr_table_unset(rr->headers_in, "Range");
        apr_table_unset(rr->headers_in, "If-Range");
        apr_table_unset(rr->headers_in, "If-None-Match");
        apr_table_unset(rr->headers_in, "If-Modified-Since");
        ap_add_output_filter_handle(capture_handle, &cap, rr, rr->connection);
        rv = ap_run_sub_req(rr);
        status = rr->status;
        if (rv != OK && rv != DONE && status == HTTP_OK)
            status = rv;
    }
    json_object_set_new(st, "status", json_integer(status));
    if (status == HTTP_OK && !cap.too_large && !cap.read_failed)
        list = json_loadb(cap.buf ? cap.buf : "", cap.len, 0, NULL);
    if (status != HTTP_OK)
        json_object_set_new(st, "error", json_string(failure(r, rr, status, &cap)));
    else if (cap.too_large)
        json_object_set_new(st, "error", json_string("answer larger than 16 MiB"));
    else if (!json_is_array(list))
        json_object_set_new(st, "error", json_string(cap.read_failed ? "answer cut short"
                                                                     : what->not_a_list));
    else {
        for (i = 0; i < json_array_size(list); i++) {
            json_t *e = json_array_get(list, i);
            if (!json_is_object(e))
                continue;
            json_object_set_new(e, "instance", json_string(m->name));
            json_array_append(procs, e);
        }
        json_object_set_new(st, "count", json_integer((json_int_t)json_array_size(list)));
        reported = apr_table_get(rr->headers_out, "X-Diagproc-Instance");
        if (reported)
            json_object_set_new(st, "machineName", json_string(reported));
    }
    if (json_object_get(st, "error"))
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, DPLOGNO(00002)
                      "fleet member %s (%s): %s", m->name, m->path,
                      json_string_value(json_object_get(st, "error")));
    json_decref(list);
    json_array_append_new(instances, st);
    ap_destroy_sub_req(rr);
}

/* Captures newest first across the members: their ids begin with the UTC
 * time to the millisecond. */
static int newest_first(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));
    return strcmp(y ? y : "", x ? x : "");
}

static void sort_newest_first(apr_pool_t *p, json_t *list)
{
    size_t i, n = json_array_size(list);
    json_t **e = apr_palloc(p, (n ? n : 1) * sizeof(*e));

    for (i = 0; i < n; i++)
        e[i] = json_incref(json_array_get(list, i));
    qsort(e, n, sizeof(*e), newest_first);
    json_array_clear(list);
    for (i = 0; i < n; i++)
        json_array_append_new(list, e[i]);
}

static int fleet_handler(request_rec *r)
{
    dp_dir_conf *dc;
    const char *prefix, *all, *query = "";
    const fleet_list *what = &fleet_processes;
    json_t *procs, *instances;
    int i;

    if (!r->handler || strcmp(r->handler, DP_FLEET_HANDLER))
        return DECLINED;
    dp_set_instance_header(r);
    if (r->main)    /* a member path that leads back here */
        return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR,
                             "A fleet view cannot be a member of a fleet view.");
    prefix = dp_prefix(r);
    if (!strcmp(r->uri, apr_pstrcat(r->pool, prefix, fleet_captures.route, NULL)))
        what = &fleet_captures;
    else if (strcmp(r->uri, prefix) && strcmp(r->uri, apr_pstrcat(r->pool, prefix, "/", NULL)))
        return dp_send_error(r, HTTP_NOT_FOUND, "The fleet view is %s and %s%s only; a process "
                             "or a capture of a member is reached through the member's href.",
                             prefix, prefix, fleet_captures.route);
    r->allowed |= AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return dp_send_error(r, HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on the fleet "
                             "view; allowed: GET.", r->method);
    }
    all = apr_table_get(dp_query(r), "allUsers");
    if (all && strcmp(all, "true") && strcmp(all, "false"))
        return dp_send_error(r, HTTP_BAD_REQUEST, "allUsers must be true or false.");
    if (all && !strcmp(all, "true") && what == &fleet_processes)
        query = "?allUsers=true";
    dc = dp_dir_config(r);
    if (!dc || !dc->fleet || dc->fleet->nelts == 0)
        return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "This fleet view names no "
                             "member (DiagProcFleetMember).");
    procs = json_array();
    instances = json_array();
    for (i = 0; i < dc->fleet->nelts; i++)
        ask_member(r, &APR_ARRAY_IDX(dc->fleet, i, dp_fleet_member), what, query, procs,
                   instances);
    if (what == &fleet_captures)
        sort_newest_first(r->pool, procs);
    return dp_send_json(r, HTTP_OK, json_pack("{s:o,s:o}", "instances", instances,
                                              what->key, procs));
}

void dp_fleet_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(fleet_handler, NULL, NULL, APR_HOOK_MIDDLE);
    capture_handle = ap_register_output_filter(DP_FLEET_CAPTURE, capture_filter, NULL,
                                               AP_FTYPE_RESOURCE);
}
