/* DELETE P/{id}, POST P/{id}/stop: the process tree is killed by the helper. */

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
#include "httpd/mod_diagproc_kill.h"
#include "common/actions.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "common/proto.h"
#include "proc/procfs.h"

APLOG_USE_MODULE(diagproc);

static int handle_kill(request_rec *r, pid_t pid)
{
    dp_request rq;
    dp_error err = { 0 };
    dp_helper_conn *hc;
    dp_stat st;
    uint64_t size;

    if (dp_read_stat(pid, 0, &st, &err) != 0)
        return dp_send_dp_error(r, &err);
    memset(&rq, 0, sizeof(rq));
    rq.op = DP_OP_KILL;
    rq.pid = pid;
    rq.start_time = st.starttime;
    if (pid == getpid()) {
        /* our own process: the helper accepts now and kills once this answer
         * is out; the connection closes with it */
        rq.delay_ms = 500;
        r->connection->keepalive = AP_CONN_CLOSE;
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, DPLOGNO(00009)
                      "diagproc: this worker (%d) ends on request", (int)pid);
    }
    if (dp_helper_call(r, &rq, &hc, &err) != 0 || dp_helper_read_answer(r, hc, &size, NULL, &err) != 0)
        return dp_send_dp_error(r, &err);
    r->status = HTTP_NO_CONTENT;
    return DONE;
}

/* ------------------------------------------------------------------ routes */

int dp_route_kill(request_rec *r, const char **seg)
{
    pid_t pid;
    dp_stat st;
    int rv;

    if ((rv = dp_refuse_cross_site(r)) != OK
        || (rv = dp_require_allowed(r, DP_ACT_KILL)) != OK
        || (rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK
        || (rv = dp_refuse_protected(r, pid, &st)) != OK)
        return rv;
    return handle_kill(r, pid);
}
