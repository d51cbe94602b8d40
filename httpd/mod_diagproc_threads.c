/* GET P/{id}/threads and P/{id}/threads/{tid}: a process's threads, with
 * Kudu's ProcessThread fields mapped onto the kernel's per-task files. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_threads.h"
#include "httpd/mod_diagproc_helper_client.h"
#include "httpd/mod_diagproc_html.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "proc/procfs.h"
#include "proc/modules.h"
#include "common/format.h"
#include "proc/elfinfo.h"
#include "worker/jsonw.h"

APLOG_USE_MODULE(diagproc);

/* ---------------------------------------------------------------- threads */

static json_t *thread_summary(request_rec *r, pid_t pid, pid_t tid, const dp_stat *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(tid));
    json_object_set_new(o, "href", json_string(apr_psprintf(r->pool, "%s/threads/%d",
                                                            dp_proc_href(r, pid), (int)tid)));
    json_object_set_new(o, "state", json_string(dp_state_word(st->state)));
    return o;
}

json_t *dp_threads_json(request_rec *r, pid_t pid)
{
    apr_array_header_t *tids = dp_list_tids(pid, r->pool);
    json_t *arr = json_array();
    int i;

    for (i = 0; tids && i < tids->nelts; i++) {
        pid_t tid = APR_ARRAY_IDX(tids, i, int);
        dp_stat st;
        if (dp_read_stat(pid, tid, &st, NULL) == 0)
            json_array_append_new(arr, thread_summary(r, pid, tid, &st));
    }
    return arr;
}

int dp_route_threads(request_rec *r, const char **seg)
{
    pid_t pid;
    dp_stat st;
    int rv;

    if ((rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK)
        return rv;
    return dp_send_json(r, HTTP_OK, dp_threads_json(r, pid));
}

/* Windows' priority classes, from the nice value the scheduler uses. */
static const char *priority_level(const dp_stat *st)
{
    if (st->priority < 0)
        return "TimeCritical";      /* a real-time policy */
    if (st->nice <= -15) return "Highest";
    if (st->nice < 0) return "AboveNormal";
    if (st->nice == 0) return "Normal";
    if (st->nice < 15) return "BelowNormal";
    return "Lowest";
}

int dp_route_thread(request_rec *r, const char **seg)
{
    long hz = dp_clock_ticks();
    pid_t pid, tid;
    dp_stat st, ts;
    dp_error err = { 0 };
    char wchan[128];
    json_t *o;
    int rv;

    if ((rv = dp_resolve_target(r, seg[0], &pid, &st)) != OK)
        return rv;
    rv = dp_parse_pid(seg[2], &tid);
    if (rv == DP_PID_NONE || (rv == 0 && tid == 0))
        return dp_send_error(r, HTTP_NOT_FOUND, "Process %d has no thread with an Id of %s.",
                             (int)pid, seg[2]);
    if (rv != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "'%s' is not a valid thread id: use a "
                             "decimal tid from the threads list.", seg[2]);
    if (dp_read_stat(pid, tid, &ts, &err) != 0)
        return dp_send_dp_error(r, &err);
    o = thread_summary(r, pid, tid, &ts);
    json_object_set_new(o, "process", json_string(dp_proc_href(r, pid)));
    json_object_set_new(o, "name", dp_json_cstr(r->pool, ts.comm));
    /* the start routine is not kept by the kernel; only a debugger could
     * guess it from the stack's outermost frame */
    json_object_set_new(o, "start_address", json_null());
    json_object_set_new(o, "current_priority", json_integer(ts.priority));
    json_object_set_new(o, "priority_level", json_string(priority_level(&ts)));
    json_object_set_new(o, "base_priority", json_integer(20 - ts.nice));
    json_object_set_new(o, "start_time", json_string(dp_start_time_iso(ts.starttime, r->pool)));
    json_object_set_new(o, "total_processor_time",
                        json_string(dp_timespan(ts.utime + ts.stime, hz, r->pool)));
    json_object_set_new(o, "user_processor_time", json_string(dp_timespan(ts.utime, hz, r->pool)));
    json_object_set_new(o, "priviledged_processor_time",
                        json_string(dp_timespan(ts.stime, hz, r->pool)));
    {
        ssize_t n = dp_read_small(apr_psprintf(r->pool, "/proc/%d/task/%d/wchan", (int)pid,
                                               (int)tid), wchan, sizeof(wchan));
        /* "0" means running (no wait channel) */
        if (n < 0)
            json_object_set_new(o, "wait_reason", json_null());
        else
            json_object_set_new(o, "wait_reason", dp_json_cstr(r->pool, strcmp(wchan, "0") ? wchan : ""));
    }
    return dp_send_json(r, HTTP_OK, o);
}
