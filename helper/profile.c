/* DP_OP_PROFILE: sessions of sampled profiles. A session is a sampler
 * process forked from the request's child: it outlives the request, samples
 * until stopped, until its maximum duration or until the target exits, and
 * keeps its samples (bounded) until they are fetched or expire.
 *
 * Sessions are found in the helper's table (helper/profile_table.c): shared
 * memory the helper daemon maps before it forks any request child, which
 * only its request children and their samplers reach. Its DP_PROF_SESSIONS
 * entries are the server-wide cap and the one session per target; an entry
 * names the process that samples (pid and start time: a dead sampler's entry
 * is free), and whether it samples (the detail's is_profile_running, asked
 * of the helper: DP_PROF_RUNNING). Nothing a local user can bind, create or
 * connect to decides whether a profile starts, stops or is reported
 * running. The one name a session exposes is the abstract socket its
 * sampler listens on for its stop, which includes a random nonce drawn at
 * the start and published in the table only once the sampler has bound it:
 * no one can bind it first, and no one can take it once bound. A stop
 * connects only to the pid the table names, which must have the helper's
 * uid and capabilities; the sampler answers only a child of the helper
 * daemon. A sampler ends with the helper daemon that made it. The target is
 * never left stopped: samples read memory while it runs, and a native
 * sample stops one thread under PTRACE_SEIZE, which the kernel undoes if the
 * sampler dies. */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "helper/profile.h"
#include "helper/log.h"
#include "common/clock.h"

/* This request's child is the daemon's; the sampler, its grandchild, keeps
 * the daemon's pid from before its fork. */
static pid_t daemon_pid;

static void send_error(int fd, const dp_error *err)
{
    dp_frame_send_error(fd, (uint32_t)(err->status ? err->status : 500), err->msg);
}

#define KEEP_SECONDS DP_PROF_DEF_SECONDS    /* samples of an ended session, unfetched */

typedef struct session {
    pid_t pid;
    int listen_fd, slot, target_fd, daemon_fd, watch_fd;
    unsigned flags;         /* DP_PS_* */
    dp_prof_store *st;
    dp_profiler *pr;
    int sampling;
    int listening;          /* a session's sampler; not the one-call profile */
    long owner;             /* the target's owner when the session started */
} session;

static socklen_t sock_name(struct sockaddr_un *a, const dp_helper_policy *pol, long pid,
                           const char *nonce)
{
    int n;
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, DP_PROF_SOCK_FMT,
                 (long)pol->httpd_pid, pid, nonce);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* The sampler's listening socket under a fresh random nonce, published in
 * its entry once it listens: 0, or -1. */
static int listen_on_nonce(session *s, const dp_helper_policy *pol)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[DP_PROF_NONCE_HEX / 2];
    char nonce[DP_PROF_NONCE_HEX + 1];
    struct sockaddr_un a;
    socklen_t len;
    int tries, i;

    for (tries = 0; tries < 4; tries++) {
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return -1;
        for (i = 0; i < (int)sizeof(r); i++) {
            nonce[2 * i] = hex[r[i] >> 4];
            nonce[2 * i + 1] = hex[r[i] & 15];
        }
        nonce[DP_PROF_NONCE_HEX] = '\0';
        len = sock_name(&a, pol, s->pid, nonce);
        if ((s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            return -1;
        if (bind(s->listen_fd, (struct sockaddr *)&a, len) == 0 && listen(s->listen_fd, 4) == 0) {
            dp_prof_publish(s->slot, nonce);
            return 0;
        }
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    return -1;
}

static int pidfd_of(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The session's entry in the table: 0, or -1 with the answer's error. */
static int claim(session *s, int limit, dp_error *err)
{
    char path[64];
    struct stat sb;

    snprintf(path, sizeof(path), "/proc/%d", (int)s->pid);
    s->owner = stat(path, &sb) == 0 ? (long)sb.st_uid : -1;
    if ((s->slot = dp_prof_claim(s->pid, s->owner, limit, err)) < 0)
        return -1;
    s->target_fd = pidfd_of(s->pid);
    s->daemon_fd = pidfd_of(daemon_pid);
    return 0;
}

/* The session's store and the target's profiler; a worker's samples are
 * labelled with the requests its threads serve. */
static int open_profiler(session *s, const dp_helper_policy *pol, const dp_request *rq,
                         apr_pool_t *p, dp_error *err)
{
    s->st = dp_prof_store_make((unsigned)rq->dump_type, pol->prof_bytes, pol->slots, pol->nslots,
                               p);
    if (dp_profiler_open(&s->pr, s->st, s->pid, dp_ppid_of(s->pid) == pol->httpd_pid, p, err) != 0)
        return -1;
    dp_prof_began(s->st);       /* the duration counts from the first sample */
    return 0;
}

static void stop_sampling(session *s, unsigned why)
{
    s->flags |= why;
    s->sampling = 0;
    dp_prof_ended(s->st);
    dp_prof_set_state(s->slot, DP_PE_KEPT);
}

/* A stop from one of the helper's request children (same uid, same
 * capabilities, a child of the daemon): the worker's connection rides along
 * and gets the profile. 1 when it was served. */
static int serve_stop(session *s, const char *name)
{
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    int c = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC), type, wfd = -1, ok = 0;
    uint32_t len;
    char cmd = 0;
    struct timeval tv = { 2, 0 };

    if (c < 0)
        return 0;
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /* anyone who reads /proc/net/unix may connect: any other peer is closed
     * before a byte is read from it, so it cannot hold the loop */
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cr.uid != getuid()
        || dp_ppid_of(cr.pid) != daemon_pid
        || dp_frame_read_header_fd(c, &type, &len, &wfd) != 0 || type != DP_FR_DATA
        || len != 1 || dp_read_full(c, &cmd, 1) != 0)
        cmd = 0;
    if (cmd == 'S' && wfd >= 0 && dp_write_full(c, "A", 1) == 0) {
        /* taken: a later stop finds no session, even while this one answers */
        close(s->listen_fd);
        s->listen_fd = -1;
        s->listening = 0;
        stop_sampling(s, 0);
        dp_prof_set_state(s->slot, DP_PE_FETCHING);
        dp_prof_send(s->st, wfd, name, s->flags);
        ok = 1;
    }
    if (wfd >= 0)
        close(wfd);
    close(c);
    return ok;
}

/* Samples until the deadline, the target's exit, a stop (listen_fd), the
 * worker's going away (watch_fd) or the daemon's end. 1 when a stop
 * fetched the samples, 0 when the session ended, -1 to drop it. */
static int sample_loop(session *s, uint64_t deadline_ms, const char *name)
{
    uint64_t keep_until = 0;

    for (;;) {
        struct pollfd pf[4] = { { s->listening ? s->listen_fd : -1, POLLIN, 0 },
                                { s->daemon_fd, POLLIN, 0 },
                                { s->target_fd, POLLIN, 0 }, { s->watch_fd, POLLIN, 0 } };
        uint64_t now = dp_mono_ms();
        int wait_ms;

        if (s->sampling && now >= deadline_ms) {
            stop_sampling(s, s->watch_fd >= 0 ? 0 : DP_PS_EXPIRED);
            if (s->watch_fd >= 0)
                return 0;
        }
        if (!keep_until && !s->sampling)
            keep_until = dp_mono_ms() + KEEP_SECONDS * 1000u;
        if (keep_until && dp_mono_ms() >= keep_until)
            return -1;
        wait_ms = keep_until ? 1000 : (int)(dp_prof_delay_us(s->st) / 1000u);
        if (poll(pf, 4, wait_ms) < 0 && errno != EINTR)
            return -1;
        if (pf[1].revents)
            return -1;                      /* the helper daemon is gone */
        if (pf[3].revents)
            return -1;                      /* the worker went away */
        if (pf[2].revents && s->sampling) {
            stop_sampling(s, DP_PS_EXITED);
            if (s->watch_fd >= 0)
                return 0;
        }
        if (pf[0].revents && serve_stop(s, name))
            return 1;
        if (!keep_until && !pf[0].revents && !pf[2].revents && dp_profiler_tick(s->pr) != 0)
            stop_sampling(s, DP_PS_EXITED);
    }
}

static void close_session(session *s)
{
    int *fds[] = { &s->listen_fd, &s->target_fd, &s->daemon_fd };
    size_t i;
    for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    dp_prof_release(s->slot);
    s->slot = -1;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Closes every descriptor but the standard ones, the worker's and the
 * session's: a process that lives for minutes must not hold the daemon's
 * socket or other workers' pending connections open (a worker would not
 * see them close). */
/* close_range(2) by its number: glibc 2.31 (Debian 11) has no wrapper; a
 * kernel without it (before 5.9) gets the descriptors closed one by one. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
static void close_fds(unsigned from, unsigned to)
{
    long max = sysconf(_SC_OPEN_MAX);

    if (syscall(SYS_close_range, from, to, 0) == 0)
        return;
    if (max < 0 || max > 65536)
        max = 65536;
    for (; from <= to && from < (unsigned)max; from++)
        close((int)from);
}

void dp_prof_keep_fds(int *keep, int n)
{
    int i, from = 3;

    qsort(keep, (size_t)n, sizeof(int), cmp_int);
    for (i = 0; i < n; i++) {
        if (keep[i] < from)
            continue;
        if (keep[i] > from)
            close_fds((unsigned)from, (unsigned)keep[i] - 1);
        from = keep[i] + 1;
    }
    close_fds((unsigned)from, ~0U);
}

static void close_others(const session *s, int fd)
{
    int keep[6] = { 2, fd, s->listen_fd, s->target_fd, s->daemon_fd, s->watch_fd };
    dp_prof_keep_fds(keep, 6);
}

/* A start that starts nothing: its error, except that a start while a
 * profile of that process runs (the table's 409) is 200, as Kudu's
 * ProfileManager answers. */
static void refuse_start(int fd, const dp_error *err, const char *name, int claimed)
{
    if (!claimed && err->status == 409) {
        dp_frame_send_ok(fd, 0, name);
        dp_frame_send_end(fd);
    }
    else
        send_error(fd, err);
    close(fd);
}

/* The sampler process of a session: takes its entry, answers the start,
 * then samples. */
static void run_sampler(session *s, int fd, const dp_helper_policy *pol, const dp_request *rq,
                        const char *name, apr_pool_t *p)
{
    dp_error err = { 0 };
    uint64_t deadline;

    prctl(PR_SET_NAME, "diagproc-prof");
    /* not in the request child's process group; and a session is a
     * scheduling group of its own (autogroup): mostly asleep, the sampler
     * runs when its period says even while the target's group is busy */
    setsid();
    if (claim(s, pol->prof_sessions, &err) != 0)
        return refuse_start(fd, &err, name, 0);
    if (listen_on_nonce(s, pol) != 0) {
        dp_fail(&err, 500, "The profile's sampler cannot listen: %s.", strerror(errno));
        return refuse_start(fd, &err, name, 1);
    }
    s->listening = 1;
    close_others(s, fd);
    if (open_profiler(s, pol, rq, p, &err) != 0)
        return refuse_start(fd, &err, name, 1);
    /* the duration counts from the first sample, not from the objects' opening */
    deadline = dp_mono_ms() + (uint64_t)(rq->timeout_s ? rq->timeout_s : (unsigned)pol->prof_seconds)
                           * 1000u;
    dp_frame_send_ok(fd, 0, name);
    dp_frame_send_end(fd);
    close(fd);
    dp_log(DP_LOG_NOTICE, DPLOGNO(10009) "helper: profile of pid %d (%s) started at %u Hz "
           "for at most %u s, sampler pid %d", (int)s->pid, name, (unsigned)rq->dump_type,
           rq->timeout_s ? rq->timeout_s : (unsigned)pol->prof_seconds, (int)getpid());
    if (sample_loop(s, deadline, name) == 1)
        dp_log(DP_LOG_NOTICE, DPLOGNO(10010) "helper: profile of pid %d stopped and fetched",
               (int)s->pid);
    else
        dp_log(DP_LOG_NOTICE, DPLOGNO(10012) "helper: profile of pid %d ended unfetched "
               "(%s)", (int)s->pid, (s->flags & DP_PS_EXITED) ? "the target exited"
               : (s->flags & DP_PS_EXPIRED) ? "its samples expired" : "the helper stopped");
    dp_profiler_close(s->pr);
}

/* A start: the sampler, forked first, takes the session's entry itself (so
 * that the entry is held by the process that samples) and answers. */
static void start(int fd, const dp_helper_policy *pol, const dp_request *rq,
                  const char *name, apr_pool_t *p)
{
    session s = { rq->pid, -1, -1, -1, -1, -1, 0, NULL, NULL, 1, 0, -1 };
    dp_error err = { 0 };
    pid_t child = fork();

    if (child == 0) {
        run_sampler(&s, fd, pol, rq, name, p);
        close_session(&s);
        _exit(0);
    }
    if (child < 0) {
        dp_fail(&err, 503, "The helper cannot fork a sampler: %s.", strerror(errno));
        send_error(fd, &err);
    }
}

/* The capabilities line of a process's status, or "" */
static void cap_eff(pid_t pid, char *out, size_t cap)
{
    char path[64], buf[4096], *at;
    FILE *f;
    size_t n;

    out[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "re")))
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((at = strstr(buf, "\nCapEff:")))
        snprintf(out, cap, "%.*s", (int)strcspn(at + 1, "\n"), at + 1);
}

/* The listener is the session's sampler: the process the table names, with
 * the helper's uid and capabilities. */
static int is_sampler(int c, pid_t sampler)
{
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    char mine[128], theirs[128];

    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cr.uid != getuid()
        || cr.pid != sampler)
        return 0;
    cap_eff(getpid(), mine, sizeof(mine));
    cap_eff(cr.pid, theirs, sizeof(theirs));
    return mine[0] && !strcmp(mine, theirs);
}

static void stop(int fd, const dp_helper_policy *pol, const dp_request *rq)
{
    struct sockaddr_un a;
    char nonce[DP_PROF_NONCE_HEX + 1];
    pid_t sampler;
    int c = -1;
    dp_error err = { 0 };

    if (dp_prof_find_stop(rq->pid, &sampler, nonce) != 0
        || (c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0
        || connect(c, (struct sockaddr *)&a, sock_name(&a, pol, rq->pid, nonce)) != 0
        || !is_sampler(c, sampler)) {
        if (c >= 0)
            close(c);
        dp_fail(&err, 404, "Profiling for process '%d' is not running.", (int)rq->pid);
        return send_error(fd, &err);
    }
    /* the sampler answers the worker itself, on the worker's connection */
    if (dp_frame_write_fd(c, DP_FR_DATA, "S", 1, fd) != 0) {
        dp_fail(&err, 500, "The profile's sampler did not take the stop.");
        send_error(fd, &err);
    }
    else {
        /* the sampler checks who we are (our parent) while we live: we wait
         * until it has answered and closed */
        struct timeval tv = { 60, 0 };
        char b = 0;
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (read(c, &b, 1) != 1 || b != 'A') {
            /* a session that was ending: it did not take the stop */
            dp_fail(&err, 404, "Profiling for process '%d' is not running.", (int)rq->pid);
            send_error(fd, &err);
        }
        while (read(c, &b, 1) > 0)
            ;
    }
    close(c);
}

/* One call: this request's child samples and answers; the worker's going
 * away ends it. */
static void run(int fd, const dp_helper_policy *pol, const dp_request *rq, const char *name,
                apr_pool_t *p)
{
    session s = { rq->pid, -1, -1, -1, -1, fd, 0, NULL, NULL, 1, 0, -1 };
    dp_error err = { 0 };
    int rc;

    if (claim(&s, pol->prof_sessions, &err) != 0)
        return send_error(fd, &err);
    close_others(&s, fd);
    setsid();           /* a scheduling group of its own, as a session's sampler */
    if (open_profiler(&s, pol, rq, p, &err) != 0) {
        close_session(&s);
        return send_error(fd, &err);
    }
    dp_log(DP_LOG_NOTICE, DPLOGNO(10011) "helper: profile of pid %d (%s) for %u s at %u Hz",
           (int)s.pid, name, rq->timeout_s, (unsigned)rq->dump_type);
    rc = sample_loop(&s, dp_mono_ms() + (uint64_t)rq->timeout_s * 1000u, name);
    close_session(&s);      /* the entry is free before the answer arrives */
    if (rc == 0)
        dp_prof_send(s.st, fd, name, s.flags);
    dp_profiler_close(s.pr);
}

long dp_profile_owner(pid_t pid)
{
    return dp_prof_owner(pid);
}

void dp_profile_serve(int fd, const dp_helper_policy *pol, const dp_request *rq,
                      const char *name, apr_pool_t *p)
{
    daemon_pid = getppid();
    switch (rq->what) {
    case DP_PROF_START:
        start(fd, pol, rq, name, p);
        break;
    case DP_PROF_STOP:
        stop(fd, pol, rq);
        break;
    case DP_PROF_RUN:
        run(fd, pol, rq, name, p);
        break;
    case DP_PROF_RUNNING:
        if (dp_frame_send_ok(fd, dp_prof_sampling(rq->pid) ? 1 : 0, "") == 0)
            dp_frame_send_end(fd);
        break;
    }
}
