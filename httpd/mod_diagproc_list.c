/* GET P: the process list, streamed with the JSON writer (worker/jsonw.h)
 * straight to the client: a scan of /proc, sorted by name then pid, each
 * entry with Kudu's fields, the CPU times and the scan's time stamp. */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_html.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "proc/procfs.h"
#include "common/format.h"
#include "worker/jsonw.h"

static int query_flag(apr_table_t *q, const char *key, int *out, request_rec *r, int *rv)
{
    const char *v = apr_table_get(q, key);
    *out = 0;
    if (!v)
        return 0;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !*v) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0"))
        return 0;
    *rv = dp_send_error(r, HTTP_BAD_REQUEST, "%s must be true or false, not '%s'.", key, v);
    return -1;
}


static int by_name_then_pid(const void *a, const void *b)
{
    const dp_proc_entry *x = *(dp_proc_entry *const *)a, *y = *(dp_proc_entry *const *)b;
    int c = strcasecmp(x->name, y->name);
    return c ? c : (x->pid > y->pid) - (x->pid < y->pid);
}

typedef struct list_filter {
    request_rec *r;
    long me;
    int all_users;
} list_filter;

static int keep_for_list(long uid, void *ctx)
{
    list_filter *f = ctx;
    return (f->all_users || uid == f->me) && dp_in_scope(f->r, uid);
}

/* A literal: its length is known at compile time. */
#define JW_LIT(w, s) dp_jw_raw((w), (s), sizeof(s) - 1)

/* ticks as seconds with three decimals, without floating point */
static void jw_seconds(dp_jsonw *w, unsigned long long ticks, long hz)
{
    unsigned long long ms = (ticks * 2000 / (unsigned long long)hz + 1) / 2;
    char num[24], frac[4] = { 0 };
    int i;

    dp_jw_raw(w, num, dp_format_int(num, (long long)(ms / 1000)));
    for (i = 2; i >= 0; i--, ms /= 10)
        frac[i] = (char)('0' + ms % 10);
    JW_LIT(w, ".");
    dp_jw_raw(w, frac, 3);
}

/* The list is polled by pages and fleets: it is written straight into the
 * output as JSON, with no tree of nodes per process, and with the little
 * formatting it needs done by hand (snprintf's parsing of its format was
 * most of the user-space time of a list). */
static void write_entry(dp_jsonw *w, const dp_proc_entry *e, const char *base, size_t baselen,
                        const char *machine, const char *user, const char *stamp,
                        const dp_roles *roles, long hz, long page)
{
    char num[24], cpu[64], started[48];

    dp_timespan_buf(cpu, sizeof(cpu), e->st.utime + e->st.stime, hz);
    dp_start_time_buf(started, sizeof(started), e->st.starttime);
    JW_LIT(w, "{\"id\":");
    dp_jw_int(w, e->pid);
    JW_LIT(w, ",\"name\":");
    dp_jw_cstr(w, e->name);
    JW_LIT(w, ",\"machineName\":");
    dp_jw_cstr(w, machine);
    JW_LIT(w, ",\"href\":\"");
    dp_jw_str_body(w, base, baselen);
    JW_LIT(w, "/");
    dp_jw_raw(w, num, dp_format_int(num, e->pid));
    JW_LIT(w, "\",\"user_name\":");
    dp_jw_cstr(w, user);
    JW_LIT(w, ",\"parent_id\":");
    dp_jw_int(w, e->st.ppid);
    JW_LIT(w, ",\"state\":");
    dp_jw_cstr(w, dp_state_word(e->st.state));
    JW_LIT(w, ",\"thread_count\":");
    dp_jw_int(w, e->st.num_threads);
    JW_LIT(w, ",\"working_set\":");
    dp_jw_int(w, e->st.rss * page);
    JW_LIT(w, ",\"total_cpu_time\":");
    dp_jw_cstr(w, cpu);
    JW_LIT(w, ",\"start_time\":");
    dp_jw_cstr(w, started);
    dp_jw_role(w, roles, e->pid);
    /* numbers for a live CPU %: two answers' cpu_times over their time_stamps */
    JW_LIT(w, ",\"cpu_times\":{\"user\":");
    jw_seconds(w, e->st.utime, hz);
    JW_LIT(w, ",\"system\":");
    jw_seconds(w, e->st.stime, hz);
    JW_LIT(w, "},\"time_stamp\":");
    dp_jw_cstr(w, stamp);
    JW_LIT(w, "}");
}

static void write_list(request_rec *r, const apr_array_header_t *sorted, const char *stamp,
                       dp_jsonw *w)
{
    const dp_roles *roles = dp_roles_take(r->pool);
    const char *base = dp_base_href(r), *machine = dp_instance_name(r->server), *user = NULL;
    long hz = dp_clock_ticks(), page = dp_page_size(), last_uid = -1;
    size_t baselen = strlen(base);
    int i;

    JW_LIT(w, "[");
    for (i = 0; i < sorted->nelts && !w->failed; i++) {
        const dp_proc_entry *e = APR_ARRAY_IDX(sorted, i, dp_proc_entry *);
        if (e->uid != last_uid) {       /* lists are mostly one user */
            user = dp_user_name(e->uid, r->pool);
            last_uid = e->uid;
        }
        if (i)
            JW_LIT(w, ",");
        write_entry(w, e, base, baselen, machine, user, stamp, roles, hz, page);
    }
    JW_LIT(w, "]");
}

static int flush_to_client(void *ctx, const char *buf, size_t len)
{
    request_rec *r = ctx;
    return ap_rwrite(buf, (int)len, r) < 0 || r->connection->aborted ? -1 : 0;
}

int dp_route_list(request_rec *r, const char **seg)
{
    apr_table_t *q = dp_query(r);
    list_filter f = { r, (long)geteuid(), 0 };
    apr_array_header_t *entries, *sorted;
    dp_jsonw *w = apr_palloc(r->pool, sizeof(*w));
    const char *stamp;
    int rv = OK, i;

    (void)seg;
    if (query_flag(q, "allUsers", &f.all_users, r, &rv) != 0)
        return rv;
    if (dp_wants_html(r))
        return dp_html_page(r);
    entries = dp_scan_procs(keep_for_list, &f, r->pool);
    stamp = dp_now_iso(r->pool);   /* the instant the scan ended, for every entry */
    /* sort pointers: the entries are a few hundred bytes each */
    sorted = apr_array_make(r->pool, entries->nelts, sizeof(dp_proc_entry *));
    for (i = 0; i < entries->nelts; i++)
        APR_ARRAY_PUSH(sorted, dp_proc_entry *) = &APR_ARRAY_IDX(entries, i, dp_proc_entry);
    qsort(sorted->elts, (size_t)sorted->nelts, sizeof(dp_proc_entry *), by_name_then_pid);
    ap_set_content_type(r, "application/json; charset=utf-8");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return DONE;
    dp_jw_init(w, flush_to_client, r);
    write_list(r, sorted, stamp, w);
    dp_jw_finish(w);
    return DONE;
}

