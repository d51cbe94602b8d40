/* httpd awareness from the scoreboard: roles of httpd's processes and the
 * requests its worker threads are serving. The scoreboard is shared memory
 * that workers rewrite all the time: each entry is copied out
 * (ap_copy_scoreboard_worker) and its strings terminated before use. */

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <dlfcn.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "scoreboard.h"
#include "mod_proxy.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "httpd/mod_diagproc_shared.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_html.h"
#include "httpd/mod_diagproc_attribution.h"
#include "httpd/mod_diagproc_where.h"
#include "common/actions.h"
#include "worker/requests_text.h"
#include "proc/procfs.h"
#include "common/format.h"
#include "common/capture.h"

APLOG_USE_MODULE(diagproc);

typedef struct thread_copy_extra {
    char uri[DP_SLOT_URI], vhost[64], unique_id[32], traceparent[64];
} thread_copy_extra;

typedef struct thread_copy {
    int slot, thread;
    pid_t pid, tid;
    unsigned char status;
    apr_time_t start_time;
    char client[64], vhost[32], request[64], protocol[16];
    thread_copy_extra x;        /* from our slot: empty when it is not this request's */
} thread_copy;

#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

/* Which slot and thread the request's connection occupies (event and worker
 * move connections between threads: the handle says where it is now). */
static int slot_of(conn_rec *c, int *child, int *thread)
{
    worker_score *ws, *first;
    long idx;
    int tl;

    if (!c->sbh || !ap_scoreboard_image)
        return -1;
    ws = ap_get_scoreboard_worker(c->sbh);
    first = ap_scoreboard_image->servers[0];
    tl = ap_scoreboard_image->global->thread_limit;
    if (!ws || ws < first || tl < 1)
        return -1;
    idx = ws - first;
    if (idx / tl >= ap_scoreboard_image->global->server_limit
        || ap_scoreboard_image->servers[idx / tl] + idx % tl != ws)
        return -1;
    *child = (int)(idx / tl);
    *thread = (int)(idx % tl);
    return 0;
}

/* The shared entry of the slot r's connection occupies; NULL when there is
 * none (no page, a subrequest or internal redirect, no slot). */
static dp_slot *slot_entry(request_rec *r, int *child, int *thread)
{
    dp_shared *sh = dp_shared_page();

    if (!sh || r->main || r->prev || slot_of(r->connection, child, thread) != 0
        || *child >= sh->server_limit || *thread >= sh->thread_limit)
        return NULL;
    return &sh->slots[(size_t)*child * (size_t)sh->thread_limit + (size_t)*thread];
}

/* Notes the kernel thread id of the thread reading this request: one store
 * into the slot's entry of the shared page, as the request is created, so
 * before the scoreboard shows the thread serving it. */
static int note_thread(request_rec *r)
{
    int child, thread;
    dp_slot *e = slot_entry(r, &child, &thread);

    if (e) {
        __atomic_store_n(&e->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
        __atomic_store_n(&e->pid, getpid(), __ATOMIC_RELEASE);
    }
    return DECLINED;
}

/* A string of the request for the slot, cut to the field (its bytes as
 * they are: JSON output makes them valid UTF-8, as for the scoreboard's). */
static void slot_str(char *dst, size_t cap, const char *src)
{
    apr_cpystrn(dst, src ? src : "", cap);
}

/* Notes what the scoreboard cuts or leaves out of this request -- its whole
 * URI, its vhost, UNIQUE_ID (mod_unique_id) and traceparent (W3C Trace
 * Context) -- once its headers are read, under the entry's sequence count. */
static int note_request(request_rec *r)
{
    int child, thread;
    worker_score ws;
    dp_slot *e = slot_entry(r, &child, &thread);

    if (!e)
        return DECLINED;
    ap_copy_scoreboard_worker(&ws, child, thread);
    dp_slot_write_begin(e);
    e->req_pid = getpid();
    e->req_count = ws.access_count;
    e->serving = 1;
    slot_str(e->uri, sizeof(e->uri), r->unparsed_uri);
    slot_str(e->vhost, sizeof(e->vhost), r->server->server_hostname);
    slot_str(e->unique_id, sizeof(e->unique_id), apr_table_get(r->subprocess_env, "UNIQUE_ID"));
    slot_str(e->traceparent, sizeof(e->traceparent), apr_table_get(r->headers_in, "traceparent"));
    dp_slot_write_end(e);
    return DECLINED;
}

/* mod_proxy's worker of a URL: its ap_proxy_get_worker and its module,
 * found at run time (this module does not need mod_proxy loaded). */
typedef proxy_worker *(*get_worker_fn)(apr_pool_t *, proxy_balancer *, proxy_server_conf *,
                                       const char *);

static proxy_worker *proxy_worker_of(request_rec *r, const char *url)
{
    static get_worker_fn get_worker;
    static module *proxy;
    static int looked;
    void *conf;

    if (!looked) {
        looked = 1;
        proxy = ap_find_linked_module("mod_proxy.c");
        get_worker = (get_worker_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "ap_proxy_get_worker");
    }
    if (!proxy || !get_worker || !(conf = ap_get_module_config(r->server->module_config, proxy)))
        return NULL;
    return get_worker(r->pool, NULL, conf, url);
}

/* Where a proxied request went when that is a process of this host, as
 * the slot keeps it: "unix:PATH" or "tcp:PORT" (a loopback host), else "".
 * From mod_proxy's worker of the URL (r->filename "proxy:URL", which no
 * longer names a unix socket: its worker does), or a SetHandler
 * "proxy:unix:PATH|..." in r->handler. */
static void backend_of(request_rec *r, char *out, size_t cap)
{
    const char *url = NULL;
    proxy_worker *w;
    apr_uri_t uri;

    out[0] = '\0';
    if (r->handler && !strncasecmp(r->handler, "proxy:unix:", 11)) {
        apr_snprintf(out, cap, "unix:%.*s", (int)strcspn(r->handler + 11, "|"), r->handler + 11);
        return;
    }
    if (r->filename && !strncmp(r->filename, "proxy:", 6))
        url = r->filename + 6;
    else if (r->handler && !strncmp(r->handler, "proxy:", 6))
        url = r->handler + 6;
    if (!url)
        return;
    if ((w = proxy_worker_of(r, url)) && w->s->uds_path[0]) {
        apr_snprintf(out, cap, "unix:%s", w->s->uds_path);
        return;
    }
    if (apr_uri_parse(r->pool, url, &uri) == APR_SUCCESS && uri.hostname && uri.port
        && (!strcasecmp(uri.hostname, "localhost") || !strncmp(uri.hostname, "127.", 4)
            || !strcmp(uri.hostname, "::1")))
        apr_snprintf(out, cap, "tcp:%u", (unsigned)uri.port);
}

/* Where the request is proxied to ("" when it is not), noted before
 * mod_proxy's handler runs: the site's profile labels a backend's samples
 * with the request sent to its pool, and finds the pool's processes from
 * it. */
static int note_backend(request_rec *r)
{
    int child, thread;
    dp_slot *e = slot_entry(r, &child, &thread);
    char backend[sizeof(e->backend)];

    if (!e)
        return DECLINED;
    backend_of(r, backend, sizeof(backend));
    if (strcmp(backend, e->backend)) {
        dp_slot_write_begin(e);
        memcpy(e->backend, backend, sizeof(backend));
        dp_slot_write_end(e);
    }
    return DECLINED;
}

/* The request is over once logged: a profile's samples of this thread are
 * no longer its. */
static int note_request_done(request_rec *r)
{
    int child, thread;
    dp_slot *e = slot_entry(r, &child, &thread);

    if (e && e->serving) {
        dp_slot_write_begin(e);
        e->serving = 0;
        dp_slot_write_end(e);
    }
    return DECLINED;
}

/* The slot's stored request into t when it is the one the scoreboard shows
 * (t's pid and access count); empty strings otherwise. */
static void slot_request(int child, int thread, unsigned long count, thread_copy_extra *x,
                         pid_t pid)
{
    dp_shared *sh = dp_shared_page();
    dp_slot e;

    memset(x, 0, sizeof(*x));
    if (!sh || child >= sh->server_limit || thread >= sh->thread_limit)
        return;
    if (dp_slot_copy(&sh->slots[(size_t)child * (size_t)sh->thread_limit + (size_t)thread],
                     &e) != 0 || e.req_pid != pid || e.req_count != count)
        return;
    memcpy(x->uri, e.uri, sizeof(x->uri));
    memcpy(x->vhost, e.vhost, sizeof(x->vhost));
    memcpy(x->unique_id, e.unique_id, sizeof(x->unique_id));
    memcpy(x->traceparent, e.traceparent, sizeof(x->traceparent));
}

static pid_t thread_tid(int child, int thread, pid_t pid)
{
    dp_shared *sh = dp_shared_page();
    dp_slot *e;

    if (!sh || child >= sh->server_limit || thread >= sh->thread_limit)
        return 0;
    e = &sh->slots[(size_t)child * (size_t)sh->thread_limit + (size_t)thread];
    if (__atomic_load_n(&e->pid, __ATOMIC_ACQUIRE) != pid)
        return 0;
    return __atomic_load_n(&e->tid, __ATOMIC_RELAXED);
}

/* --------------------------------------------------------------- threads */


static const char *status_word(unsigned char s)
{
    switch (s) {
    case SERVER_DEAD:           return "dead";
    case SERVER_STARTING:       return "starting";
    case SERVER_READY:          return "ready";
    case SERVER_BUSY_READ:      return "reading";
    case SERVER_BUSY_WRITE:     return "writing";
    case SERVER_BUSY_KEEPALIVE: return "keepalive";
    case SERVER_BUSY_LOG:       return "logging";
    case SERVER_BUSY_DNS:       return "dns";
    case SERVER_CLOSING:        return "closing";
    case SERVER_GRACEFUL:       return "graceful";
    case SERVER_IDLE_KILL:      return "idle-kill";
    default:                    return "unknown";
    }
}

/* A thread holds a request from the moment its line is read until it is
 * logged; "reading" with no request line yet is a connection, not a request. */
static int serving_request(const thread_copy *t)
{
    return t->status == SERVER_BUSY_WRITE || t->status == SERVER_BUSY_LOG
           || t->status == SERVER_BUSY_DNS
           || (t->status == SERVER_BUSY_READ && t->request[0]);
}

static void copy_thread(int slot, int thread, pid_t pid, thread_copy *t)
{
    worker_score ws;

    ap_copy_scoreboard_worker(&ws, slot, thread);
    memset(t, 0, sizeof(*t));
    t->slot = slot;
    t->thread = thread;
    t->pid = pid;
    t->status = ws.status;
    t->tid = thread_tid(slot, thread, pid);
    if (!ap_extended_status)
        return;     /* the other fields are only kept up to date with it */
    t->start_time = ws.start_time;
    memcpy(t->client, ws.client64, sizeof(t->client));
    memcpy(t->vhost, ws.vhost, sizeof(t->vhost));
    memcpy(t->request, ws.request, sizeof(t->request));
    memcpy(t->protocol, ws.protocol, sizeof(t->protocol));
    TERMINATE(t->client);
    TERMINATE(t->vhost);
    TERMINATE(t->request);
    TERMINATE(t->protocol);
    slot_request(slot, thread, ws.access_count, &t->x, pid);
}

static json_t *jtext(apr_pool_t *p, const char *s, size_t n)
{
    return json_string(dp_utf8(s, n, p));
}

static json_t *thread_json(request_rec *r, const thread_copy *t, apr_time_t now, int with_pid)
{
    json_t *o = json_object();
    int busy = serving_request(t);

    if (with_pid) {
        json_object_set_new(o, "pid", json_integer(t->pid));
        json_object_set_new(o, "process", json_string(dp_proc_href(r, t->pid)));
        json_object_set_new(o, "httpd_slot", json_integer(t->slot));
    }
    json_object_set_new(o, "thread", json_integer(t->thread));
    json_object_set_new(o, "tid", t->tid > 0 ? json_integer(t->tid) : json_null());
    if (t->tid > 0)
        json_object_set_new(o, "thread_href", json_string(apr_psprintf(
            r->pool, "%s/threads/%d", dp_proc_href(r, t->pid), (int)t->tid)));
    json_object_set_new(o, "state", json_string(status_word(t->status)));
    if (!ap_extended_status || !busy)
        return o;
    {
        /* "METHOD URI PROTOCOL" as httpd keeps it: at most 63 bytes */
        const char *req = t->request;
        size_t n = strlen(req);
        dp_request_line l;
        dp_split_request_line(req, &l);
        json_object_set_new(o, "client", t->client[0] ? jtext(r->pool, t->client,
                                                              strlen(t->client)) : json_null());
        /* the slot's copies where it has this request's: uncut */
        const char *vhost = t->x.vhost[0] ? t->x.vhost : t->vhost;
        json_object_set_new(o, "vhost", vhost[0] ? jtext(r->pool, vhost, strlen(vhost))
                                                 : json_null());
        json_object_set_new(o, "method", l.method_len ? jtext(r->pool, req, l.method_len)
                                                      : json_null());
        json_object_set_new(o, "uri", t->x.uri[0] ? jtext(r->pool, t->x.uri, strlen(t->x.uri))
                                                  : jtext(r->pool, req + l.uri_off, l.uri_len));
        json_object_set_new(o, "unique_id", t->x.unique_id[0]
                            ? jtext(r->pool, t->x.unique_id, strlen(t->x.unique_id))
                            : json_null());
        json_object_set_new(o, "traceparent", t->x.traceparent[0]
                            ? jtext(r->pool, t->x.traceparent, strlen(t->x.traceparent))
                            : json_null());
        json_object_set_new(o, "protocol", t->protocol[0] ? jtext(r->pool, t->protocol,
                                                                  strlen(t->protocol))
                                                          : json_null());
        json_object_set_new(o, "request", jtext(r->pool, req, n));
        json_object_set_new(o, "request_truncated",
                            json_boolean(n == sizeof(((worker_score *)0)->request) - 1));
        json_object_set_new(o, "seconds", t->start_time > 0 && now >= t->start_time
                            ? json_real((double)((now - t->start_time) / 1000) / 1000.0)
                            : json_null());
    }
    return o;
}

void dp_json_role(request_rec *r, json_t *o, pid_t pid)
{
    dp_roles *roles = dp_roles_take(r->pool);
    int slot, gen, j, tl;
    const char *role = dp_role_of(roles, pid, &slot, &gen);
    json_t *threads;
    apr_time_t now = apr_time_now();

    json_object_set_new(o, "httpd_role", role ? json_string(role) : json_null());
    if (!role)
        return;
    if (slot >= 0)
        json_object_set_new(o, "httpd_slot", json_integer(slot));
    if (gen >= 0)
        json_object_set_new(o, "httpd_generation", json_integer(gen));
    if (slot < 0 || !ap_scoreboard_image)
        return;
    threads = json_array();
    tl = ap_scoreboard_image->global->thread_limit;
    for (j = 0; j < tl; j++) {
        thread_copy t;
        copy_thread(slot, j, pid, &t);
        if (t.status != SERVER_DEAD)
            json_array_append_new(threads, thread_json(r, &t, now, 0));
    }
    json_object_set_new(o, "httpd_extended_status", json_boolean(ap_extended_status));
    json_object_set_new(o, "httpd_threads", threads);
}

/* ----------------------------------------------------------- P/requests */

static int longest_first(const void *a, const void *b)
{
    const thread_copy *x = a, *y = b;
    apr_time_t sx = x->start_time > 0 ? x->start_time : APR_INT64_MAX;
    apr_time_t sy = y->start_time > 0 ? y->start_time : APR_INT64_MAX;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->thread - y->thread;
}

int dp_route_requests(request_rec *r, const char **seg)
{
    apr_array_header_t *busy = apr_array_make(r->pool, 32, sizeof(thread_copy));
    apr_time_t now = apr_time_now();
    json_t *list, *o;
    int i, j, sl, tl;

    const char *stacks = apr_table_get(dp_query(r), "stacks");
    const char *fmt = apr_table_get(dp_query(r), "format");
    int with_stacks = stacks && strcmp(stacks, "0") != 0, rv;

    (void)seg;
    if (stacks && strcmp(stacks, "0") != 0 && strcmp(stacks, "1") != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "stacks '%s' is not 0 or 1.", stacks);
    if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0)
        return dp_send_error(r, HTTP_BAD_REQUEST, "format '%s' is unknown: use json (the "
                             "default) or text.", fmt);
    if (with_stacks && (rv = dp_require_allowed(r, DP_ACT_STACKS)) != OK)
        return rv;
    if (!ap_scoreboard_image)
        return dp_send_error(r, HTTP_SERVICE_UNAVAILABLE, "httpd's scoreboard is not "
                             "available in this process.");
    sl = ap_scoreboard_image->global->server_limit;
    tl = ap_scoreboard_image->global->thread_limit;
    for (i = 0; i < sl; i++) {
        process_score ps = *ap_get_scoreboard_process(i);
        long owner;
        if (ps.pid <= 0 || (owner = dp_proc_owner(ps.pid)) < 0 || !dp_in_scope(r, owner))
            continue;
        for (j = 0; j < tl; j++) {
            thread_copy t;
            copy_thread(i, j, ps.pid, &t);
            if (serving_request(&t))
                *(thread_copy *)apr_array_push(busy) = t;
        }
    }
    qsort(busy->elts, (size_t)busy->nelts, sizeof(thread_copy), longest_first);
    list = json_array();
    for (i = 0; i < busy->nelts; i++)
        json_array_append_new(list, thread_json(r, &APR_ARRAY_IDX(busy, i, thread_copy), now, 1));
    if (!r->header_only)
        dp_where_attach(r, list);       /* each proxied request's backend */
    if (with_stacks && !r->header_only)
        dp_attribute_requests(r, list);
    o = json_pack("{s:b,s:i,s:o}", "extended_status", ap_extended_status,
                  "count", busy->nelts, "requests", list);
    if (fmt && !strcmp(fmt, "text")) {
        char *text = dp_requests_text(r->pool, o);
        json_decref(o);
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_set_content_length(r, (apr_off_t)strlen(text));
        ap_rputs(text, r);
        return OK;
    }
    if (!fmt && dp_wants_html(r)) {
        json_decref(o);
        return dp_html_page(r);
    }
    return dp_send_json(r, HTTP_OK, o);
}

/* ------------------------------------------------- for the capture watcher */

int dp_scoreboard_inflight(dp_inflight *out, int max)
{
    int i, j, sl, tl, n = 0;

    if (!ap_scoreboard_image)
        return 0;
    sl = ap_scoreboard_image->global->server_limit;
    tl = ap_scoreboard_image->global->thread_limit;
    for (i = 0; i < sl && n < max; i++) {
        process_score ps = *ap_get_scoreboard_process(i);
        if (ps.pid <= 0)
            continue;
        for (j = 0; j < tl && n < max; j++) {
            thread_copy t;
            copy_thread(i, j, ps.pid, &t);
            if (!serving_request(&t))
                continue;
            memset(&out[n], 0, sizeof(out[n]));
            out[n].pid = t.pid;
            out[n].tid = t.tid;
            out[n].start_us = t.start_time;
            memcpy(out[n].request, t.request, sizeof(out[n].request));
            memcpy(out[n].uri, t.x.uri, sizeof(out[n].uri));
            memcpy(out[n].vhost, t.x.vhost[0] ? t.x.vhost : t.vhost, sizeof(t.vhost));
            memcpy(out[n].unique_id, t.x.unique_id, sizeof(out[n].unique_id));
            memcpy(out[n].traceparent, t.x.traceparent, sizeof(out[n].traceparent));
            if (!out[n].uri[0]) {       /* the scoreboard's cut request line */
                dp_request_line rl;
                dp_split_request_line(t.request, &rl);
                if (rl.uri_len < sizeof(out[n].uri)) {
                    memcpy(out[n].uri, t.request + rl.uri_off, rl.uri_len);
                    out[n].uri[rl.uri_len] = '\0';
                }
            }
            n++;
        }
    }
    return n;
}

/* ---------------------------------------------------------------- hooks */

static int shared_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s)
{
    (void)pconf; (void)plog; (void)ptemp; (void)s;
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        dp_shared_init();       /* before the helper and any worker is forked */
    return OK;
}

void dp_scoreboard_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(shared_post_config, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_create_request(note_thread, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(note_request, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_handler(note_backend, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_log_transaction(note_request_done, NULL, NULL, APR_HOOK_REALLY_LAST);
}
