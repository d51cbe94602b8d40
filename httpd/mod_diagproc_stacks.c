/* GET P/{id}/stacks: the helper unwinds the stopped target; this renders
 * its frame records as JSON or as eu-stack-like text. */

#include <sys/syscall.h>
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
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_stacks.h"
#include "common/actions.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "common/proto.h"
#include "proc/procfs.h"
#include "worker/stacks.h"

APLOG_USE_MODULE(diagproc);

/* The helper's stacks records into a view (worker/stacks.c). */
static int read_stacks(request_rec *r, dp_helper_conn *hc, dp_stacks_view *v, dp_error *err)
{
    char *buf = apr_palloc(r->pool, DP_FRAME_MAX);

    for (;;) {
        int type;
        uint32_t len;
        if (dp_frame_read_header(hc->fd, &type, &len) != 0 || dp_read_full(hc->fd, buf, len) != 0)
            return dp_fail(err, 500, "The diagproc helper's answer was cut short.");
        if (type == DP_FR_END && dp_stacks_view_complete(v))
            break;
        if (dp_stacks_view_add(v, type, buf, len) != 0)
            return dp_fail(err, 500, "The diagproc helper answered out of protocol.");
    }
    dp_helper_close(hc);
    return 0;
}

int dp_stacks_take(request_rec *r, pid_t pid, unsigned timeout_s, dp_stacks_view **out,
                   char **name, dp_error *err)
{
    dp_request rq;
    dp_helper_conn *hc;
    uint64_t size;

    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_STACKS;
    rq.pid = pid;
    rq.timeout_s = timeout_s;
    rq.keep_running_tid = pid == getpid() ? (int32_t)syscall(SYS_gettid) : 0;
    *out = dp_stacks_view_make(r->pool);
    if (dp_helper_call(r, &rq, &hc, err) != 0 || dp_helper_read_answer(r, hc, &size, name, err) != 0
        || read_stacks(r, hc, *out, err) != 0)
        return -1;
    return 0;
}

static int handle_stacks(request_rec *r, pid_t pid, const char *href)
{
    const char *fmt = apr_table_get(dp_query(r), "format");
    dp_error err = { 0 };
    dp_stacks_view *v;
    char *name;

    if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use json (the "
                             "default) or text (eu-stack's layout).", fmt);
    if (dp_stacks_take(r, pid, 0, &v, &name, &err) != 0)
        return dp_send_dp_error(r, &err);
    if (fmt && !strcmp(fmt, "text")) {
        char *text = dp_stacks_view_text(v, pid, name);
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_set_content_length(r, (apr_off_t)strlen(text));
        ap_rputs(text, r);
        return OK;
    }
    return dp_send_json(r, HTTP_OK, dp_stacks_view_json(v, pid, href));
}

int dp_route_stacks(request_rec *r, const char **seg)
{
    pid_t pid;
    dp_stat st;
    int rv;

    if ((rv = dp_require_allowed(r, DP_ACT_STACKS)) != OK
        || (rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK
        || (rv = dp_refuse_protected(r, pid, &st)) != OK)
        return rv;
    if (st.state == 'Z' || st.state == 'X')
        return dp_send_error(r, HTTP_CONFLICT, "Process %d is a zombie: it has no stacks left.",
                             (int)pid);
    if (r->header_only) {
        /* HEAD answers from the checks alone: it never stops the target */
        ap_set_content_type(r, "application/json; charset=utf-8");
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        return DONE;
    }
    return handle_stacks(r, pid, dp_proc_href(r, pid));
}
