/* The capture watcher (helper/watch.h): once a second, the rules. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "helper/watch.h"
#include "helper/spool.h"
#include "helper/watch_state.h"
#include "helper/log.h"
#include "proc/procfs.h"
#include "common/clock.h"

#define MAX_INFLIGHT 4096
#define MAX_TARGETS 2048
#define MAX_RUNNING 8
#define SEEN_MAX 64                 /* requests a rule remembers having captured */
#define CAPTURE_TIMEOUT_S 120

typedef struct running {
    pid_t child, target;
    int dump;
    char id[DP_CAP_ID_MAX + 1];
} running;

/* A process a rss or cpu rule watches: since when it is above the bound. */
typedef struct watched {
    pid_t pid;
    unsigned long long ticks;       /* utime + stime at the last look */
    long long at_ms;                /* and when that look was (monotonic) */
    long long above_since[DP_CAP_MAX_RULES];    /* 0 = not above */
    int seen;
} watched;

typedef struct rule_state {
    long long seen[SEEN_MAX];       /* start_us ^ pid ^ tid of requests already captured */
    int nseen;
} rule_state;

static const dp_watch_config *cfg;
static rule_state state[DP_CAP_MAX_RULES];
static dp_cap_window windows[DP_CAP_MAX_RULES];   /* kept in the spool */
static running run[MAX_RUNNING];
static watched *procs;
static int nprocs;
static dp_inflight *inflight;
static int ninflight;
static unsigned seq;

/* ------------------------------------------------------------ captures */

static int busy(pid_t target, int *dumps)
{
    int i, n = 0, b = 0;
    for (i = 0; i < MAX_RUNNING; i++)
        if (run[i].child) {
            n++;
            b |= target > 0 && run[i].target == target;
            *dumps += run[i].dump;
        }
    return b ? -1 : n;
}

/* Low priority against the site, in a session of its own: the scheduler
 * shares a core between sessions (autogroups) first and by nice only within
 * one, so in httpd's session a capture at nice 19 got 1.5 % of what each
 * busy worker got, and a cpu rule's capture of a spinning worker waited on
 * that worker for as long as it spun. Out of httpd's process group, it ends
 * with the watcher (its targets are resumed by SEIZE). */
static void child_priority(pid_t watcher)
{
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != watcher)
        _exit(1);
    setpriority(PRIO_PROCESS, 0, 19);
    syscall(SYS_ioprio_set, 1, 0, (3 << 13) | 0);     /* IOPRIO_CLASS_IDLE */
}

static void capture_child(const dp_capture_job *job, pid_t watcher)
{
    char dir[4096], final[4096];

    signal(SIGTERM, SIG_DFL);
    child_priority(watcher);
    alarm(CAPTURE_TIMEOUT_S + (unsigned)job->rule->profile_s);
    snprintf(dir, sizeof(dir), "%s/.tmp-%s", cfg->spool, job->id);
    snprintf(final, sizeof(final), "%s/%s", cfg->spool, job->id);
    if (mkdir(dir, 0700) != 0)
        _exit(1);
    if (dp_capture_take(job, dir) != 0)
        dp_log(DP_LOG_WARNING, DPLOGNO(10061) "capture %s (rule %s): some of it could not be "
               "taken; kept what was", job->id, job->rule->name);
    _exit(rename(dir, final) == 0 ? 0 : 1);
}

static void publish_dumps(void);

/* The rule fires at now on target (0 = none) for request (or NULL); 0 when
 * it could not (one capture per target at a time, too many running). */
static int fire(int r, long long now, pid_t target, const dp_inflight *request,
                const char *detail)
{
    const dp_capture_rule *rule = &cfg->rules[r];
    int dumps = 0, n = busy(target, &dumps), i;
    dp_capture_job job;
    char id[DP_CAP_ID_MAX + 1], stamp[32];
    struct tm tm;
    struct timespec ts;
    pid_t child, me = getpid();
    const char *why;

    if (n < 0 || n >= MAX_RUNNING
        || (rule->action == DP_CAP_DO_DUMP
            && dumps + (cfg->counts ? __atomic_load_n(&cfg->counts->dumps_helper, __ATOMIC_RELAXED)
                                    : 0) >= (cfg->max_dumps > 0 ? cfg->max_dumps : 1)))
        return 0;
    /* the scoreboard is the workers' to write: its pids are checked */
    if (target > 0 && (why = dp_capture_target_refused(cfg, rule, target,
                                                       !rule->nusers)) != NULL) {
        dp_log(DP_LOG_WARNING, DPLOGNO(10066) "capture rule %s: process %d is not captured: %s",
               rule->name, (int)target, why);
        target = 0;
        if (rule->trigger == DP_CAP_RSS || rule->trigger == DP_CAP_CPU)
            return 0;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
    snprintf(id, sizeof(id), "%s.%03ldZ-%s-%u", stamp, ts.tv_nsec / 1000000, rule->name,
             ++seq % 1000);
    memset(&job, 0, sizeof(job));
    job.rule = rule;
    job.id = id;
    job.time_s = now;
    job.pid = target;
    job.request = request;
    job.inflight = inflight;
    job.ninflight = ninflight;
    job.detail = detail;
    job.snapshot = cfg->snapshot;
    job.instance = cfg->instance;
    job.cfg = cfg;
    child = fork();
    if (child == 0)
        capture_child(&job, me);
    if (child < 0)
        return 0;
    for (i = 0; i < MAX_RUNNING && run[i].child; i++)
        ;
    run[i].child = child;
    run[i].target = target;
    run[i].dump = rule->action == DP_CAP_DO_DUMP;
    publish_dumps();
    apr_cpystrn(run[i].id, id, sizeof(run[i].id));
    dp_cap_fired(rule, &windows[r], now);
    dp_watch_save_windows(cfg, windows);
    dp_log(DP_LOG_NOTICE, DPLOGNO(10062) "capture %s: rule %s (%s) fired%s%s, process %d",
           id, rule->name, rule->when, detail ? ": " : "", detail ? detail : "", (int)target);
    return 1;
}

/* DiagProcMaxDumps is shared with the helper (common/capture.h). */
static void publish_dumps(void)
{
    int i, n = 0;
    for (i = 0; i < MAX_RUNNING; i++)
        n += run[i].child && run[i].dump;
    if (cfg->counts)
        __atomic_store_n(&cfg->counts->dumps_watcher, n, __ATOMIC_RELAXED);
}

static void reap(void)
{
    int status, i, ended = 0;
    pid_t c;
    apr_pool_t *p;

    while ((c = waitpid(-1, &status, WNOHANG)) > 0)
        for (i = 0; i < MAX_RUNNING; i++)
            if (run[i].child == c) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                    dp_log(DP_LOG_WARNING, DPLOGNO(10063) "capture %s did not complete "
                           "(status %d)", run[i].id, status);
                run[i].child = 0;
                ended = 1;
                publish_dumps();
            }
    if (!ended)
        return;
    apr_pool_create(&p, NULL);
    i = dp_spool_trim(cfg->spool, cfg->quota_bytes, cfg->quota_files, p);
    if (i > 0)
        dp_log(DP_LOG_INFO, DPLOGNO(10064) "capture spool: %d oldest captures removed to keep "
               "within its quota", i);
    apr_pool_destroy(p);
}

/* -------------------------------------------------------------- triggers */

static int request_matches(const dp_capture_rule *rule, const dp_inflight *q)
{
    char path[256];
    size_t n = strcspn(q->uri, "?");

    if (rule->path[0]) {
        if (!q->uri[0] || n >= sizeof(path))
            return 0;
        memcpy(path, q->uri, n);
        path[n] = '\0';
        if (fnmatch(rule->path, path, 0) != 0)
            return 0;
    }
    return !rule->vhost[0] || (q->vhost[0] && fnmatch(rule->vhost, q->vhost, FNM_CASEFOLD) == 0);
}

static int seen_before(rule_state *st, long long key)
{
    int i;
    for (i = 0; i < st->nseen; i++)
        if (st->seen[i] == key)
            return 1;
    return 0;
}

static void check_age(int r, long long now, long long now_us)
{
    const dp_capture_rule *rule = &cfg->rules[r];
    rule_state *st = &state[r];
    int i;

    for (i = 0; i < ninflight; i++) {
        const dp_inflight *q = &inflight[i];
        long long key = q->start_us ^ ((long long)q->pid << 40) ^ ((long long)q->tid << 20);
        char detail[64];
        if (q->start_us <= 0 || now_us - q->start_us < rule->age_ms * 1000
            || !request_matches(rule, q) || seen_before(st, key))
            continue;
        if (!dp_cap_may_fire(rule, &windows[r], now))
            return;
        snprintf(detail, sizeof(detail), "a request %.1f s old",
                 (double)(now_us - q->start_us) / 1e6);
        if (fire(r, now, q->pid, q, detail)) {
            st->seen[st->nseen++ % SEEN_MAX] = key;
            if (st->nseen >= SEEN_MAX)
                st->nseen = SEEN_MAX;
        }
    }
}

static void check_status(int r, long long now)
{
    const dp_capture_rule *rule = &cfg->rules[r];
    uint64_t n;
    char detail[96];
    pid_t pid;
    dp_stat st;
    dp_error err;

    if (!cfg->counts || strcmp(cfg->counts->names[r], rule->name) != 0)
        return;
    n = dp_cap_sum(cfg->counts->b[r], (uint32_t)now, (uint32_t)rule->window_s,
                   (uint32_t)(windows[r].last > 0 ? windows[r].last : 0));
    if ((long long)n < rule->count || !dp_cap_may_fire(rule, &windows[r], now))
        return;
    pid = __atomic_load_n(&cfg->counts->last_pid[r], __ATOMIC_RELAXED);
    /* that worker may have ended since (a graceful restart's old generation):
     * gone or a zombie, the capture names no process, and no refusal is logged */
    if (pid > 0 && (dp_read_stat(pid, 0, &st, &err) != 0 || st.state == 'Z'))
        pid = 0;
    snprintf(detail, sizeof(detail), "%llu responses %d-%d within %lld s",
             (unsigned long long)n, rule->status_lo, rule->status_hi, rule->window_s);
    fire(r, now, pid, NULL, detail);
}

/* The processes rss and cpu rules watch: httpd's workers, or every process
 * of the users a rule names (never root's unless named, never httpd's
 * parent or ourselves). */
static int wanted_by(const dp_capture_rule *rule, pid_t pid, long uid, const pid_t *workers,
                     int nworkers)
{
    int i;

    if (pid == cfg->httpd_pid || pid == getpid())
        return 0;
    if (!rule->nusers) {
        for (i = 0; i < nworkers; i++)
            if (workers[i] == pid)
                return 1;
        return 0;
    }
    if (rule->all_users)
        return uid != 0;
    for (i = 0; i < rule->nusers; i++)
        if ((long)rule->uids[i] == uid)
            return 1;
    return 0;
}

static watched *watched_of(pid_t pid)
{
    int i;
    for (i = 0; i < nprocs; i++)
        if (procs[i].pid == pid)
            return &procs[i];
    if (nprocs == MAX_TARGETS)
        return NULL;
    memset(&procs[nprocs], 0, sizeof(procs[nprocs]));
    procs[nprocs].pid = pid;
    return &procs[nprocs++];
}

/* One process against every rss and cpu rule that watches it. */
static void check_process(pid_t pid, long uid, long long now, const pid_t *workers,
                          int nworkers)
{
    dp_stat st;
    dp_error err;
    watched *w;
    unsigned long long ticks;
    long long at_ms;
    double cpu;
    int r, fresh;

    for (r = 0; r < cfg->nrules; r++) {
        const dp_capture_rule *rule = &cfg->rules[r];
        if ((rule->trigger == DP_CAP_RSS || rule->trigger == DP_CAP_CPU)
            && wanted_by(rule, pid, uid, workers, nworkers))
            break;
    }
    if (r == cfg->nrules || dp_read_stat(pid, 0, &st, &err) != 0 || st.state == 'Z'
        || (w = watched_of(pid)) == NULL)
        return;
    fresh = !w->seen;
    w->seen = 2;
    ticks = st.utime + st.stime;
    at_ms = dp_mono_ms();
    /* over the time since the last look, which is a second only when the
     * watcher was not kept waiting: dividing by one second would make a
     * late look on a busy machine read more than the process had */
    cpu = fresh || at_ms <= w->at_ms ? 0
          : (double)(ticks - w->ticks) * 100.0 / (double)dp_clock_ticks()
            * 1000.0 / (double)(at_ms - w->at_ms);
    w->ticks = ticks;
    w->at_ms = at_ms;
    for (r = 0; r < cfg->nrules; r++) {
        const dp_capture_rule *rule = &cfg->rules[r];
        unsigned long long rss = (unsigned long long)st.rss * (unsigned long long)dp_page_size();
        char detail[96];
        int above;
        if ((rule->trigger != DP_CAP_RSS && rule->trigger != DP_CAP_CPU)
            || !wanted_by(rule, pid, uid, workers, nworkers))
            continue;
        above = rule->trigger == DP_CAP_RSS ? rss > rule->rss_bytes
                                            : !fresh && cpu > (double)rule->cpu_percent;
        if (!above) {
            w->above_since[r] = 0;
            continue;
        }
        if (!w->above_since[r])
            w->above_since[r] = now;
        if (now - w->above_since[r] < rule->window_s || !dp_cap_may_fire(rule, &windows[r], now))
            continue;
        if (rule->trigger == DP_CAP_RSS)
            snprintf(detail, sizeof(detail), "resident memory %llu MiB for %lld s",
                     rss >> 20, now - w->above_since[r]);
        else
            snprintf(detail, sizeof(detail), "CPU %.0f%% for %lld s", cpu,
                     now - w->above_since[r]);
        if (fire(r, now, pid, NULL, detail))
            w->above_since[r] = 0;
    }
}

static void check_processes(long long now)
{
    pid_t workers[1024];
    int nworkers = cfg->workers ? cfg->workers(workers, 1024) : 0, i, any_users = 0, k;
    DIR *d;
    struct dirent *de;

    for (i = 0; i < cfg->nrules; i++)
        any_users |= (cfg->rules[i].trigger == DP_CAP_RSS || cfg->rules[i].trigger == DP_CAP_CPU)
                     && cfg->rules[i].nusers;
    for (i = 0; i < nprocs; i++)
        procs[i].seen = procs[i].seen ? 1 : 0;
    if (any_users && (d = opendir("/proc")) != NULL) {
        while ((de = readdir(d)) != NULL) {
            pid_t pid;
            if (dp_parse_pid(de->d_name, &pid) == 0)
                check_process(pid, dp_proc_owner(pid), now, workers, nworkers);
        }
        closedir(d);
    } else
        for (i = 0; i < nworkers; i++)
            check_process(workers[i], dp_proc_owner(workers[i]), now, workers, nworkers);
    /* processes not seen this round are gone */
    for (i = 0, k = 0; i < nprocs; i++)
        if (procs[i].seen == 2)
            procs[k++] = procs[i];
    nprocs = k;
}

static void tick(void)
{
    struct timespec ts;
    long long now, now_us;
    int r, any_proc = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = ts.tv_sec;
    now_us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    ninflight = cfg->inflight ? cfg->inflight(inflight, MAX_INFLIGHT) : 0;
    for (r = 0; r < cfg->nrules; r++) {
        switch (cfg->rules[r].trigger) {
        case DP_CAP_AGE:
            check_age(r, now, now_us);
            break;
        case DP_CAP_STATUS:
            check_status(r, now);
            break;
        default:
            any_proc = 1;
        }
    }
    if (any_proc)
        check_processes(now);
}

/* A capture the helper was asked to remove (DELETE P/captures/{id}). */
static void removals(void)
{
    char id[DP_CAP_ID_MAX + 2];
    ssize_t n;

    while ((n = recv(cfg->capture_fd, id, sizeof(id) - 1, MSG_DONTWAIT)) > 0) {
        id[n] = '\0';
        if (!dp_cap_name_ok(id))
            continue;
        if (dp_spool_remove(cfg->spool, id) == 0)
            dp_log(DP_LOG_INFO, DPLOGNO(10065) "capture %s removed on request", id);
    }
}

static volatile sig_atomic_t stop_asked;

static void on_term(int sig)
{
    (void)sig;
    stop_asked = 1;
}

static void start(void)
{
    struct sigaction sa;
    sigset_t none;
    const char *why;
    int sig;

    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    dp_log_init(cfg->log_level);
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != cfg->httpd_pid)
        _exit(0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);       /* httpd's graceful signal goes to the process group */
    signal(SIGWINCH, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    apr_initialize();
    umask(077);
    if (dp_watch_prepare_spool(cfg->spool, &why) != 0) {
        dp_log(DP_LOG_ERR, DPLOGNO(10060) "capture watcher: the spool %s: %s (%s); no "
               "captures", cfg->spool, why, strerror(errno));
        _exit(DP_WATCH_STARTUP_ERROR);
    }
    if ((why = dp_watch_keep_caps()) != NULL) {
        dp_log(DP_LOG_ERR, DPLOGNO(10067) "capture watcher: %s (%s); no captures", why,
               strerror(errno));
        _exit(DP_WATCH_STARTUP_ERROR);
    }
    inflight = calloc(MAX_INFLIGHT, sizeof(dp_inflight));
    procs = calloc(MAX_TARGETS, sizeof(watched));
    if (!inflight || !procs)
        _exit(DP_WATCH_STARTUP_ERROR);
    dp_watch_remove_partial(cfg->spool);
    dp_watch_load_windows(cfg, windows);
}

void dp_watch_main(const dp_watch_config *c)
{
    long long next;
    int i;

    cfg = c;
    start();
    next = dp_mono_ms();
    while (!stop_asked) {
        struct pollfd pf = { cfg->capture_fd, POLLIN, 0 };
        long long now = dp_mono_ms();
        if (now >= next) {
            reap();
            tick();
            next = now + 1000;
        }
        long long wait = next - now > 0 ? next - now : 0;
        for (i = 0; i < MAX_RUNNING; i++)
            if (run[i].child && wait > 100)
                wait = 100;         /* a capture that ends is trimmed into the quota soon */
        poll(&pf, cfg->capture_fd >= 0 ? 1 : 0, (int)wait);
        if (pf.revents & POLLIN)
            removals();
        reap();
    }
    /* captures under way end with us (their targets are resumed by SEIZE) */
    for (i = 0; i < MAX_RUNNING; i++)
        if (run[i].child)
            kill(run[i].child, SIGTERM);
    _exit(0);
}
