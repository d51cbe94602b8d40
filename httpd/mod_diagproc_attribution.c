/* GET P/requests?stacks=1: each in-flight request joined with where its code
 * is -- the language frames of the thread serving it in the worker, or of
 * the local backend process at the other end of the worker's connection
 * (the "backend" the list already names) -- in one call, bounded: at most
 * DP_ATTRIB_MAX_REQUESTS requests, DP_ATTRIB_SECONDS in all, and each process
 * paused once however many requests it serves. A backend outside the
 * Location's DiagProcUsers is named, never read. */

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_attribution.h"
#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_log.h"
#include "httpd/mod_diagproc_phpreq.h"
#include "httpd/mod_diagproc_procs.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_stacks.h"
#include "common/actions.h"
#include "proc/procfs.h"

APLOG_USE_MODULE(diagproc);

#define DP_ATTRIB_MAX_REQUESTS 64
#define DP_ATTRIB_SECONDS 20

/* A process to read, and the requests it serves. */
typedef struct target {
    pid_t pid;
    int backend;                /* 1: the backend of proxied requests; 0: their worker */
    apr_array_header_t *reqs;   /* json_t * (borrowed from the list) */
} target;

static void set_where(json_t *req, json_t *where)
{
    json_object_set_new(req, "where", where);
}

/* The thread of a stacks answer that serves the request: the worker's
 * thread by its tid; in a backend, the thread running language code (the
 * main thread when none does). */
static json_t *serving_thread(json_t *stacks, int backend, long tid, long pid)
{
    json_t *threads = json_object_get(stacks, "threads"), *t, *main_thread = NULL;
    size_t i;

    json_array_foreach(threads, i, t) {
        long id = dp_json_long(t, "id");
        if (!backend && id == tid)
            return t;
        if (backend && json_array_size(json_object_get(t, "languageFrames")) > 0)
            return t;
        if (id == pid)
            main_thread = t;
    }
    return backend ? main_thread : NULL;
}

/* The frame a person reads first: the innermost language frame of the
 * site's code (one with a file: PHP's sleep() has none, its caller has),
 * else the innermost language frame, else the first native frame with a
 * function name. */
static void put_top_frame(json_t *where, json_t *thread)
{
    json_t *lang = json_object_get(thread, "languageFrames");
    json_t *native = json_object_get(thread, "frames"), *f;
    size_t i;

    if (json_array_size(lang) > 0) {
        f = json_array_get(lang, 0);
        json_array_foreach(lang, i, f)
            if (json_is_string(json_object_get(f, "file")))
                break;
        if (i == json_array_size(lang))
            f = json_array_get(lang, 0);
        json_object_set(where, "function", json_object_get(f, "function"));
        json_object_set(where, "class", json_object_get(f, "class"));
        json_object_set(where, "file", json_object_get(f, "file"));
        json_object_set(where, "line", json_object_get(f, "line"));
        return;
    }
    json_array_foreach(native, i, f) {
        if (json_is_string(json_object_get(f, "function"))) {
            json_object_set(where, "function", json_object_get(f, "function"));
            json_object_set_new(where, "class", json_null());
            json_object_set(where, "file", json_object_get(f, "file"));
            json_object_set(where, "line", json_object_get(f, "line"));
            return;
        }
    }
}

static json_t *where_base(request_rec *r, pid_t pid, long tid)
{
    const char *href = dp_proc_href(r, pid);
    return json_pack("{s:i,s:o,s:s,s:s}", "pid", (int)pid,
                     "tid", tid > 0 ? json_integer(tid) : json_null(),
                     "process", href, "stacks", apr_pstrcat(r->pool, href, "/stacks", NULL));
}

/* One target: paused once, each of its requests given its thread's place. */
static void read_target(request_rec *r, const target *tg, apr_time_t deadline)
{
    apr_time_t left = deadline - apr_time_now();
    dp_stacks_view *v;
    dp_error err = { 0 };
    json_t *stacks = NULL, *php = NULL;
    int i;
    char *name = NULL;
    dp_stat st;

    if (left < apr_time_from_sec(1)) {
        for (i = 0; i < tg->reqs->nelts; i++) {
            json_t *req = APR_ARRAY_IDX(tg->reqs, i, json_t *);
            json_t *w = where_base(r, tg->pid, tg->backend ? 0 : dp_json_long(req, "tid"));
            json_object_set_new(w, "error", json_sprintf("Not read: the call's %d s were "
                                                         "spent on the requests before it.",
                                                         DP_ATTRIB_SECONDS));
            set_where(req, w);
        }
        return;
    }
    if (dp_stacks_take(r, tg->pid, (unsigned)apr_time_sec(left) + 1, &v, &name, &err) == 0)
        stacks = dp_stacks_view_json(v, tg->pid, dp_proc_href(r, tg->pid));
    if (dp_read_stat(tg->pid, 0, &st, NULL) != 0)
        st.comm[0] = '\0';
    dp_audit_log(r, DP_ACT_STACKS, tg->pid, dp_proc_owner(tg->pid), st.comm,
                 stacks ? HTTP_OK : err.status);
    /* a PHP backend's own record of what it serves (php-fpm's children are
     * not in httpd's scoreboard) */
    if (stacks && tg->backend && json_is_object(json_object_get(stacks, "runtime"))
        && !strcmp(json_string_value(json_object_get(json_object_get(stacks, "runtime"), "name"))
                   ? json_string_value(json_object_get(json_object_get(stacks, "runtime"), "name"))
                   : "", "PHP")) {
        dp_php_request pr;
        dp_error perr = { 0 };
        if (dp_php_request_read(r, tg->pid, &pr, &perr) == 1)
            php = json_pack("{s:s,s:s,s:s,s:s}", "method", pr.method, "uri", pr.uri,
                            "query", pr.query, "script", pr.script);
    }
    for (i = 0; i < tg->reqs->nelts; i++) {
        json_t *req = APR_ARRAY_IDX(tg->reqs, i, json_t *);
        long tid = tg->backend ? 0 : dp_json_long(req, "tid");
        json_t *w = where_base(r, tg->pid, tid), *th;
        if (!stacks) {
            json_object_set_new(w, "error", json_string(err.msg[0] ? err.msg : "no stacks"));
            set_where(req, w);
            continue;
        }
        json_object_set(w, "runtime", json_object_get(stacks, "runtime"));
        json_object_set(w, "pausedMicroseconds", json_object_get(stacks, "pausedMicroseconds"));
        th = serving_thread(stacks, tg->backend, tid, tg->pid);
        if (th) {
            if (tg->backend)
                json_object_set(w, "tid", json_object_get(th, "id"));
            put_top_frame(w, th);
            json_object_set(w, "languageFrames", json_object_get(th, "languageFrames"));
            json_object_set(w, "frames", json_object_get(th, "frames"));
        }
        else
            json_object_set_new(w, "error", json_string("The thread serving it was not "
                                                        "among the stacks (it ended)."));
        if (php)
            json_object_set(w, "request", php);
        set_where(req, w);
    }
    json_decref(php);
    json_decref(stacks);
}

int dp_attribute_requests(request_rec *r, json_t *list)
{
    apr_hash_t *targets = apr_hash_make(r->pool);
    apr_array_header_t *order = apr_array_make(r->pool, 16, sizeof(target *));
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(DP_ATTRIB_SECONDS);
    json_t *req;
    size_t i;
    int k;

    json_array_foreach(list, i, req) {
        json_t *be = json_object_get(req, "backend");
        pid_t pid = (pid_t)dp_json_long(req, "pid");
        int backend = 0;
        target *tg;
        long owner;

        if (i >= DP_ATTRIB_MAX_REQUESTS) {
            set_where(req, json_pack("{s:s}", "error", apr_psprintf(
                r->pool, "Not read: one call reads the first %d requests.",
                DP_ATTRIB_MAX_REQUESTS)));
            continue;
        }
        if (be && json_is_true(json_object_get(be, "remote")))
            continue;       /* its code is on another host: the backend says where */
        if (be && dp_json_long(be, "pid") > 0) {
            pid = (pid_t)dp_json_long(be, "pid");
            backend = 1;
        }
        if (pid <= 0)
            continue;
        if (!backend && pid == getpid() && dp_json_long(req, "tid") == (long)syscall(SYS_gettid)) {
            json_t *w = where_base(r, pid, dp_json_long(req, "tid"));
            json_object_set_new(w, "error", json_string("This request: the one asking."));
            set_where(req, w);
            continue;
        }
        if ((owner = dp_proc_owner(pid)) < 0 || !dp_in_scope(r, owner)) {
            json_t *w = where_base(r, pid, backend ? 0 : dp_json_long(req, "tid"));
            json_object_set_new(w, "error", json_string(owner < 0
                ? "Not read: the process has ended."
                : apr_psprintf(r->pool, "Not read: process %d belongs to user '%s', outside "
                               "this location's scope (DiagProcUsers).", (int)pid,
                               dp_user_name(owner, r->pool))));
            set_where(req, w);
            continue;
        }
        tg = apr_hash_get(targets, &pid, sizeof(pid));
        if (!tg) {
            tg = apr_pcalloc(r->pool, sizeof(*tg));
            tg->pid = pid;
            tg->backend = backend;
            tg->reqs = apr_array_make(r->pool, 4, sizeof(json_t *));
            apr_hash_set(targets, &tg->pid, sizeof(tg->pid), tg);
            APR_ARRAY_PUSH(order, target *) = tg;
        }
        APR_ARRAY_PUSH(tg->reqs, json_t *) = req;
    }
    for (k = 0; k < order->nelts; k++)
        read_target(r, APR_ARRAY_IDX(order, k, target *), deadline);
    return order->nelts;
}
