/* The reserved diagnostics process. When every worker thread is stuck (a
 * backend that never answers, a wedged interpreter), the diagnostics routes
 * are needed most and cannot be reached through the site's listeners. So
 * the parent opens the DiagProcListen sockets itself and forks one process
 * for them, supervised like mod_cgid's daemon: restarted when it dies,
 * replaced on every restart, stopped on shutdown. It runs as User, holds no
 * listener of the site, and runs each connection through httpd's own
 * create_connection / process_connection on a small fixed pool of threads,
 * so <Location>, Require, authentication, logging and filters apply as
 * anywhere; but it answers only the diagproc handler (anything else is 404),
 * so no site code ever runs in it. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "scoreboard.h"
#include "unixd.h"
#include "apr_portable.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_reserved.h"
#include "httpd/mod_diagproc_shared.h"

APLOG_USE_MODULE(diagproc);

#define DP_RESERVED_THREADS    2      /* one idle client must not block it */
#define DP_RESERVED_MAX_OLD    8
#define DP_POLL_MS             250    /* how soon a graceful stop is noticed */

/* ------------------------------------------------------ retained state */

/* The parent's state outlives the module's statics, which are reset when
 * the DSO is reloaded on a restart: a socket opened once must stay open
 * (or the next graceful restart fails with EADDRINUSE), and the process of
 * the previous generation must still be reaped. The version is in the key:
 * a new build with another layout must not read an old one. */
#define DP_RESERVED_KEY "mod_diagproc reserved process v1"

typedef struct reserved_listener {
    char spec[DP_LISTEN_SPEC_MAX];  /* as written in DiagProcListen */
    int fd;                     /* -1: not open */
    int family;
} reserved_listener;

typedef struct reserved_state {
    reserved_listener l[DP_RESERVED_MAX_LISTEN];
    int nlisten;
    apr_proc_t current;         /* pid 0: none running */
    int current_generation;
    int forked_config_gen;      /* AP_SQ_CONFIG_GEN it was forked for; 0 = none */
    apr_proc_t old[DP_RESERVED_MAX_OLD];   /* earlier generations finishing */
} reserved_state;

static reserved_state *state;

/* This generation's pool (pconf). */
static apr_pool_t *gen_pool;

/* Set in the reserved process only. */
static int in_reserved;
static volatile sig_atomic_t graceful_stop;

static int dp_reserved_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    gen_pool = pconf;
    return OK;
}

/* ------------------------------------------------------ parent: sockets */

static int open_listener(reserved_listener *l, server_rec *s)
{
    char *host = NULL, *scope = NULL;
    apr_port_t port = 0;
    apr_sockaddr_t *sa;
    int fd, one = 1;
    apr_pool_t *tmp;

    apr_pool_create(&tmp, gen_pool);
    if (apr_parse_addr_port(&host, &scope, &port, l->spec, tmp) != APR_SUCCESS
        || apr_sockaddr_info_get(&sa, host, host ? APR_UNSPEC : APR_INET, port, 0, tmp)
           != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, DPLOGNO(00013)
                     "diagproc: DiagProcListen %s: cannot resolve the address", l->spec);
        apr_pool_destroy(tmp);
        return -1;
    }
    fd = socket(sa->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(fd, (struct sockaddr *)&sa->sa, sa->salen) != 0 || listen(fd, 128) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00014)
                     "diagproc: DiagProcListen %s: cannot listen (the reserved process "
                     "will not serve it)", l->spec);
        if (fd >= 0)
            close(fd);
        apr_pool_destroy(tmp);
        return -1;
    }
    l->fd = fd;
    l->family = sa->family;
    apr_pool_destroy(tmp);
    return 0;
}

/* Keeps the sockets still configured (their backlog survives the restart),
 * opens new ones, closes the rest. Never fails the restart: an address that
 * cannot be opened is logged and left out. */
static void sync_listeners(server_rec *s)
{
    reserved_listener keep[DP_RESERVED_MAX_LISTEN];
    int i, j, n = 0, nconfigured;
    const char *const *configured = dp_config_listen(&nconfigured);

    for (i = 0; i < nconfigured; i++) {
        reserved_listener l;
        memset(&l, 0, sizeof(l));
        l.fd = -1;
        apr_cpystrn(l.spec, configured[i], sizeof(l.spec));
        for (j = 0; j < state->nlisten; j++)
            if (state->l[j].fd >= 0 && !strcmp(state->l[j].spec, l.spec)) {
                l = state->l[j];
                state->l[j].fd = -1;
                break;
            }
        if (l.fd < 0 && open_listener(&l, s) != 0)
            continue;
        keep[n++] = l;
    }
    for (j = 0; j < state->nlisten; j++)
        if (state->l[j].fd >= 0)
            close(state->l[j].fd);
    memcpy(state->l, keep, sizeof(keep[0]) * (size_t)n);
    state->nlisten = n;
}

/* ------------------------------------------------------ the child */

/* The event MPM's pre_read_request hook stores the request in its private
 * per-connection state, the mpm_event_module slot of c->conn_config, without
 * checking that the slot is set: on a connection the MPM did not create it
 * would write through NULL (its post_read_request and protocol_switch hooks
 * write there too). The connections created here therefore carry a zeroed
 * block, far larger than that state (a few hundred bytes in 2.4), in the
 * slot. This is the one place that depends on an MPM internal; worker and
 * prefork keep no such state. */
#define DP_MPM_CONN_STATE_ROOM 4096
static module *event_mpm;

static void provide_mpm_conn_state(conn_rec *c)
{
    if (event_mpm)
        ap_set_module_config(c->conn_config, event_mpm,
                             apr_pcalloc(c->pool, DP_MPM_CONN_STATE_ROOM));
}

typedef struct serve_thread {
    apr_thread_t *thread;
    apr_pool_t *ptrans;         /* per connection, cleared after each */
    int index;
    long next_id;
    server_rec *s;
} serve_thread;

static void serve_connection(serve_thread *st, int fd, const reserved_listener *l,
                             struct sockaddr_storage *peer)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    apr_os_sock_info_t info;
    apr_socket_t *csd = NULL;
    apr_bucket_alloc_t *ba;
    conn_rec *c;

    memset(&info, 0, sizeof(info));
    getsockname(fd, (struct sockaddr *)&local, &llen);
    info.os_sock = &fd;
    info.local = (struct sockaddr *)&local;
    info.remote = (struct sockaddr *)peer;
    info.family = l->family;
    info.type = SOCK_STREAM;
    info.protocol = APR_PROTO_TCP;
    if (apr_os_sock_make(&csd, &info, st->ptrans) != APR_SUCCESS) {
        close(fd);
        return;
    }
    ba = apr_bucket_alloc_create(st->ptrans);
    /* ids the workers never use: theirs are below ServerLimit * ThreadLimit */
    c = ap_run_create_connection(st->ptrans, st->s, csd, st->next_id, NULL, ba);
    st->next_id += DP_RESERVED_THREADS;
    if (!c) {
        apr_socket_close(csd);
        return;
    }
    c->current_thread = st->thread;
    /* no MPM owns this connection: httpd's synchronous request loop */
    c->clogging_input_filters = 1;
    provide_mpm_conn_state(c);
    ap_process_connection(c, csd);
    ap_lingering_close(c);
}

static void *APR_THREAD_FUNC serve_loop(apr_thread_t *thd, void *data)
{
    serve_thread *st = data;
    struct pollfd pfd[DP_RESERVED_MAX_LISTEN];
    int i;

    st->thread = thd;
    for (i = 0; i < state->nlisten; i++) {
        pfd[i].fd = state->l[i].fd;
        pfd[i].events = POLLIN;
    }
    while (!graceful_stop) {
        /* the sockets are non-blocking: the other thread (or, during a
         * graceful restart, the next generation) may take a connection first */
        if (poll(pfd, (nfds_t)state->nlisten, DP_POLL_MS) <= 0)
            continue;
        for (i = 0; i < state->nlisten && !graceful_stop; i++) {
            struct sockaddr_storage peer;
            socklen_t plen = sizeof(peer);
            int fd;
            if (!(pfd[i].revents & POLLIN))
                continue;
            fd = accept4(pfd[i].fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            serve_connection(st, fd, &state->l[i], &peer);
            apr_pool_clear(st->ptrans);
        }
    }
    return NULL;
}

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
 * child_init run; then the threads. Never exits with APEXIT_CHILDFATAL,
 * which would make the parent shut the whole server down. */
static void reserved_main(server_rec *s, pid_t parent)
{
    apr_pool_t *pchild;
    apr_thread_t *main_thread;
    serve_thread threads[DP_RESERVED_THREADS];
    apr_allocator_t *alloc;
    apr_thread_mutex_t *mutex;
    sigset_t waited;
    int i, sl = 0, tl = 0, running = 0;

    ap_thread_current_after_fork();
    restore_signals(&waited);
    ap_fatal_signal_child_setup(s);
    apr_allocator_create(&alloc);
    apr_pool_create_ex(&pchild, gen_pool, NULL, alloc);
    apr_allocator_owner_set(alloc, pchild);
    apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
    apr_allocator_mutex_set(alloc, mutex);
    apr_pool_tag(pchild, "diagproc_reserved");
    if (ap_thread_main_create(&main_thread, pchild) != APR_SUCCESS)
        exit(1);
    ap_close_listeners();
    in_reserved = 1;
    if (ap_run_drop_privileges(pchild, s) != OK)
        exit(1);
    /* after the credential change, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != parent)
        exit(0);
    ap_run_child_init(pchild, s);
    event_mpm = ap_find_linked_module("event.c");

    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &sl);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &tl);
    for (i = 0; i < DP_RESERVED_THREADS; i++) {
        apr_allocator_t *ta;
        memset(&threads[i], 0, sizeof(threads[i]));
        threads[i].index = i;
        threads[i].s = s;
        threads[i].next_id = (long)sl * tl + i;
        apr_allocator_create(&ta);
        apr_allocator_max_free_set(ta, ap_max_mem_free ? ap_max_mem_free : 2048 * 1024);
        apr_pool_create_ex(&threads[i].ptrans, pchild, NULL, ta);
        apr_allocator_owner_set(ta, threads[i].ptrans);
        if (ap_thread_create(&threads[i].thread, NULL, serve_loop, &threads[i], pchild)
            == APR_SUCCESS)
            running++;
    }
    if (!running)
        exit(1);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, DPLOGNO(00015)
                 "diagproc: reserved process %d serving %d listener(s) with %d threads",
                 (int)getpid(), state->nlisten, running);
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
    graceful_stop = 1;
    for (i = 0; i < DP_RESERVED_THREADS; i++) {
        apr_status_t rv;
        if (threads[i].thread)
            apr_thread_join(&rv, threads[i].thread);
    }
    exit(0);
}

/* ------------------------------------------------------ parent: process */

static void reserved_maintenance(int reason, void *data, apr_wait_t status);
static void old_maintenance(int reason, void *data, apr_wait_t status);

static int mpm_stopping(void)
{
    int st = AP_MPMQ_RUNNING;
    ap_unixd_mpm_retained_data *mpm = ap_unixd_mpm_get_retained_data();
    ap_mpm_query(AP_MPMQ_MPM_STATE, &st);
    return st == AP_MPMQ_STOPPING || (mpm && (mpm->shutdown_pending || mpm->restart_pending));
}

static void fork_reserved(server_rec *s)
{
    pid_t pid, parent = getpid();
    sigset_t all, old;
    int gen = 0;

    if (state->nlisten == 0)
        return;
    ap_mpm_query(AP_MPMQ_GENERATION, &gen);
    /* every signal blocked until restore_signals: a SIGTERM of a restart
     * right after the fork would otherwise run httpd's handler in the child
     * (a flag there) and the process would outlive its generation */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00016)
                     "diagproc: cannot fork the reserved process");
        return;
    }
    if (pid == 0)
        reserved_main(s, parent);       /* never returns */
    state->current.pid = pid;
    state->current_generation = gen;
    dp_shared_set_reserved(pid, gen);
    apr_proc_other_child_register(&state->current, reserved_maintenance, &state->current,
                                  NULL, gen_pool);
}

/* APR calls this when the process dies, and with UNREGISTER when its record
 * goes (pconf's cleanup on restart and shutdown, or our own unregister). */
static void reserved_maintenance(int reason, void *data, apr_wait_t status)
{
    apr_proc_t *proc = data;
    ap_unixd_mpm_retained_data *mpm = ap_unixd_mpm_get_retained_data();
    int graceful = mpm ? !mpm->is_ungraceful : 0;
    int i;

    (void)status;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        proc->pid = 0;                  /* so that UNREGISTER below signals nothing */
        dp_shared_set_reserved(0, 0);
        apr_proc_other_child_unregister(data);
        if (!mpm_stopping()) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ap_server_conf, DPLOGNO(00017)
                         "diagproc: the reserved process died; starting a new one");
            fork_reserved(ap_server_conf);
        }
        break;
    case APR_OC_REASON_RESTART:         /* the MPM reclaims its children */
        if (proc->pid > 0)
            kill(proc->pid, SIGTERM);
        break;
    case APR_OC_REASON_UNREGISTER:
        if (proc->pid <= 0)
            break;
        /* graceful: it finishes the connections it is serving, as workers do */
        kill(proc->pid, graceful ? AP_SIG_GRACEFUL : SIGTERM);
        /* the next generation reaps it (else httpd logs a "long lost child") */
        for (i = 0; i < DP_RESERVED_MAX_OLD; i++)
            if (state->old[i].pid <= 0) {
                state->old[i] = *proc;
                break;
            }
        proc->pid = 0;
        break;
    }
}

static void old_maintenance(int reason, void *data, apr_wait_t status)
{
    apr_proc_t *proc = data;

    (void)status;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        proc->pid = 0;
        apr_proc_other_child_unregister(data);
        break;
    case APR_OC_REASON_RESTART:
        if (proc->pid > 0)
            kill(proc->pid, SIGTERM);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* kept in state->old[]: registered again by the next generation */
        break;
    }
}

/* The MPM's parent looks for dead children once a second; a SIGCHLD handler
 * cuts that sleep short, so a reserved process that died is replaced at once
 * (connections wait in the listener's backlog, which the parent keeps open).
 * SA_RESTART: only sleeps are cut short. Removed before the DSO is unloaded. */
static void on_sigchld(int sig)
{
    (void)sig;
}

static apr_status_t restore_sigchld(void *data)
{
    (void)data;
    signal(SIGCHLD, SIG_DFL);
    return APR_SUCCESS;
}

static void start_generation(server_rec *s)
{
    struct sigaction sa;
    int i, gen = ap_state_query(AP_SQ_CONFIG_GEN);

    if (state->forked_config_gen == gen)
        return;
    state->forked_config_gen = gen;
    for (i = 0; i < DP_RESERVED_MAX_OLD; i++)
        if (state->old[i].pid > 0)
            apr_proc_other_child_register(&state->old[i], old_maintenance, &state->old[i],
                                          NULL, gen_pool);
    sync_listeners(s);
    if (state->nlisten == 0)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    apr_pool_cleanup_register(gen_pool, NULL, restore_sigchld, apr_pool_cleanup_null);
    fork_reserved(s);
}

/* The scoreboard exists only after the core's pre_mpm hook: on a cold start
 * the process is forked at the end of pre_mpm; pre_mpm does not run again on
 * a graceful restart, so later generations fork here, where the scoreboard
 * (kept, or cleared in place on a hard restart) already exists. */
static void dp_reserved_optional_fn_retrieve(void)
{
    if (!state || !ap_scoreboard_image)
        return;
    start_generation(ap_server_conf);
}

static int dp_reserved_pre_mpm(apr_pool_t *p, ap_scoreboard_e sb_type)
{
    (void)p; (void)sb_type;
    if (state)
        start_generation(ap_server_conf);
    return OK;
}

static int dp_reserved_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                   server_rec *s)
{
    (void)pconf; (void)plog; (void)ptemp; (void)s;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    state = ap_retained_data_get(DP_RESERVED_KEY);
    if (!state) {
        int i;
        state = ap_retained_data_create(DP_RESERVED_KEY, sizeof(*state));
        for (i = 0; i < DP_RESERVED_MAX_LISTEN; i++)
            state->l[i].fd = -1;
    }
    return OK;
}

/* ------------------------------------------------------ every child */

/* Workers (and every other child forked after the sockets were opened)
 * must not hold the reserved listeners, nor the parent's SIGCHLD handler. */
static void dp_reserved_child_init(apr_pool_t *p, server_rec *s)
{
    int i;

    (void)p; (void)s;
    if (in_reserved || !state)
        return;
    for (i = 0; i < state->nlisten; i++)
        if (state->l[i].fd >= 0)
            close(state->l[i].fd);
    if (state->nlisten)
        signal(SIGCHLD, SIG_DFL);
}

/* Only the diagproc handler answers on the reserved listener: site code
 * (mod_php, mod_wsgi, proxies, files) never runs in this process. */
static int dp_reserved_handler(request_rec *r)
{
    if (!in_reserved || (r->handler && !strcmp(r->handler, "diagproc")))
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, DPLOGNO(00018)
                  "diagproc: handler '%s' refused on the reserved listener",
                  r->handler ? r->handler : "(none)");
    return HTTP_NOT_FOUND;
}

void dp_reserved_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(dp_reserved_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(dp_reserved_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(dp_reserved_optional_fn_retrieve, NULL, NULL,
                                 APR_HOOK_REALLY_LAST);
    ap_hook_pre_mpm(dp_reserved_pre_mpm, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(dp_reserved_child_init, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(dp_reserved_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
}
