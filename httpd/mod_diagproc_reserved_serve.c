/* The reserved diagnostics process itself. Its set-up after the fork, its
 * serving threads, and how they serve a connection a turn at a time: the
 * connection loop (mod_diagproc_reserved_loop.c) hands a connection over
 * when it has something to serve; httpd's process_connection hooks run
 * (mod_ssl's handshake, mod_http2's session, then ours for HTTP/1, ahead of
 * httpd's own HTTP/1 loop, which would wait for the next keep-alive request
 * on the thread); and the connection goes back to the loop to wait, as the
 * event MPM's connections go back to its listener thread. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_vhost.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "apr_portable.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_log.h"
#include "httpd/mod_diagproc_reserved_ahead.h"
#include "httpd/mod_diagproc_reserved_loop.h"
#include "httpd/mod_diagproc_reserved_queue.h"
#include "httpd/mod_diagproc_reserved_serve.h"

APLOG_USE_MODULE(diagproc);

#define HEAD_TIME apr_time_from_sec(DP_LOOP_HEAD_SECONDS)

enum { NOT_YET, READY, GONE };

typedef struct serve_thread {
    apr_thread_t *thread;
    int slot;
} serve_thread;

static server_rec *srv;
static apr_pool_t *pchild;
static module *event_mpm;
static int async_mpm;
static long next_id;                    /* connection ids, above every worker's */
static __thread char *scratch;          /* a serving thread's DP_LOOP_HEAD_MAX bytes */

/* ------------------------------------------------------ a connection */

/* The event MPM's pre_read_request hook stores the request in its private
 * per-connection state, the mpm_event_module slot of c->conn_config, without
 * checking that the slot is set: on a connection the MPM did not create it
 * would write through NULL (its post_read_request and protocol_switch hooks
 * write there too). The connections created here therefore carry a zeroed
 * block, far larger than that state (a few hundred bytes in 2.4), in the
 * slot. This is the one place that depends on an MPM internal; worker and
 * prefork keep no such state. */
#define DP_MPM_CONN_STATE_ROOM 4096

static void provide_mpm_conn_state(conn_rec *c)
{
    if (event_mpm)
        ap_set_module_config(c->conn_config, event_mpm,
                             apr_pcalloc(c->pool, DP_MPM_CONN_STATE_ROOM));
}

static void forget(dp_conn *cn)
{
    cn->pool = NULL;
    cn->c = NULL;
    cn->csd = NULL;
    cn->cs = NULL;
    cn->bb = NULL;
    cn->ahead = NULL;
    cn->read_ahead = NULL;
}

/* Its pool (with its own allocator: connections move between threads),
 * socket and conn_rec, then the vhost and the pre_connection hooks, as
 * ap_process_connection does. */
static int create_conn(serve_thread *st, dp_conn *cn)
{
    apr_allocator_t *alloc;
    apr_os_sock_info_t info;
    apr_bucket_alloc_t *ba;
    conn_rec *c;

    if (apr_allocator_create(&alloc) != APR_SUCCESS) {
        close(cn->fd);
        return 0;
    }
    apr_allocator_max_free_set(alloc, ap_max_mem_free ? ap_max_mem_free : 2048 * 1024);
    apr_pool_create_ex(&cn->pool, pchild, NULL, alloc);
    apr_allocator_owner_set(alloc, cn->pool);
    apr_pool_tag(cn->pool, "diagproc_reserved_conn");
    memset(&info, 0, sizeof(info));
    info.os_sock = &cn->fd;
    info.local = (struct sockaddr *)&cn->local;
    info.remote = (struct sockaddr *)&cn->peer;
    info.family = cn->family;
    info.type = SOCK_STREAM;
    info.protocol = APR_PROTO_TCP;
    if (apr_os_sock_make(&cn->csd, &info, cn->pool) != APR_SUCCESS) {
        close(cn->fd);
        apr_pool_destroy(cn->pool);
        forget(cn);
        return 0;
    }
    ba = apr_bucket_alloc_create(cn->pool);
    /* ids the workers never use: theirs are below ServerLimit * ThreadLimit */
    c = ap_run_create_connection(cn->pool, srv, cn->csd,
                                 __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED), NULL, ba);
    if (!c) {
        apr_pool_destroy(cn->pool);     /* closes the socket */
        forget(cn);
        return 0;
    }
    cn->c = c;
    cn->bb = apr_brigade_create(cn->pool, ba);
    /* as the MPM's own: event's connections carry a state (mod_http2 hands
     * an idle session back through it), worker's and prefork's none */
    if (async_mpm)
        c->cs = cn->cs = apr_pcalloc(cn->pool, sizeof(*cn->cs));
    c->clogging_input_filters = 1;
    c->current_thread = st->thread;
    provide_mpm_conn_state(c);
    ap_set_module_config(c->conn_config, &diagproc_module, cn);
    ap_update_vhost_given_ip(c);
    ap_pre_connection(c, cn->csd);
    if (cn->opaque && !c->aborted)
        dp_ahead_add(cn);
    return 1;
}

/* Closed as httpd closes a connection: the pre_close hooks (mod_http2's
 * GOAWAY, mod_ssl's close_notify), what is left written, shut for writing;
 * then, if linger, a dup of the socket for the loop to drain. */
static void end_conn(dp_conn *cn, int linger)
{
    conn_rec *c = cn->c;

    cn->next = DP_NEXT_CLOSED;
    if (c && ap_get_conn_socket(c) && ap_start_lingering_close(c) == 0 && linger) {
        cn->linger_fd = fcntl(cn->fd, F_DUPFD_CLOEXEC, 0);
        if (cn->linger_fd >= 0)
            cn->next = DP_NEXT_LINGER;
    }
    if (cn->pool)
        apr_pool_destroy(cn->pool);     /* closes the socket */
    forget(cn);
}

/* Whether the request head in buf[0..len) is whole: 1, 0, or -1 when it
 * cannot be (larger than the loop lets heads be). */
static int head_whole(const char *buf, apr_size_t len)
{
    apr_size_t i, skip = 0;

    while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    for (i = skip; i < len; i++)
        if (buf[i] == '\n' && ((i + 1 < len && buf[i + 1] == '\n')
                               || (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')))
            return 1;
    return len >= DP_LOOP_HEAD_MAX ? -1 : 0;
}

/* Whether a request is there to serve, without blocking. Plain HTTP/1:
 * its whole head in what httpd's input filters have and can read now.
 * Opaque: what the read-ahead filter could decrypt now (the TLS handshake
 * goes on meanwhile): a whole HTTP/1 head, or any bytes of an HTTP/2
 * session (chosen by ALPN: its frames are mod_http2's to read). */
static int request_ready(dp_conn *cn)
{
    conn_rec *c = cn->c;
    apr_size_t len = DP_LOOP_HEAD_MAX;
    apr_status_t rv;
    int whole;

    if (cn->opaque) {
        apr_off_t have = dp_ahead_fill(cn, DP_LOOP_HEAD_MAX);
        if (have <= 0)
            return have < 0 || c->aborted ? GONE : NOT_YET;
        if (strcmp(ap_get_protocol(c), AP_PROTOCOL_HTTP1))
            return READY;
        dp_ahead_peek(cn, scratch, &len);
    }
    else {
        apr_brigade_cleanup(cn->bb);
        rv = ap_get_brigade(c->input_filters, cn->bb, AP_MODE_SPECULATIVE, APR_NONBLOCK_READ,
                            DP_LOOP_HEAD_MAX);
        if (APR_STATUS_IS_EAGAIN(rv))
            return NOT_YET;
        if (rv != APR_SUCCESS || c->aborted
            || apr_brigade_flatten(cn->bb, scratch, &len) != APR_SUCCESS) {
            apr_brigade_cleanup(cn->bb);
            return GONE;
        }
        apr_brigade_cleanup(cn->bb);
    }
    whole = head_whole(scratch, len);
    return whole > 0 ? READY : whole < 0 ? GONE : NOT_YET;
}

/* Output the connection still holds, sent before it waits. */
static void flush_output(dp_conn *cn)
{
    conn_rec *c = cn->c;

    apr_brigade_cleanup(cn->bb);
    APR_BRIGADE_INSERT_TAIL(cn->bb, apr_bucket_flush_create(c->bucket_alloc));
    if (ap_pass_brigade(c->output_filters, cn->bb) != APR_SUCCESS)
        c->aborted = 1;
    apr_brigade_cleanup(cn->bb);
}

/* Where the connection waits next: our HTTP/1 hook said so, or another
 * protocol (mod_http2) left it in c->cs as it would for the event MPM. */
static void after_turn(dp_conn *cn)
{
    conn_rec *c = cn->c;
    dp_next next = cn->next;

    if (c->aborted) {
        end_conn(cn, 0);
        return;
    }
    if (next == DP_NEXT_NONE && c->cs) {
        if (c->cs->state == CONN_STATE_WRITE_COMPLETION) {
            if (c->data_in_output_filters)
                flush_output(cn);   /* the event MPM's write completion */
            next = c->cs->sense == CONN_SENSE_WANT_READ ? DP_NEXT_READ : DP_NEXT_REQUEST;
        }
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 135)
        /* httpd 2.4.63 and later: a session waiting on its I/O (mod_http2);
           before, mod_http2 waits in write completion with a sense */
        else if (c->cs->state == CONN_STATE_ASYNC_WAITIO)
            next = c->cs->sense == CONN_SENSE_WANT_WRITE ? DP_NEXT_WRITE : DP_NEXT_READ;
#endif
        cn->wait = next == DP_NEXT_REQUEST ? c->base_server->keep_alive_timeout
                                           : c->base_server->timeout;
    }
    if (c->aborted || dp_queue_stopping() || next == DP_NEXT_NONE || next == DP_NEXT_LINGER) {
        end_conn(cn, 1);
        return;
    }
    cn->next = next;
}

/* One turn of a connection on a serving thread. */
static void serve_turn(serve_thread *st, dp_conn *cn)
{
    int fresh = !cn->c;

    if (fresh && !create_conn(st, cn)) {
        cn->next = DP_NEXT_CLOSED;
        return;
    }
    cn->c->current_thread = st->thread;
    if (fresh && cn->c->aborted) {
        end_conn(cn, 0);
        return;
    }
    if (cn->check) {
        switch (request_ready(cn)) {
        case NOT_YET:
            cn->next = DP_NEXT_MORE;
            return;
        case GONE:
            end_conn(cn, 0);
            return;
        }
        if (!dp_queue_try_turn(cn)) {
            cn->next = DP_NEXT_RUN;
            return;
        }
    }
    if (!cn->resume)
        dp_queue_head_due(cn, dp_queue_now() + HEAD_TIME);
    cn->next = DP_NEXT_NONE;
    if (cn->cs) {
        cn->cs->state = CONN_STATE_READ_REQUEST_LINE;
        cn->cs->sense = CONN_SENSE_DEFAULT;
    }
    ap_run_process_connection(cn->c);
    /* before anything may close the socket: the loop shuts it until then */
    dp_queue_head_read(cn, 0);
    after_turn(cn);
}

static void *APR_THREAD_FUNC serve_loop(apr_thread_t *thd, void *data)
{
    serve_thread *st = data;
    dp_conn *cn;

    st->thread = thd;
    scratch = malloc(DP_LOOP_HEAD_MAX);
    if (!scratch)
        return NULL;
    while ((cn = dp_queue_next(st->slot)) != NULL) {
        if (cn->closing) {
            /* dropped by the loop (timed out, or room made): socket shut */
            if (cn->c)
                cn->c->aborted = 1;
            end_conn(cn, 0);
        }
        else
            serve_turn(st, cn);
        dp_queue_give_back(st->slot, cn);
    }
    free(scratch);
    return NULL;
}

static void *APR_THREAD_FUNC loop_main(apr_thread_t *thd, void *data)
{
    (void)thd; (void)data;
    dp_loop_run();
    return NULL;
}

/* ------------------------------------------------------ hooks */

/* HTTP/1 on our connections, ahead of httpd's own loop (REALLY_LAST),
 * which would wait for the next keep-alive request on this thread: serve
 * the requests whose heads are here, then give the connection back. */
static int serve_http1(conn_rec *c)
{
    dp_conn *cn = c->master ? NULL : ap_get_module_config(c->conn_config, &diagproc_module);

    if (!cn)
        return DECLINED;
    for (;;) {
        request_rec *r = ap_read_request(c);
        apr_interval_time_t ka;

        dp_queue_head_read(cn, r != NULL);
        if (!r)
            break;
        ka = r->server->keep_alive_timeout_set ? r->server->keep_alive_timeout
                                               : c->base_server->keep_alive_timeout;
        if (r->status == HTTP_OK) {
            if (c->cs)
                c->cs->state = CONN_STATE_HANDLER;
            ap_process_request(r);
        }
        if (c->keepalive != AP_CONN_KEEPALIVE || c->aborted || dp_queue_stopping())
            break;
        cn->wait = ka;
        if (!c->data_in_input_filters) {
            cn->next = DP_NEXT_REQUEST;
            return OK;
        }
        /* pipelined: serve the next one now only if its whole head is here */
        switch (request_ready(cn)) {
        case READY:
            continue;
        case NOT_YET:
            /* ap_process_request did not flush, with input pending */
            flush_output(cn);
            cn->next = DP_NEXT_MORE;
            return OK;
        }
        break;
    }
    cn->next = DP_NEXT_LINGER;
    return OK;
}

/* Every request head read on our connections (an HTTP/2 stream's too). */
static int serve_post_read_request(request_rec *r)
{
    conn_rec *c1 = r->connection->master ? r->connection->master : r->connection;
    dp_conn *cn = ap_get_module_config(c1->conn_config, &diagproc_module);
    const char *cl;

    if (!cn)
        return DECLINED;
    dp_queue_head_read(cn, 1);
    /* an upgrade to h2c would run a whole HTTP/2 session on this request's
     * thread: HTTP/2 here comes with TLS (ALPN) or prior knowledge only */
    apr_table_unset(r->headers_in, "Upgrade");
    /* the diagproc routes read no body, and a body sent slowly would hold the
     * thread while httpd discards it: close after the answer instead (httpd
     * then never reads it; the loop drains it in the lingering close) */
    if (!r->connection->master
        && (apr_table_get(r->headers_in, "Transfer-Encoding")
            || ((cl = apr_table_get(r->headers_in, "Content-Length")) && strcmp(cl, "0"))))
        r->connection->keepalive = AP_CONN_CLOSE;
    return DECLINED;
}

void dp_reserved_serve_register_hooks(void)
{
    ap_hook_process_connection(serve_http1, NULL, NULL, APR_HOOK_REALLY_LAST - 1);
    ap_hook_post_read_request(serve_post_read_request, NULL, NULL, APR_HOOK_MIDDLE);
    dp_ahead_register();
}

/* ------------------------------------------------------ the process */

static void restore_signals(sigset_t *waited)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    /* every thread blocks them; the main thread takes them with sigwait */
    sigemptyset(waited);
    sigaddset(waited, SIGTERM);
    sigaddset(waited, SIGINT);
    sigaddset(waited, SIGHUP);
    sigaddset(waited, AP_SIG_GRACEFUL);
    sigaddset(waited, AP_SIG_GRACEFUL_STOP);
    pthread_sigmask(SIG_SETMASK, waited, NULL);
}

/* The order matters (each step was needed): thread bookkeeping after fork,
 * signals, a child pool, the site's listeners closed, privileges dropped,
 * child_init run. Never exits with APEXIT_CHILDFATAL, which would make the
 * parent shut the whole server down. */
static void set_up(server_rec *s, pid_t parent, apr_pool_t *pool, sigset_t *waited)
{
    apr_thread_t *main_thread;
    apr_allocator_t *alloc;
    apr_thread_mutex_t *mutex;
    int sl = 0, tl = 0;

    ap_thread_current_after_fork();
    restore_signals(waited);
    ap_fatal_signal_child_setup(s);
    apr_allocator_create(&alloc);
    apr_pool_create_ex(&pchild, pool, NULL, alloc);
    apr_allocator_owner_set(alloc, pchild);
    apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_allocator_mutex_set(alloc, mutex);
    apr_pool_tag(pchild, "diagproc_reserved");
    if (ap_thread_main_create(&main_thread, pchild) != APR_SUCCESS)
        exit(1);
    ap_close_listeners();
    if (ap_run_drop_privileges(pchild, s) != OK)
        exit(1);
    /* after the credential change, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != parent)
        exit(0);
    ap_run_child_init(pchild, s);
    srv = s;
    event_mpm = ap_find_linked_module("event.c");
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async_mpm);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &sl);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &tl);
    next_id = (long)sl * tl;
}

void dp_reserved_serve(server_rec *s, pid_t parent, apr_pool_t *pool, const int *fds, int n)
{
    serve_thread threads[DP_LOOP_THREADS];
    apr_thread_t *loop = NULL;
    sigset_t waited;
    apr_status_t rv;
    int i, running = 0;

    set_up(s, parent, pool, &waited);
    if (dp_loop_create(s, fds, n) != APR_SUCCESS
        || ap_thread_create(&loop, NULL, loop_main, NULL, pchild) != APR_SUCCESS)
        exit(1);
    for (i = 0; i < DP_LOOP_THREADS; i++) {
        memset(&threads[i], 0, sizeof(threads[i]));
        threads[i].slot = i;
        if (ap_thread_create(&threads[i].thread, NULL, serve_loop, &threads[i], pchild)
            == APR_SUCCESS)
            running++;
    }
    if (!running)
        exit(1);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, DPLOGNO(00015)
                 "diagproc: reserved process %d serving %d listener(s) with %d threads",
                 (int)getpid(), n, running);
    for (;;) {
        int sig = 0;
        if (sigwait(&waited, &sig) != 0)
            continue;
        if (sig == AP_SIG_GRACEFUL || sig == AP_SIG_GRACEFUL_STOP)
            break;
        /* TERM, INT, HUP: at once, even with a client in a blocking read */
        _exit(0);
    }
    /* graceful: take no new connection, finish those being served */
    dp_loop_stop();
    apr_thread_join(&rv, loop);
    for (i = 0; i < DP_LOOP_THREADS; i++)
        if (threads[i].thread)
            apr_thread_join(&rv, threads[i].thread);
    exit(0);
}
