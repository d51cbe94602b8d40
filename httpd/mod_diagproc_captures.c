/* GET P/captures, GET P/captures/{id}/{artifact}, DELETE P/captures/{id}:
 * the spool is root's, so the helper reads it (DP_OP_CAPTURES) and these
 * pass its answer on. Each is governed by DiagProcAllow captures and leaves
 * an audit line naming the capture. */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_captures.h"
#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_html.h"
#include "common/actions.h"
#include "common/capture.h"
#include "common/proto.h"
#include "worker/profile.h"

APLOG_USE_MODULE(diagproc);

static int call(request_rec *r, unsigned what, const char *id, const char *name,
                dp_helper_conn **hc, uint64_t *size, dp_error *err)
{
    dp_request rq;
    char *pname;

    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_CAPTURES;
    rq.what = what;
    apr_cpystrn(rq.cap_id, id ? id : "", sizeof(rq.cap_id));
    apr_cpystrn(rq.cap_name, name ? name : "", sizeof(rq.cap_name));
    if (dp_helper_call(r, &rq, hc, err) != 0 || dp_helper_read_answer(r, *hc, size, &pname, err) != 0)
        return -1;
    return 0;
}

/* One capture of the helper's listing (common/proto.h) as JSON. */
static json_t *capture_json(request_rec *r, const char *buf, uint32_t len)
{
    const char *id = buf, *meta, *arts, *end = buf + len;
    json_t *o, *list;
    json_error_t je;

    meta = memchr(id, '\0', len);
    if (!meta++ || meta >= end || !(arts = memchr(meta, '\0', (size_t)(end - meta))))
        return NULL;
    arts++;
    o = json_loads(apr_pstrcat(r->pool, meta, "}", NULL), 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    list = json_array();
    while (arts < end) {
        const char *nl = memchr(arts, '\n', (size_t)(end - arts));
        const char *tab = nl ? memchr(arts, '\t', (size_t)(nl - arts)) : NULL;
        const char *name;
        if (!tab)
            break;
        name = apr_pstrmemdup(r->pool, arts, (size_t)(tab - arts));
        json_array_append_new(list, json_pack("{s:s,s:I,s:s}", "name", name, "size",
                              (json_int_t)apr_atoi64(apr_pstrmemdup(r->pool, tab + 1,
                                                                    (size_t)(nl - tab - 1))),
                              "href", apr_pstrcat(r->pool, dp_base_href(r), "/captures/", id,
                                                  "/", name, NULL)));
        arts = nl + 1;
    }
    json_object_set_new(o, "artifacts", list);
    return o;
}

static int list(request_rec *r)
{
    dp_error err = { 0 };
    dp_helper_conn *hc;
    uint64_t size;
    char *buf = apr_palloc(r->pool, DP_FRAME_MAX);
    json_t *arr;

    if (call(r, DP_CAP_LIST, NULL, NULL, &hc, &size, &err) != 0)
        return dp_send_dp_error(r, &err);
    arr = json_array();
    for (;;) {
        int type;
        uint32_t len;
        json_t *o;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0 || dp_read_full(hc->fd, buf, len) != 0) {
            json_decref(arr);
            return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "The diagproc helper's answer "
                                 "was cut short.");
        }
        if (type == DP_FR_END)
            break;
        if (type == DP_FR_DATA && (o = capture_json(r, buf, len)) != NULL)
            json_array_append_new(arr, o);
    }
    dp_helper_close(hc);
    return dp_send_json(r, HTTP_OK, arr);
}

int dp_route_captures(request_rec *r, const char **seg)
{
    int rv;

    (void)seg;
    rv = dp_require_allowed(r, DP_ACT_CAPTURES);
    if (rv == OK)
        rv = dp_wants_html(r) ? dp_html_page(r) : list(r);
    dp_audit_log(r, DP_ACT_CAPTURES, -1, -1, "list", r->status);
    return rv;
}

static const char *content_type(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".json") ? "application/json"
                                                   : "application/octet-stream";
}

#define PROFILE_MAX (80u << 20)

/* A profile.dpprof artifact (the helper's DP_FR_PROF_* frames, as the
 * watcher saved them) in the format asked: folded (default), speedscope,
 * pprof. */
static int profile_artifact(request_rec *r, dp_helper_conn *hc, const char *id, uint64_t size)
{
    const char *fmt = apr_table_get(dp_query(r), "format");
    char *buf, *body;
    size_t off = 0, len = 0;
    dp_profile *pf = dp_profile_make(r->pool);

    if (fmt && strcmp(fmt, "folded") && strcmp(fmt, "speedscope") && strcmp(fmt, "pprof"))
        return dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use folded (the "
                             "default), speedscope or pprof.", fmt);
    if (size > PROFILE_MAX)
        return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "The profile is too large.");
    buf = apr_palloc(r->pool, (apr_size_t)size + 1);
    for (;;) {
        int type;
        uint32_t n;
        if (dp_frame_read_header(hc->fd, &type, &n) != 0 || (type == DP_FR_DATA && off + n > size)
            || dp_read_full(hc->fd, type == DP_FR_DATA ? buf + off : apr_palloc(r->pool, n + 1), n) != 0)
            return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "The diagproc helper's answer "
                                 "was cut short.");
        if (type == DP_FR_END)
            break;
        if (type == DP_FR_DATA)
            off += n;
    }
    dp_helper_close(hc);
    /* the saved stream: [type:1][length:4 LE][payload] … */
    for (len = 0; len + DP_FRAME_HDR <= off;) {
        unsigned char *h = (unsigned char *)buf + len;
        uint32_t n = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
        if (len + DP_FRAME_HDR + n > off)
            break;
        if ((h[0] == DP_FR_PROF_STACK || h[0] == DP_FR_PROF_SUMMARY)
            && dp_profile_add(pf, h[0], h + DP_FRAME_HDR, n) != 0)
            return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "The saved profile is malformed.");
        len += DP_FRAME_HDR + n;
    }
    if (fmt && !strcmp(fmt, "pprof"))
        body = (char *)dp_profile_pprof(pf, r->pool, &len);
    else if (fmt && !strcmp(fmt, "speedscope"))
        body = dp_profile_speedscope(pf, id, r->pool, &len);
    else
        body = dp_profile_folded(pf, r->pool, &len);
    if (!body)
        return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "The profile could not be written.");
    ap_set_content_type(r, fmt && !strcmp(fmt, "speedscope") ? "application/json"
                           : fmt && !strcmp(fmt, "pprof") ? "application/octet-stream"
                           : "text/plain; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"%s_profile.%s\"", id,
                                fmt && !strcmp(fmt, "pprof") ? "pb.gz"
                                : fmt && !strcmp(fmt, "speedscope") ? "speedscope.json" : "folded"));
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only)
        ap_rwrite(body, (int)len, r);
    return OK;
}

static int artifact(request_rec *r, const char *id, const char *name)
{
    dp_error err = { 0 };
    dp_helper_conn *hc;
    uint64_t size;
    char *buf = apr_palloc(r->pool, DP_FRAME_MAX);

    if (!dp_cap_name_ok(id) || !dp_cap_name_ok(name))
        return dp_send_error(r, HTTP_NOT_FOUND, "No capture '%s' with an artifact '%s'.", id,
                             name);
    if (call(r, DP_CAP_GET, id, name, &hc, &size, &err) != 0)
        return dp_send_dp_error(r, &err);
    if (strlen(name) > 7 && !strcmp(name + strlen(name) - 7, ".dpprof"))
        return profile_artifact(r, hc, id, size);
    ap_set_content_type(r, content_type(name));
    if (strcmp(content_type(name), "application/json") != 0)
        apr_table_setn(r->headers_out, "Content-Disposition",
                       apr_psprintf(r->pool, "attachment; filename=\"%s_%s\"", id, name));
    ap_set_content_length(r, (apr_off_t)size);
    for (;;) {
        int type;
        uint32_t len;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0 || dp_read_full(hc->fd, buf, len) != 0)
            return AP_FILTER_ERROR;     /* cut short: the client sees less than the length */
        if (type == DP_FR_END)
            break;
        if (type == DP_FR_DATA && !r->header_only && ap_rwrite(buf, (int)len, r) < 0)
            return OK;
    }
    dp_helper_close(hc);
    return OK;
}

int dp_route_capture_artifact(request_rec *r, const char **seg)
{
    int rv;

    if ((rv = dp_require_allowed(r, DP_ACT_CAPTURES)) == OK)
        rv = artifact(r, seg[1], seg[2]);
    dp_audit_log(r, DP_ACT_CAPTURES, -1, -1, apr_pstrcat(r->pool, seg[1], "/", seg[2], NULL),
                 r->status);
    return rv;
}

int dp_route_capture_delete(request_rec *r, const char **seg)
{
    dp_error err = { 0 };
    dp_helper_conn *hc;
    uint64_t size;
    int rv;

    if ((rv = dp_refuse_cross_site(r)) != OK || (rv = dp_require_allowed(r, DP_ACT_CAPTURES)) != OK)
        ;   /* refused: audited below */
    else if (!dp_cap_name_ok(seg[1]))
        rv = dp_send_error(r, HTTP_NOT_FOUND, "No capture '%s'.", seg[1]);
    else if (call(r, DP_CAP_DELETE, seg[1], NULL, &hc, &size, &err) != 0)
        rv = dp_send_dp_error(r, &err);
    else {
        dp_helper_close(hc);
        r->status = HTTP_NO_CONTENT;
        rv = OK;
    }
    dp_audit_log(r, DP_ACT_CAPTURES, -1, -1, seg[1], r->status);
    return rv;
}
