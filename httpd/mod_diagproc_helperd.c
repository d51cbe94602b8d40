/* The parent's side of the privileged helper: it forks the helper (in the
 * manner of mod_cgid's daemon) after the configuration is read, restarts it
 * when it dies and stops it on restart and shutdown. */

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "unixd.h"
#include "ap_mpm.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "httpd/mod_diagproc_shared.h"
#include "common/proto.h"
#include "helper/daemon.h"
#include "helper/watch.h"
#include "httpd/mod_diagproc_scoreboard.h"
#include "httpd/mod_diagproc_capture.h"
#include "scoreboard.h"
#include "proc/procfs.h"
#include "httpd/mod_diagproc_config.h"
#include "httpd/mod_diagproc_helperd.h"
APLOG_USE_MODULE(diagproc);

static const char *sockpath;      /* dp_shared_socket_path, for our own use */
static pid_t helper_pid;
static apr_proc_t helper_proc;
static dp_helper_policy policy;
static apr_proc_t retry_proc;       /* the timer of a retry after a failed start */
static int backoff_s;               /* the last wait before a retry, 0 = none */
static int stopping;                /* the MPM's reclaim asked the helper to stop */
#define DP_RETRY_MAX_S 60

static server_rec *main_server;
static apr_pool_t *helper_pool;


/* The capture watcher (helper/watch.h) and the datagram pair between it
 * and the helper (a removal); -1 = none. */
static dp_watch_config watch_cfg;
static int watch_pair[2] = { -1, -1 };
static apr_proc_t watch_proc;

static void close_inherited_fds(int keep, int keep2)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int dfd = d ? dirfd(d) : -1;

    while (d && (de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name);
        if (fd > 2 && fd != keep && fd != keep2 && fd != dfd)
            close(fd);
    }
    if (d)
        closedir(d);
}

static int listen_socket(apr_pool_t *p, server_rec *s)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (fd < 0 || strlen(sockpath) >= sizeof(sa.sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00003)
                     "diagproc: cannot create the helper socket %s", sockpath);
        return -1;
    }
    strcpy(sa.sun_path, sockpath);
    unlink(sockpath);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(sockpath, 0600) != 0
        || (geteuid() == 0 && chown(sockpath, ap_unixd_config.user_id,
                                    ap_unixd_config.group_id) != 0)
        || listen(fd, 64) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00004)
                     "diagproc: cannot listen on the helper socket %s", sockpath);
        close(fd);
        return -1;
    }
    (void)p;
    return fd;
}

static void helper_maintenance(int reason, void *data, apr_wait_t status);
static void retry_maintenance(int reason, void *data, apr_wait_t status);

/* The MPM is stopping or restarting: a helper that ends now is not replaced
 * (the next generation starts its own). As mod_cgid asks AP_MPMQ_MPM_STATE. */
static int mpm_stopping(void)
{
    int st = AP_MPMQ_RUNNING;
    ap_unixd_mpm_retained_data *mpm = ap_unixd_mpm_get_retained_data();

    ap_mpm_query(AP_MPMQ_MPM_STATE, &st);
    return st == AP_MPMQ_STOPPING || (mpm && (mpm->shutdown_pending || mpm->restart_pending));
}

/* fork() with every signal blocked until the child has its own handlers: a
 * SIGTERM sent right after the fork (a restart) would otherwise run httpd's
 * handler in the child, which only sets a flag there, and the child lived
 * on until the parent's SIGKILL two seconds later (the stall of every hard
 * restart). The child unblocks them itself. */
static pid_t fork_blocked(void)
{
    sigset_t all, old;
    pid_t pid;

    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

static int start_helper(apr_pool_t *p, server_rec *s)
{
    int fd = listen_socket(p, s);
    pid_t pid;

    if (fd < 0)
        return -1;
    pid = fork_blocked();
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00040)
                     "diagproc: cannot fork the helper");
        close(fd);
        return -1;
    }
    if (pid == 0) {
        close_inherited_fds(fd, watch_pair[0]);
        dp_daemon_main(fd, &policy);    /* unblocks the signals */
        _exit(0);
    }
    close(fd);
    helper_pid = pid;
    helper_proc.pid = pid;
    stopping = 0;
    dp_shared_set_helper(pid);
    dp_shared_set_helper_retry(0);
    apr_proc_other_child_register(&helper_proc, helper_maintenance, &helper_proc, NULL, p);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, DPLOGNO(00005)
                 "diagproc: helper %d started for %s", (int)pid, sockpath);
    return 0;
}

/* The helper could not start: try again after 1, 2, 4 ... 60 s, timed by
 * a child that sleeps that long (its end is noticed like the helper's, and
 * the parent blocks nowhere). Meanwhile the workers answer 503 at once. */
static void schedule_retry(server_rec *s, const char *why)
{
    pid_t pid;

    backoff_s = backoff_s ? (backoff_s >= DP_RETRY_MAX_S / 2 ? DP_RETRY_MAX_S : backoff_s * 2) : 1;
    dp_shared_set_helper_retry(time(NULL) + backoff_s);
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, DPLOGNO(00041)
                 "diagproc: the helper could not start (%s); next try in %d s; until then "
                 "kill, dump, stacks and private reads answer 503", why, backoff_s);
    pid = fork_blocked();
    if (pid == 0) {
        sigset_t none;
        close_inherited_fds(-1, -1);
        signal(SIGTERM, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        sleep((unsigned)backoff_s);
        _exit(0);
    }
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00042)
                     "diagproc: cannot fork the helper's retry timer; the helper starts "
                     "again with the next restart of httpd");
        return;
    }
    retry_proc.pid = pid;
    apr_proc_other_child_register(&retry_proc, retry_maintenance, &retry_proc, NULL,
                                  helper_pool);
}

/* Ends a child of ours and reaps it, without ever hanging the parent:
 * SIGKILL after two seconds. */
static void end_child(pid_t pid, int sig)
{
    int i;

    kill(pid, sig);
    for (i = 0; i < 2000 && waitpid(pid, NULL, WNOHANG) == 0; i++)
        usleep(1000);
    if (i == 2000) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

static void stop_helper(void)
{
    if (helper_pid <= 0)
        return;
    end_child(helper_pid, SIGTERM);
    helper_pid = 0;
}

/* The status APR hands over is the waitpid status (a refresh) or, from the
 * MPM's loop, the exit code alone. */
static int startup_error(apr_wait_t status)
{
    return status == DP_HELPER_STARTUP_ERROR
           || (WIFEXITED(status) && WEXITSTATUS(status) == DP_HELPER_STARTUP_ERROR);
}

/* APR calls this when the helper dies (DEATH, or LOST when someone else
 * reaped it), on each round of the MPM's reclaim of its children on a hard
 * restart or stop (RESTART), and with UNREGISTER whenever its record goes
 * (the unregister below, or pconf's cleanup at any restart or stop). */
static void helper_maintenance(int reason, void *data, apr_wait_t status)
{
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        helper_pid = 0;                 /* so the UNREGISTER below stops nothing */
        apr_proc_other_child_unregister(data);
        dp_shared_set_helper(0);
        if (stopping || mpm_stopping())
            break;                      /* stopped with httpd: not replaced */
        if (reason == APR_OC_REASON_DEATH && startup_error(status)) {
            schedule_retry(main_server, "its own line above says why");
            break;
        }
        backoff_s = 0;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, DPLOGNO(00006)
                     "diagproc: helper died; starting a new one");
        if (start_helper(helper_pool, main_server) != 0)
            schedule_retry(main_server, "see the line above");
        break;
    case APR_OC_REASON_RESTART:
        /* asked once; the next round's waitpid reaps it (DEATH) */
        if (helper_pid > 0 && !stopping)
            kill(helper_pid, SIGTERM);
        stopping = 1;
        break;
    case APR_OC_REASON_UNREGISTER:
        stop_helper();
        break;
    }
}

/* The retry timer's end starts the helper again, unless httpd is stopping. */
static void retry_maintenance(int reason, void *data, apr_wait_t status)
{
    (void)status;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        retry_proc.pid = 0;
        apr_proc_other_child_unregister(data);
        if (!mpm_stopping() && start_helper(helper_pool, main_server) != 0)
            schedule_retry(main_server, "see the line above");
        break;
    case APR_OC_REASON_RESTART:
        /* never pid 0 while registered: APR's waitpid(0) would reap any child */
        if (retry_proc.pid > 0)
            kill(retry_proc.pid, SIGKILL);
        break;
    case APR_OC_REASON_UNREGISTER:
        if (retry_proc.pid > 0)
            end_child(retry_proc.pid, SIGKILL);
        retry_proc.pid = 0;
        dp_shared_set_helper_retry(0);
        break;
    }
}

static void start_watcher(apr_pool_t *p, server_rec *s);

/* A watcher that dies is replaced, unless it could not start (its line
 * says why: the next restart of httpd tries again). */
static void watch_maintenance(int reason, void *data, apr_wait_t status)
{
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        watch_proc.pid = 0;
        apr_proc_other_child_unregister(data);
        if (mpm_stopping())
            break;
        if (status == DP_WATCH_STARTUP_ERROR
            || (WIFEXITED(status) && WEXITSTATUS(status) == DP_WATCH_STARTUP_ERROR)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, main_server, DPLOGNO(00066)
                         "diagproc: the capture watcher could not start (its line above says "
                         "why); no captures until httpd restarts");
            break;
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, DPLOGNO(00067)
                     "diagproc: the capture watcher died; starting a new one");
        start_watcher(helper_pool, main_server);
        break;
    case APR_OC_REASON_RESTART:
        if (watch_proc.pid > 0)
            kill(watch_proc.pid, SIGTERM);
        break;
    case APR_OC_REASON_UNREGISTER:
        if (watch_proc.pid > 0)
            end_child(watch_proc.pid, SIGTERM);
        watch_proc.pid = 0;
        break;
    }
}

/* Forked once httpd's scoreboard exists (the watcher reads it from its copy
 * of the parent's mappings): post_config of a restart, pre_mpm of a start. */
static void start_watcher(apr_pool_t *p, server_rec *s)
{
    pid_t pid;

    if (!watch_cfg.nrules || !ap_scoreboard_image)
        return;
    if (watch_proc.pid > 0) {
        apr_proc_other_child_unregister(&watch_proc);   /* stops it */
        watch_proc.pid = 0;
    }
    pid = fork_blocked();
    if (pid == 0) {
        close_inherited_fds(watch_pair[1], -1);
        dp_watch_main(&watch_cfg);      /* unblocks the signals */
        _exit(0);
    }
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00062)
                     "diagproc: cannot fork the capture watcher; no captures until the next "
                     "restart");
        return;
    }
    watch_proc.pid = pid;
    apr_proc_other_child_register(&watch_proc, watch_maintenance, &watch_proc, NULL, p);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, DPLOGNO(00063)
                 "diagproc: capture watcher %d started (%d rules, spool %s)", (int)pid,
                 watch_cfg.nrules, watch_cfg.spool);
}

static apr_status_t watch_cleanup(void *data)
{
    (void)data;
    if (watch_pair[0] >= 0)
        close(watch_pair[0]);
    if (watch_pair[1] >= 0)
        close(watch_pair[1]);
    watch_pair[0] = watch_pair[1] = -1;
    return APR_SUCCESS;
}

static void setup_captures(apr_pool_t *pconf, server_rec *s)
{
    watch_proc.pid = 0;
    policy.spool = dp_capture_spool();
    policy.capture_fd = -1;
    policy.counts = NULL;
    if (!dp_capture_watch_config(pconf, &policy, &watch_cfg))
        return;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, watch_pair) != 0) {
        watch_pair[0] = watch_pair[1] = -1;
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00064)
                     "diagproc: no socket pair for the capture watcher; DELETE of a capture "
                     "answers 503");
    }
    apr_pool_cleanup_register(pconf, NULL, watch_cleanup, apr_pool_cleanup_null);
    policy.capture_fd = watch_pair[0];
    policy.counts = watch_cfg.counts;
    watch_cfg.capture_fd = watch_pair[1];
    watch_cfg.inflight = dp_scoreboard_inflight;
    watch_cfg.workers = dp_scoreboard_workers;
    watch_cfg.instance = dp_instance_name(s);
}

static int watch_pre_mpm(apr_pool_t *p, ap_scoreboard_e sb_type)
{
    (void)p;
    (void)sb_type;
    if (main_server && helper_pool)
        start_watcher(helper_pool, main_server);
    return OK;
}

static apr_status_t helper_cleanup(void *data)
{
    (void)data;
    /* the helper itself is stopped by APR's other-child cleanup (UNREGISTER) */
    stop_helper();
    if (sockpath)
        unlink(sockpath);
    return APR_SUCCESS;
}

/* Can two <Location> paths apply to one URL: is one inside the other? */
static int paths_nest(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n;
    const char *longer = la >= lb ? a : b, *shorter = la >= lb ? b : a;

    n = la < lb ? la : lb;
    while (n > 0 && shorter[n - 1] == '/')
        n--;
    return strncmp(longer, shorter, n) == 0 && (longer[n] == '\0' || longer[n] == '/');
}

static void push_gid(apr_array_header_t *g, gid_t gid)
{
    int i;
    for (i = 0; i < g->nelts; i++)
        if (APR_ARRAY_IDX(g, i, gid_t) == gid)
            return;
    APR_ARRAY_PUSH(g, gid_t) = gid;
}

/* The groups a scope's users hold, from the user database as the
 * configuration is read (every generation): primary and supplementary, and
 * the workers' Group for the workers' user. all (DiagProcUsers *): every
 * group some user holds. The helper refuses a target holding any other. */
static void scope_groups(apr_pool_t *p, const uid_t *uids, int n, int all,
                         const gid_t **out, int *nout)
{
    apr_array_header_t *g = apr_array_make(p, 16, sizeof(gid_t));
    struct passwd *pw;
    struct group *gr;
    int i, k;

    if (all) {
        setpwent();
        while ((pw = getpwent()) != NULL)
            push_gid(g, pw->pw_gid);
        endpwent();
        setgrent();
        while ((gr = getgrent()) != NULL)
            if (gr->gr_mem && gr->gr_mem[0])
                push_gid(g, gr->gr_gid);
        endgrent();
    }
    for (i = 0; i < n; i++) {
        int ng = 64;
        gid_t *list = apr_palloc(p, sizeof(gid_t) * 64);
        gid_t primary;
        char *name;

        if (uids[i] == policy.peer_uid)
            push_gid(g, policy.peer_gid);
        if ((pw = getpwuid(uids[i])) == NULL)
            continue;
        name = apr_pstrdup(p, pw->pw_name);
        primary = pw->pw_gid;
        if (getgrouplist(name, primary, list, &ng) < 0) {
            list = apr_palloc(p, sizeof(gid_t) * (apr_size_t)ng);
            if (getgrouplist(name, primary, list, &ng) < 0)
                ng = 0;
        }
        push_gid(g, primary);
        for (k = 0; k < ng; k++)
            push_gid(g, list[k]);
    }
    *out = (const gid_t *)g->elts;
    *nout = g->nelts;
}

/* The configuration as the helper checks it (see dp_helper_policy). */
static void policy_sections(apr_pool_t *p)
{
    const apr_array_header_t *secs = dp_config_sections();
    int n = secs->nelts, a, b;
    dp_helper_section *hs = apr_pcalloc(p, sizeof(*hs) * (n ? n : 1));
    unsigned char *pairs = apr_pcalloc(p, (apr_size_t)(n ? n * n : 1));

    for (a = 0; a < n; a++) {
        const dp_section *sa = &APR_ARRAY_IDX(secs, a, dp_section);
        hs[a].allow = sa->conf->allow_set ? (unsigned)sa->conf->allow : 0;
        hs[a].has_users = sa->conf->uids != NULL;
        hs[a].all_users = sa->conf->all_users;
        hs[a].uids = sa->conf->uids ? (const uid_t *)sa->conf->uids->elts : NULL;
        hs[a].nuids = sa->conf->uids ? sa->conf->uids->nelts : 0;
        scope_groups(p, hs[a].uids, hs[a].nuids, hs[a].all_users, &hs[a].gids, &hs[a].ngids);
        for (b = 0; b < n; b++) {
            const dp_section *sb = &APR_ARRAY_IDX(secs, b, dp_section);
            pairs[a * n + b] = a == b || (sa->path && sb->path && paths_nest(sa->path, sb->path));
        }
    }
    policy.sections = hs;
    policy.nsections = n;
    policy.pairs = pairs;
}

static int dp_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    const dp_ceiling *c;
    dp_server_conf *sc = dp_server_config(s);

    (void)plog;
    (void)ptemp;
    /* the first pass only checks the configuration */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    main_server = s;
    helper_pool = pconf;
    sockpath = ap_runtime_dir_relative(pconf, apr_psprintf(pconf, "diagproc.%d.sock",
                                                           (int)getpid()));
    dp_shared_set_socket_path(sockpath);
    c = dp_global_ceiling();
    memset(&policy, 0, sizeof(policy));
    policy.peer_uid = geteuid() == 0 ? ap_unixd_config.user_id : geteuid();
    policy.peer_gid = geteuid() == 0 ? ap_unixd_config.group_id : getegid();
    policy.drop_to_peer = geteuid() == 0;
    scope_groups(pconf, &policy.peer_uid, 1, 0, &policy.peer_gids, &policy.npeer_gids);
    policy.httpd_pid = getpid();
    policy.all_users = c->all_users;
    policy.uids = (const uid_t *)c->uids->elts;
    policy.nuids = c->uids->nelts;
    policy.max_dumps = sc->max_dumps > 0 ? sc->max_dumps : 2;
    policy.snapshot = sc->dump_snapshot != 0;
    policy.dump_nice = sc->dump_nice >= 0 ? sc->dump_nice : 10;
    policy.dump_ioprio = sc->dump_ioprio >= 0 ? sc->dump_ioprio
                                              : DP_IOPRIO_VALUE(DP_IOPRIO_CLASS_BE, 7);
    policy_sections(pconf);
    policy.log_level = ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX);
    dp_profile_limits(sc, &policy.prof_sessions, &policy.prof_seconds, &policy.prof_hz,
                      &policy.prof_bytes);
    if (dp_shared_page()) {
        policy.slots = dp_shared_page()->slots;
        policy.nslots = (size_t)dp_shared_page()->server_limit
                        * (size_t)dp_shared_page()->thread_limit;
    }
    backoff_s = 0;
    stopping = 0;
    retry_proc.pid = 0;
    {
        struct stat sb;
        if (stat("/proc/self/exe", &sb) != 0
            || syscall(SYS_getrandom, dp_shared_secret(), DP_SECRET_LEN, 0)
               != (long)DP_SECRET_LEN) {
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(00007)
                         "diagproc: no executable identity or random secret for the helper; "
                         "it is not started");
            return OK;
        }
        policy.exe_dev = sb.st_dev;
        policy.exe_ino = sb.st_ino;
        memcpy(policy.secret, dp_shared_secret(), sizeof(policy.secret));
    }
    apr_pool_cleanup_register(pconf, NULL, helper_cleanup, apr_pool_cleanup_null);
    dp_shared_watch_children(pconf);     /* a dead helper is seen at once */
    setup_captures(pconf, s);
    if (start_helper(pconf, s) != 0)
        schedule_retry(s, "see the line above");
    start_watcher(pconf, s);
    return OK;
}

/* Workers (and every other child forked from the parent) do not keep the
 * parent's SIGCHLD handler. */
static void dp_helperd_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
    signal(SIGCHLD, SIG_DFL);
    /* the workers never reach the watcher: only the helper asks it */
    if (watch_pair[0] >= 0)
        close(watch_pair[0]);
    if (watch_pair[1] >= 0)
        close(watch_pair[1]);
    watch_pair[0] = watch_pair[1] = -1;
}

void dp_helperd_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(dp_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(dp_helperd_child_init, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_pre_mpm(watch_pre_mpm, NULL, NULL, APR_HOOK_REALLY_LAST);
}
