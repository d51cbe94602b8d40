/* DP_PROF_SITE: one profile of the whole site. Every process the httpd
 * parent forked (its workers; the helper aside) and every process that
 * holds the listening socket of a backend the site's requests are proxied
 * to (a php-fpm pool's children, gunicorn's workers, a mod_wsgi daemon's
 * processes: the backends httpd's slots name, "unix:PATH" or "tcp:PORT")
 * are sampled together into one store, each within the request's policy
 * like any other target (a process outside the Location's scope is left
 * out). The set is looked at again every second: processes come and go.
 *
 * Each sample is labelled with the request it serves: a worker thread's
 * from httpd's slots; a backend's from the slots' requests being proxied
 * to its pool -- the one there is, or, for a PHP backend, the one whose URI
 * is the one its own SG(request_info) holds (which alone has no vhost). */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "helper/profile.h"
#include "helper/policy.h"
#include "helper/sockdiag.h"
#include "helper/log.h"
#include "proc/procfs.h"
#include "proc/protect.h"
#include "proc/sockets.h"
#include "common/clock.h"

#define SITE_MAX_TARGETS 256
#define SITE_SCAN_MS 1000
#define SITE_MAX_BACKENDS 64        /* distinct backends of the site's requests */
#define SITE_MAX_FDS 16384          /* descriptors read per process, looking for their holders */
#define SITE_SCAN_BUDGET_MS 200     /* per look, for that */

typedef struct site site;

typedef struct target {
    pid_t pid;
    apr_pool_t *pool;
    dp_profiler *pr;
    const site *s;
    char backend[sizeof(((dp_slot *)0)->backend)];  /* a backend's: its pool's address */
} target;

struct site {
    const dp_helper_policy *pol;
    dp_request rq;                  /* pid set per candidate, for the policy */
    apr_pool_t *pool;
    dp_prof_store *st;
    apr_hash_t *targets;            /* pid -> target * */
    apr_hash_t *refused;            /* pid -> "" : not asked again */
    apr_hash_t *backends;           /* the addresses seen in the slots, kept */
    int nrefused;
};

/* SG's URI and query (uri, "" when not PHP) is this request's URI. */
static int same_uri(const char *slot_uri, const char *uri)
{
    size_t n = strlen(uri), m = strlen(slot_uri);
    return n && m >= n && !strcmp(slot_uri + m - n, uri);
}

static void backend_label(void *arg, pid_t pid, pid_t tid, char uri[DP_SLOT_URI], char vhost[64])
{
    const target *t = arg;
    const site *s = t->s;
    dp_slot c, found;
    int n = 0;
    size_t k;

    (void)pid, (void)tid;
    for (k = 0; k < s->pol->nslots && n < 2; k++) {
        const dp_slot *e = &s->pol->slots[k];
        if (!__atomic_load_n(&e->serving, __ATOMIC_RELAXED) || e->backend[0] != t->backend[0]
            || dp_slot_copy(e, &c) != 0 || !c.serving || strcmp(c.backend, t->backend)
            || (uri[0] && !same_uri(c.uri, uri)))
            continue;
        /* requests alike (URI and vhost) label it alike, whichever it serves */
        if (!n || strcmp(c.uri, found.uri) || strcmp(c.vhost, found.vhost))
            n++;
        found = c;
    }
    if (n == 1) {           /* else: none, or which is this process's is not known */
        memcpy(uri, found.uri, DP_SLOT_URI);
        memcpy(vhost, found.vhost, 64);
    }
}

static void add_target(site *s, pid_t pid, const char *backend)
{
    dp_stat st;
    dp_error err = { 0 };
    target *t;
    apr_pool_t *tp;

    if (apr_hash_get(s->targets, &pid, sizeof(pid)) || apr_hash_get(s->refused, &pid, sizeof(pid))
        || apr_hash_count(s->targets) >= SITE_MAX_TARGETS)
        return;
    s->rq.pid = pid;
    if (dp_read_stat(pid, 0, &st, NULL) != 0)
        return;
    if (dp_check_protected(pid, &st, s->pol->httpd_pid, getppid(), &err) != 0
        || dp_policy_check_target(s->pol, &s->rq, &st, &err) != 0) {
        apr_hash_set(s->refused, apr_pmemdup(s->pool, &pid, sizeof(pid)), sizeof(pid), "");
        s->nrefused++;
        dp_log(DP_LOG_DEBUG, DPLOGNO(10015) "helper: the site's profile leaves out pid %d: %s",
               (int)pid, err.msg);
        return;
    }
    apr_pool_create(&tp, s->pool);
    t = apr_pcalloc(tp, sizeof(*t));
    t->pid = pid;
    t->pool = tp;
    t->s = s;
    if (dp_profiler_open(&t->pr, s->st, pid, !backend, tp, &err) != 0) {
        apr_pool_destroy(tp);
        return;     /* gone meanwhile, or unreadable: looked at again next time */
    }
    if (backend) {
        apr_cpystrn(t->backend, backend, sizeof(t->backend));
        dp_profiler_set_label(t->pr, backend_label, t);
    }
    apr_hash_set(s->targets, &t->pid, sizeof(t->pid), t);
}

static void drop_target(site *s, target *t)
{
    apr_hash_set(s->targets, &t->pid, sizeof(t->pid), NULL);
    dp_profiler_close(t->pr);
    apr_pool_destroy(t->pool);
}

/* The listening sockets of the site's backends, inode -> the backend's
 * address: every address a slot has named since the profile began
 * ("unix:PATH" by its bound path, through sock_diag; "tcp:PORT" by the
 * LISTEN entries of that port). */
static apr_hash_t *backend_listeners(site *s, apr_pool_t *lp)
{
    apr_hash_t *want = apr_hash_make(lp), *names = NULL;
    apr_array_header_t *tcp = NULL;
    apr_hash_index_t *hi;
    size_t k;
    int i;

    for (k = 0; k < s->pol->nslots && apr_hash_count(s->backends) < SITE_MAX_BACKENDS; k++) {
        dp_slot c;
        if (s->pol->slots[k].backend[0] && dp_slot_copy(&s->pol->slots[k], &c) == 0
            && c.backend[0] && !apr_hash_get(s->backends, c.backend, APR_HASH_KEY_STRING)) {
            char *key = apr_pstrdup(s->pool, c.backend);
            apr_hash_set(s->backends, key, APR_HASH_KEY_STRING, key);
        }
    }
    for (hi = apr_hash_first(lp, s->backends); hi; hi = apr_hash_next(hi)) {
        const char *key = apr_hash_this_key(hi);
        if (!strncmp(key, "unix:", 5)) {
            const dp_unix_listener *l;
            if (!names) {
                int nl = dp_sockdiag_open();
                names = apr_hash_make(lp);
                if (nl >= 0) {
                    dp_unix_queues(nl, 4096, names, lp);
                    close(nl);
                }
            }
            if ((l = apr_hash_get(names, key + 5, APR_HASH_KEY_STRING)))
                apr_hash_set(want, &l->inode, sizeof(l->inode), key);
            continue;
        }
        if (!tcp) {
            tcp = apr_array_make(lp, 64, sizeof(dp_tcp_entry));
            for (i = 0; i < 2; i++) {
                char *buf;
                size_t len;
                if (dp_read_file(i ? "/proc/net/tcp6" : "/proc/net/tcp", &buf, &len, lp) == 0)
                    dp_parse_tcp_table(buf, len, i ? 6 : 4, 100000, tcp);
            }
        }
        for (i = 0; i < tcp->nelts; i++) {
            dp_tcp_entry *e = &APR_ARRAY_IDX(tcp, i, dp_tcp_entry);
            if (e->state == DP_TCP_LISTEN && e->lport == (unsigned)atoi(key + 4))
                apr_hash_set(want, &e->inode, sizeof(e->inode), key);
        }
    }
    return want;
}

/* Every process that holds one of the backends' listeners: found even
 * between two of their requests. Processes already known are not read
 * again; the scan is bounded in descriptors and time. */
static void find_pools(site *s, apr_pool_t *lp)
{
    apr_hash_t *want = backend_listeners(s, lp);
    uint64_t until = dp_mono_ms() + SITE_SCAN_BUDGET_MS;
    DIR *d;
    struct dirent *de;

    if (!apr_hash_count(want) || !(d = opendir("/proc")))
        return;
    while ((de = readdir(d)) != NULL && dp_mono_ms() < until) {
        pid_t pid = (pid_t)atoi(de->d_name);
        char path[64], link[64];
        DIR *fds;
        struct dirent *fe;
        int n = 0;
        if (pid <= 0 || pid == getpid() || pid == getppid()
            || apr_hash_get(s->targets, &pid, sizeof(pid))
            || apr_hash_get(s->refused, &pid, sizeof(pid)))
            continue;
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        if (!(fds = opendir(path)))
            continue;
        while ((fe = readdir(fds)) != NULL && n++ < SITE_MAX_FDS) {
            char fpath[64 + 256];
            const char *backend;
            ssize_t k;
            unsigned long long inode;
            snprintf(fpath, sizeof(fpath), "%s/%s", path, fe->d_name);
            if ((k = readlink(fpath, link, sizeof(link) - 1)) <= 8)
                continue;
            link[k] = '\0';
            if (!strncmp(link, "socket:[", 8) && (inode = strtoull(link + 8, NULL, 10))
                && (backend = apr_hash_get(want, &inode, sizeof(inode)))) {
                add_target(s, pid, backend);
                break;
            }
        }
        closedir(fds);
    }
    closedir(d);
}

/* Looks at the site again: the httpd parent's children, then the
 * processes of the backends the slots name. */
static void look(site *s)
{
    apr_pool_t *lp;
    DIR *d = opendir("/proc");
    struct dirent *de;

    if (!d)
        return;
    apr_pool_create(&lp, s->pool);
    while ((de = readdir(d)) != NULL) {
        dp_stat st;
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid > 0 && pid != getppid() && dp_read_stat(pid, 0, &st, NULL) == 0
            && st.ppid == s->pol->httpd_pid)
            add_target(s, pid, NULL);
    }
    closedir(d);
    if (s->pol->slots)
        find_pools(s, lp);
    apr_pool_destroy(lp);
}

void dp_profile_site(int fd, const dp_helper_policy *pol, const dp_request *rq, apr_pool_t *p)
{
    site s = { pol, *rq, p, NULL, apr_hash_make(p), apr_hash_make(p), apr_hash_make(p), 0 };
    int daemon_fd = (int)syscall(SYS_pidfd_open, getppid(), 0);
    int keep[3] = { 2, fd, daemon_fd }, slot, gone = 0;
    uint64_t deadline_us, next_look = 0;
    dp_error err = { 0 };
    apr_hash_index_t *hi;

    if ((slot = dp_prof_claim(0, -1, pol->prof_sessions, &err)) < 0) {
        dp_frame_send_error(fd, (uint32_t)err.status, err.msg);
        return;
    }
    dp_prof_keep_fds(keep, 3);
    /* a session of its own is a scheduling group of its own (autogroup):
     * mostly asleep, it runs when its period says even on a busy machine,
     * not when one of the site's processes yields (then it would miss what
     * those were doing: short requests) */
    setsid();
    s.st = dp_prof_store_make((unsigned)rq->dump_type, pol->prof_bytes, pol->slots, pol->nslots,
                              p);
    dp_log(DP_LOG_NOTICE, DPLOGNO(10013) "helper: profile of the site for %u s at %u Hz",
           rq->timeout_s, (unsigned)rq->dump_type);
    /* the duration counts from the first sample: opening every process's
     * objects takes a while (about 0.1 s each) */
    look(&s);
    dp_prof_began(s.st);
    next_look = dp_mono_ms() + SITE_SCAN_MS;
    /* in µs, as the duration is counted: whole ms would end it up to 1 ms short */
    deadline_us = dp_mono_us() + (uint64_t)rq->timeout_s * 1000000u;
    while (!gone) {
        uint64_t now = dp_mono_ms(), began = now, spent;
        struct pollfd pf[2] = { { fd, POLLIN, 0 }, { daemon_fd, POLLIN, 0 } };
        int wait_ms;
        if (dp_mono_us() >= deadline_us)
            break;
        if (now >= next_look) {
            look(&s);
            next_look = now + SITE_SCAN_MS;
        }
        /* the hash's own iterator: one from the pool each tick would grow it for
         * the whole profile */
        for (hi = apr_hash_first(NULL, s.targets); hi; hi = apr_hash_next(hi)) {
            void *v;
            apr_hash_this(hi, NULL, NULL, &v);
            if (dp_profiler_tick(((target *)v)->pr) != 0)
                drop_target(&s, v);     /* exited: its samples stay */
        }
        /* the period counts from this tick's start: many targets take time */
        spent = dp_mono_ms() - began;
        wait_ms = (int)(dp_prof_delay_us(s.st) / 1000u);
        wait_ms = spent >= (uint64_t)wait_ms ? 0 : wait_ms - (int)spent;
        if (poll(pf, 2, wait_ms) < 0 && errno != EINTR)
            gone = 1;
        if (pf[0].revents || pf[1].revents)
            gone = 1;       /* the worker went away, or the daemon ended */
    }
    dp_prof_ended(s.st);
    dp_prof_release(slot);
    dp_log(DP_LOG_NOTICE, DPLOGNO(10014) "helper: profile of the site %s (%u processes "
           "sampled at the end, %d left out by the configuration)",
           gone ? "abandoned" : "ended", apr_hash_count(s.targets), s.nrefused);
    if (!gone)
        dp_prof_send(s.st, fd, "site", 0);
    for (hi = apr_hash_first(p, s.targets); hi; hi = apr_hash_next(hi)) {
        void *v;
        apr_hash_this(hi, NULL, NULL, &v);
        dp_profiler_close(((target *)v)->pr);
    }
    if (daemon_fd >= 0)
        close(daemon_fd);
}
