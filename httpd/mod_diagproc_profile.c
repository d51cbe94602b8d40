/* Profiles: the helper samples (helper/profile.c); this asks it, checks the
 * parameters and writes the samples in the asked format (worker/profile.c,
 * worker/pprof.c) as an attachment, as Kudu's stop does. */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_portable.h"
#include "apr_lib.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_profile.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_shared.h"
#include "common/actions.h"
#include "common/proto.h"
#include "proc/procfs.h"
#include "worker/profile.h"

APLOG_USE_MODULE(diagproc);

#define PROFILE_DEFAULT_SECONDS 10

static const char *const formats[] = { "pprof", "speedscope", "folded", NULL };
static const char *const extensions[] = { "pb.gz", "speedscope.json", "folded" };

/* A bounded integer parameter: 0 (absent: *v stays), or the 400 answered. */
static int int_param(request_rec *r, const char *name, long lo, long hi, long *v)
{
    const char *s = apr_table_get(dp_query(r), name);
    char *end;
    long n;

    if (!s)
        return 0;
    errno = 0;
    n = strtol(s, &end, 10);
    if (!*s || *end || errno || n < lo || n > hi)
        return dp_send_error(r, HTTP_BAD_REQUEST, "%s '%s' is not valid: give a whole "
                             "number from %ld to %ld.", name, s, lo, hi);
    *v = n;
    return 0;
}

/* The format asked (index into formats), or -1 with the 400 answered. */
static int format_param(request_rec *r, int *rv)
{
    const char *s = apr_table_get(dp_query(r), "format");
    int i;

    *rv = OK;
    if (!s || !*s)
        return 0;
    for (i = 0; formats[i]; i++)
        if (!strcasecmp(s, formats[i]))
            return i;
    *rv = dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use pprof (the "
                        "default), speedscope or folded.", s);
    return -1;
}

static int checked_target(request_rec *r, const char **seg, pid_t *pid)
{
    dp_stat st;
    int rv;

    if ((rv = dp_require_allowed(r, DP_ACT_PROFILE)) != OK
        || (rv = dp_resolve_target(r, seg[0], pid, &st)) != OK
        || (rv = dp_refuse_protected(r, *pid, &st)) != OK)
        return rv;
    if (st.state == 'Z' || st.state == 'X')
        return dp_send_error(r, HTTP_CONFLICT, "Process %d is a zombie: it runs no code to "
                             "profile.", (int)*pid);
    return OK;
}

static void fill_request(dp_request *rq, pid_t pid, unsigned what, long hz, long seconds)
{
    memset(rq, 0, sizeof(*rq));
    rq->op = DP_OP_PROFILE;
    rq->what = what;
    rq->pid = pid;
    rq->dump_type = what == DP_PROF_STOP ? 0 : (uint64_t)hz;
    rq->timeout_s = (uint32_t)seconds;
}

int dp_route_profile_start(request_rec *r, const char **seg)
{
    long hz = DP_PROF_HZ_DEFAULT, seconds = DP_PROF_MAX_SECONDS;
    dp_request rq;
    dp_helper_conn *hc;
    dp_error err = { 0 };
    uint64_t size;
    char *name;
    pid_t pid;
    int rv;

    /* seconds: an addition to Kudu's route, the profile's maximum duration */
    if ((rv = dp_refuse_cross_site(r)) != OK || (rv = checked_target(r, seg, &pid)) != OK
        || (rv = int_param(r, "hz", DP_PROF_HZ_MIN, DP_PROF_HZ_MAX, &hz)) != OK
        || (rv = int_param(r, "seconds", 1, DP_PROF_MAX_SECONDS, &seconds)) != OK)
        return rv;
    fill_request(&rq, pid, DP_PROF_START, hz, seconds);
    if (dp_helper_call(r, &rq, &hc, &err) != 0 || dp_helper_read_answer(r, hc, &size, &name,
                                                                        &err) != 0)
        return dp_send_dp_error(r, &err);
    dp_helper_close(hc);
    /* Kudu: 200 with an empty body */
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, 0);
    return OK;
}

/* The records up to END into a profile. */
static int read_profile(dp_helper_conn *hc, dp_profile *pf, apr_pool_t *p, dp_error *err)
{
    char *buf = apr_palloc(p, DP_FRAME_MAX);

    for (;;) {
        int type;
        uint32_t len;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0 || dp_read_full(hc->fd, buf, len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        if (type == DP_FR_END && pf->complete)
            break;
        if (dp_profile_add(pf, type, buf, len) != 0)
            return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
    }
    dp_helper_close(hc);
    return 0;
}

static const char *safe_name(apr_pool_t *p, const char *name)
{
    char *s = apr_pstrdup(p, name && *name ? name : "process"), *c;
    for (c = s; *c; c++)
        if (!apr_isalnum(*c) && *c != '.' && *c != '-')
            *c = '_';
    return s;
}

static int send_profile(request_rec *r, const dp_profile *pf, int fmt, pid_t pid,
                        const char *name)
{
    size_t len = 0;
    char *body = NULL;
    const char *title = pid ? apr_psprintf(r->pool, "%s (%d)", name && *name ? name : "process",
                                           (int)pid) : "site";

    if (fmt == 0)
        body = dp_profile_pprof(pf, r->pool, &len);
    else if (fmt == 1)
        body = dp_profile_speedscope(pf, title, r->pool, &len);
    else
        body = dp_profile_folded(pf, r->pool, &len);
    if (!body)
        return dp_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "The profile could not be "
                             "written as %s.", formats[fmt]);
    apr_table_setn(r->headers_out, "Content-Disposition",
                   pid ? apr_psprintf(r->pool, "attachment; filename=\"profile_%s_%s_%d.%s\"",
                                      safe_name(r->pool, dp_instance_name(r->server)),
                                      safe_name(r->pool, name), (int)pid, extensions[fmt])
                       : apr_psprintf(r->pool, "attachment; filename=\"profile_%s_site.%s\"",
                                      safe_name(r->pool, dp_instance_name(r->server)),
                                      extensions[fmt]));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-DiagProc-Profile",
                   apr_psprintf(r->pool, "format=%s; hz=%u; samples=%" APR_UINT64_T_FMT
                                "; lost=%" APR_UINT64_T_FMT "; duration_ms=%" APR_UINT64_T_FMT
                                "; ended=%s", formats[fmt], pf->hz, pf->samples, pf->lost,
                                pf->duration_us / 1000,
                                (pf->flags & DP_PS_EXITED) ? "exited"
                                : (pf->flags & DP_PS_EXPIRED) ? "expired" : "stopped"));
    ap_set_content_type(r, "application/octet-stream");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only)
        ap_rwrite(body, (int)len, r);
    return OK;
}

/* The helper's answer to a stop or a run: the profile, sent as fmt. */
static int answer_profile(request_rec *r, dp_helper_conn *hc, int fmt, pid_t pid)
{
    dp_profile *pf = dp_profile_make(r->pool);
    dp_error err = { 0 };
    uint64_t size;
    char *name;

    if (dp_helper_read_answer(r, hc, &size, &name, &err) != 0
        || read_profile(hc, pf, r->pool, &err) != 0)
        return dp_send_dp_error(r, &err);
    return send_profile(r, pf, fmt, pid, name);
}

static int head_only(request_rec *r)
{
    ap_set_content_type(r, "application/octet-stream");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return DONE;
}

/* The target of a stop: checked as for a start while it runs; once it has
 * exited, only the helper knows whether a session holds its samples. */
static int stop_target(request_rec *r, const char **seg, pid_t *pid)
{
    dp_stat st;
    int rv;

    if ((rv = dp_require_allowed(r, DP_ACT_PROFILE)) != OK)
        return rv;
    if (dp_parse_pid(seg[0], pid) == 0 && *pid > 0 && dp_read_stat(*pid, 0, &st, NULL) != 0)
        return OK;
    return checked_target(r, seg, pid);
}

int dp_route_profile_stop(request_rec *r, const char **seg)
{
    dp_request rq;
    dp_helper_conn *hc;
    dp_error err = { 0 };
    pid_t pid;
    int rv, fmt = format_param(r, &rv);

    if (fmt < 0 || (rv = stop_target(r, seg, &pid)) != OK)
        return rv;
    if (r->header_only)
        return head_only(r);        /* a HEAD must not end the profile */
    fill_request(&rq, pid, DP_PROF_STOP, 0, 0);
    if (dp_helper_call(r, &rq, &hc, &err) != 0)
        return dp_send_dp_error(r, &err);
    return answer_profile(r, hc, fmt, pid);
}

/* Waits for the helper's answer while watching the client: a client that
 * goes away ends the profile (the helper sees the connection close). */
static int wait_answer(request_rec *r, dp_helper_conn *hc, long seconds)
{
    apr_socket_t *cs = ap_get_conn_socket(r->connection);
    apr_os_sock_t cfd = -1;
    struct timeval tv = { seconds + 30, 0 };

    setsockopt(hc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!cs || apr_os_sock_get(&cfd, cs) != APR_SUCCESS)
        return 0;
    for (;;) {
        struct pollfd pf[2] = { { hc->fd, POLLIN, 0 }, { cfd, POLLRDHUP, 0 } };
        int n = poll(pf, 2, 1000);
        if (n < 0 && errno != EINTR)
            return 0;
        if (pf[0].revents)
            return 0;
        if (pf[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            r->connection->aborted = 1;
            return -1;
        }
    }
}

int dp_route_profile(request_rec *r, const char **seg)
{
    long hz = DP_PROF_HZ_DEFAULT, seconds = PROFILE_DEFAULT_SECONDS;
    dp_request rq;
    dp_helper_conn *hc;
    dp_error err = { 0 };
    pid_t pid;
    int rv, fmt = format_param(r, &rv);

    if (fmt < 0 || (rv = checked_target(r, seg, &pid)) != OK
        || (rv = int_param(r, "hz", DP_PROF_HZ_MIN, DP_PROF_HZ_MAX, &hz)) != OK
        || (rv = int_param(r, "seconds", 1, DP_PROF_RUN_MAX_SECONDS, &seconds)) != OK)
        return rv;
    if (r->header_only)
        return head_only(r);        /* the checks alone: no profile is taken */
    fill_request(&rq, pid, DP_PROF_RUN, hz, seconds);
    if (dp_helper_call(r, &rq, &hc, &err) != 0)
        return dp_send_dp_error(r, &err);
    if (wait_answer(r, hc, seconds) != 0) {
        dp_helper_close(hc);
        return DONE;
    }
    return answer_profile(r, hc, fmt, pid);
}

/* GET P/profile: every process of the site at once (helper/profile_site.c),
 * each sample labelled with its process and the request it served. */
int dp_route_profile_site(request_rec *r, const char **seg)
{
    long hz = DP_PROF_HZ_DEFAULT, seconds = PROFILE_DEFAULT_SECONDS;
    dp_request rq;
    dp_helper_conn *hc;
    dp_error err = { 0 };
    int rv, fmt = format_param(r, &rv);

    (void)seg;
    if (fmt < 0 || (rv = dp_require_allowed(r, DP_ACT_PROFILE)) != OK
        || (rv = int_param(r, "hz", DP_PROF_HZ_MIN, DP_PROF_HZ_MAX, &hz)) != OK
        || (rv = int_param(r, "seconds", 1, DP_PROF_RUN_MAX_SECONDS, &seconds)) != OK)
        return rv;
    if (r->header_only)
        return head_only(r);
    fill_request(&rq, 0, DP_PROF_SITE, hz, seconds);
    if (dp_helper_call(r, &rq, &hc, &err) != 0)
        return dp_send_dp_error(r, &err);
    if (wait_answer(r, hc, seconds) != 0) {
        dp_helper_close(hc);
        return DONE;
    }
    return answer_profile(r, hc, fmt, 0);
}

int dp_profile_running(request_rec *r, pid_t pid)
{
    dp_request rq;
    dp_helper_conn *hc;
    dp_error err = { 0 };
    uint64_t running = 0;
    char *rest;
    apr_size_t n;

    /* only the helper knows (its table of sessions); no helper, no sampler:
     * samplers end with the helper that made them, so a detail does not
     * wait for a helper being restarted */
    if (dp_helper_unavailable(r, &err) || !dp_shared_socket_path()
        || dp_shared_helper_retry_in() > 0)
        return 0;
    fill_request(&rq, pid, DP_PROF_RUNNING, 0, 0);
    if (dp_helper_call_once(r, &rq, &hc, &err) != 0
        || dp_helper_read_answer(r, hc, &running, NULL, &err) != 0
        || dp_helper_read_rest(r, hc, &rest, &n, &err) != 0)
        return 0;
    return running == 1;
}
