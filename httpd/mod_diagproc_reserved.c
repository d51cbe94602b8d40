/* The reserved diagnostics process, the parent's side. When every worker
 * thread is stuck (a backend that never answers, a wedged interpreter), the
 * diagnostics routes are needed most and cannot be reached through the
 * site's listeners. So the parent opens the DiagProcListen sockets itself
 * and forks one process for them, supervised like mod_cgid's daemon:
 * restarted when it dies, replaced on every restart, stopped on shutdown.
 * It runs as User, holds no listener of the site, and serves its
 * connections through httpd's own connection and request processing
 * (mod_diagproc_reserved_serve.c), so <Location>, Require, authentication,
 * logging and filters apply as anywhere; but it answers only the diagproc
 * handler (anything else is 404), so no site code ever runs in it. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "scoreboard.h"
#include "unixd.h"
#include "apr_strings.h"

#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_request.h"
#include "httpd/mod_diagproc_reserved.h"
#include "httpd/mod_diagproc_reserved_serve.h"
#include "httpd/mod_diagproc_shared.h"

APLOG_USE_MODULE(diagproc);

#define DP_RESERVED_MAX_OLD    8
/* where connections wait while the reserved process restarts (the kernel
 * caps it at net.core.somaxconn) */
#define DP_RESERVED_BACKLOG    4096

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
        || bind(fd, (struct sockaddr *)&sa->sa, sa->salen) != 0
        || listen(fd, DP_RESERVED_BACKLOG) != 0) {
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
    if (pid == 0) {
        int fds[DP_RESERVED_MAX_LISTEN], i;
        for (i = 0; i < state->nlisten; i++)
            fds[i] = state->l[i].fd;
        in_reserved = 1;
        dp_reserved_serve(s, parent, gen_pool, fds, state->nlisten);    /* never returns */
    }
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

static void start_generation(server_rec *s)
{
    int i, gen = ap_state_query(AP_SQ_CONFIG_GEN);

    if (state->forked_config_gen == gen)
        return;
    state->forked_config_gen = gen;
    for (i = 0; i < DP_RESERVED_MAX_OLD; i++)
        if (state->old[i].pid > 0)
            apr_proc_other_child_register(&state->old[i], old_maintenance, &state->old[i],
                                          NULL, gen_pool);
    if (state->nlisten == 0)
        return;
    dp_shared_watch_children(gen_pool);  /* a dead reserved process is replaced at once */
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
    (void)pconf; (void)plog; (void)ptemp;
    state = ap_retained_data_get(DP_RESERVED_KEY);
    if (!state) {
        int i;
        state = ap_retained_data_create(DP_RESERVED_KEY, sizeof(*state));
        for (i = 0; i < DP_RESERVED_MAX_LISTEN; i++)
            state->l[i].fd = -1;
    }
    /* open with httpd's own listeners, on the first pass too (the one before
     * `apache2 -k start` detaches and returns): a client that connects right
     * after is queued in the backlog, never refused, until the process forked
     * once the scoreboard exists accepts it */
    sync_listeners(s);
    return OK;
}

/* ------------------------------------------------------ every child */

/* Every child but the reserved process must not hold the reserved
 * listeners: closed (and forgotten in this process's copy of the retained
 * state, so that no later hook closes a reused descriptor) in the first of
 * drop_privileges and child_init that runs. drop_privileges reaches what
 * child_init does not: mod_cgid's daemon, which the parent forks in
 * post_config with the sockets open since the first pass of the
 * configuration. Read from the retained data: that daemon may be forked
 * before this module's post_config has set `state` in this generation. */
static void close_inherited(void)
{
    reserved_state *st = ap_retained_data_get(DP_RESERVED_KEY);
    int i;

    if (in_reserved || !st)
        return;
    for (i = 0; i < st->nlisten; i++)
        if (st->l[i].fd >= 0) {
            close(st->l[i].fd);
            st->l[i].fd = -1;
        }
}

static int dp_reserved_drop_privileges(apr_pool_t *p, server_rec *s)
{
    (void)p; (void)s;
    close_inherited();
    return DECLINED;
}

/* ... and the parent's SIGCHLD handler goes too. */
static void dp_reserved_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p; (void)s;
    if (in_reserved || !state)
        return;
    close_inherited();
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
    ap_hook_drop_privileges(dp_reserved_drop_privileges, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(dp_reserved_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    dp_reserved_serve_register_hooks();
}
