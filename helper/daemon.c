/* The helper daemon: it drops privileges, then one loop accepts workers
 * (peer checks, helper/policy.c), reads their requests without letting an
 * idle one hold up the others, keeps the table of dumping children and
 * forks a child per request (answered in helper/requests.c). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <apr_general.h>

#include "dump/snapshot.h"
#include "helper/daemon.h"
#include "helper/log.h"
#include "helper/policy.h"
#include "helper/profile.h"
#include "common/proto.h"
#include "proc/procfs.h"
#include "helper/requests.h"
#include "common/capture.h"
#include "common/clock.h"

/* ------------------------------------------------------------ privileges */

/* CAP_CHECKPOINT_RESTORE: opening /proc/PID/map_files/, the only way to a
 * mapped library that was deleted (replaced by a package upgrade). */
static const int kept_caps[] = { CAP_SYS_PTRACE, CAP_KILL, CAP_DAC_READ_SEARCH,
                                 CAP_CHECKPOINT_RESTORE };
#define NKEPT (int)(sizeof(kept_caps) / sizeof(kept_caps[0]))

/* Root-started: become the workers' user, keeping only the
 * capabilities the requests need; then no way back up (no_new_privs) and
 * nobody may ptrace or core-dump the helper itself. NULL, or the step that
 * failed (errno set). */
static const char *drop_privileges(const dp_helper_policy *pol)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    int cap, i;

    if (pol->drop_to_peer && geteuid() == 0) {
        for (cap = 0; cap <= 63; cap++) {
            int keep = 0;
            for (i = 0; i < NKEPT; i++)
                keep |= cap == kept_caps[i];
            if (!keep && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
                return "cannot drop the capabilities it does not need";
        }
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0
            || setgid(pol->peer_gid) != 0 || setuid(pol->peer_uid) != 0)
            return "cannot become the workers' user (User, Group)";
        memset(data, 0, sizeof(data));
        for (i = 0; i < NKEPT; i++) {
            data[kept_caps[i] / 32].effective |= 1u << (kept_caps[i] % 32);
            data[kept_caps[i] / 32].permitted |= 1u << (kept_caps[i] % 32);
        }
        if (syscall(SYS_capset, &hdr, data) != 0)
            return "cannot keep CAP_SYS_PTRACE, CAP_KILL, CAP_DAC_READ_SEARCH and "
                   "CAP_CHECKPOINT_RESTORE (are they in httpd's capability bounding set?)";
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return NULL;
}

/* A dump reads a whole process's memory and compresses it: it yields the
 * CPU and the disks to the site it is taken from. Lowering one's own
 * priority needs no privilege. */
static void lower_priority(const dp_helper_policy *pol)
{
    if (pol->dump_nice > 0)
        setpriority(PRIO_PROCESS, 0, pol->dump_nice);
    if (pol->dump_ioprio)
        syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, pol->dump_ioprio);
}

/* ------------------------------------------------------------- the loop */

typedef struct dump_child {
    pid_t pid;                  /* 0 = free slot */
    pid_t target;
    unsigned long long since;   /* clock ticks since boot, when it started */
} dump_child;

static volatile sig_atomic_t dumps_running;
static dp_cap_counts *shared_dumps;     /* the capture watcher's dumps count too */

static void publish_dumps(void)
{
    if (shared_dumps)
        __atomic_store_n(&shared_dumps->dumps_helper, (int32_t)dumps_running, __ATOMIC_RELAXED);
}

static int watcher_dumps(void)
{
    return shared_dumps ? __atomic_load_n(&shared_dumps->dumps_watcher, __ATOMIC_RELAXED) : 0;
}
static dump_child *dump_children;
static int max_children;

static unsigned long long ticks_since_boot(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (unsigned long long)ts.tv_sec * (unsigned long long)dp_clock_ticks()
           + (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)dp_clock_ticks());
}

/* The loop's wake-up: the SIGCHLD and SIGTERM handlers write a byte to
 * this pipe, which the loop polls with the sockets, so no signal slips in
 * between a check and the wait (a child that ended while the daemon was
 * busy elsewhere was left a zombie until the next connection). */
static int wake_pipe[2] = { -1, -1 };
static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;

    if (getpid() != dp_daemon_pid) {
        /* a child of ours before forked_child(): the daemon's wake-up is
         * not its own, and a SIGTERM ends it as it would have */
        if (sig == SIGTERM) {
            signal(SIGTERM, SIG_DFL);
            raise(SIGTERM);
        }
        errno = saved;
        return;
    }
    if (sig == SIGTERM)
        stop_asked = 1;
    if (write(wake_pipe[1], &c, 1) < 0) {
        /* full: the loop has wake-ups to read already */
    }
    errno = saved;
}

/* First thing in each child the loop forks. */
static void forked_child(void)
{
    signal(SIGTERM, SIG_DFL);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
}

/* A dumping child that was killed left its snapshot's copy a zombie in the
 * target: a short-lived process reaps it there. */
static void after_dump(const dump_child *d, int status)
{
    if (WIFSIGNALED(status) && fork() == 0) {
        forked_child();
        dp_snapshot_reap_orphans(d->target, d->since);
        _exit(0);
    }
}

static void reap(void)
{
    int status, i;
    pid_t c;
    while ((c = waitpid(-1, &status, WNOHANG)) > 0)
        for (i = 0; i < max_children; i++)
            if (dump_children[i].pid == c) {
                after_dump(&dump_children[i], status);
                dump_children[i].pid = 0;
                dumps_running--;
                publish_dumps();
            }
}

/* A client that asks again right after its last byte must not get a 503:
 * a full table (or a dump of the same target) waits briefly for a child to
 * end. -1: the table is full, -2: that target is being dumped. */
static int free_dump_slot(pid_t target)
{
    int i, tries, busy = 0;
    for (tries = 0; tries < 20; tries++) {
        reap();
        busy = 0;
        for (i = 0; i < max_children; i++)
            busy |= dump_children[i].pid && dump_children[i].target == target;
        if (!busy && dumps_running + watcher_dumps() < max_children)
            for (i = 0; i < max_children; i++)
                if (!dump_children[i].pid)
                    return i;
        usleep(10 * 1000);
    }
    return busy ? -2 : -1;
}

/* A connection whose request is still arriving. */
typedef struct pending {
    int fd, pidfd;
    struct ucred peer;
    size_t got;
    dp_request rq;
    long long deadline_ms;
} pending;

#define PENDING_MAX 32
#define REQUEST_WAIT_MS 2000    /* a worker sends its request at once */

static pending waiting[PENDING_MAX];
static int nwaiting;

static void drop_pending(int i)
{
    close(waiting[i].fd);
    if (waiting[i].pidfd >= 0)
        close(waiting[i].pidfd);
    waiting[i] = waiting[--nwaiting];
}

/* The request is complete (or broken): answer it in a child. */
static void dispatch(const dp_helper_policy *pol, pending *w, int complete)
{
    dp_error err = { 0 };
    pid_t child;
    int slot = -1, fd = w->fd;
    unsigned long long since;
    const char *bad = NULL;

    if (complete && !dp_secret_matches(pol, &w->rq)) {
        dp_refuse_peer(&w->peer, "the request lacks this httpd generation's secret");
        return;
    }
    if (!dp_pidfd_alive(w->pidfd)) {
        dp_refuse_peer(&w->peer, "exited before its request was served");
        return;
    }
    if (!complete)
        bad = "The request to the helper is malformed (short or oversized).";
    else {
        char extra;
        if (recv(fd, &extra, 1, MSG_DONTWAIT | MSG_PEEK) > 0)
            bad = "The request to the helper is oversized.";
        else if (dp_request_check(&w->rq, err.msg, sizeof(err.msg)) != 0)
            bad = err.msg;
    }
    if (!bad && w->rq.op == DP_OP_DUMP) {
        slot = free_dump_slot(w->rq.pid);
        if (slot == -2) {
            /* two dumps of one target would fight over ptrace: the second waits */
            dp_fail(&err, 503, "Process %d is already being dumped; try again when that "
                    "dump has finished.", (int)w->rq.pid);
            dp_daemon_send_error(fd, &err);
            return;
        }
        if (slot < 0) {
            int held = (int)dumps_running + watcher_dumps();
            dp_fail(&err, 503, "%d dump%s already running (DiagProcMaxDumps %d; the capture "
                    "rules' take %d of them); try again shortly.", held,
                    held == 1 ? " is" : "s are", pol->max_dumps, watcher_dumps());
            dp_daemon_send_error(fd, &err);
            return;
        }
    }
    since = ticks_since_boot();
    child = fork();
    if (child == 0) {
        int flags = fcntl(fd, F_GETFL);
        forked_child();
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        if (bad) {
            char sink[4096];
            ssize_t n;
            int total = 0;
            struct timeval tv = { 1, 0 };
            dp_refuse_malformed(&w->peer, bad, &err);
            dp_daemon_send_error(fd, &err);
            /* let the peer read the answer: drain (bounded) instead of a reset */
            shutdown(fd, SHUT_WR);
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            while (total < (1 << 20) && (n = recv(fd, sink, sizeof(sink), 0)) > 0)
                total += (int)n;
            _exit(0);
        }
        if (w->rq.op == DP_OP_DUMP)
            lower_priority(pol);
        dp_daemon_serve_one(fd, pol, &w->peer, &w->rq);
        _exit(0);
    }
    if (child > 0 && slot >= 0) {
        dump_children[slot].pid = child;
        dump_children[slot].target = w->rq.pid;
        dump_children[slot].since = since;
        dumps_running++;
        publish_dumps();
    }
    if (child < 0) {
        dp_fail(&err, 503, "The helper cannot fork: %s.", strerror(errno));
        dp_daemon_send_error(fd, &err);
    }
}

/* One connection from the backlog: 0, or -1 when there is none now. */
static int accept_one(int listen_fd, const dp_helper_policy *pol)
{
    struct ucred peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), pidfd;
    const char *why;

    if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE
            || errno == EAGAIN)
            return -1;
        dp_log(DP_LOG_CRIT, DPLOGNO(10006) "helper: cannot accept a connection (%s); "
               "exiting, httpd starts a new one", strerror(errno));
        _exit(1);
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0) {
        close(fd);
        return 0;
    }
    pidfd = dp_peer_pidfd(fd, &peer);
    if ((why = dp_peer_not_a_worker(pol, &peer, pidfd)) != NULL) {
        dp_refuse_peer(&peer, why);
        close(fd);
        if (pidfd >= 0)
            close(pidfd);
        return 0;
    }
    if (nwaiting == PENDING_MAX) {      /* the first is among the oldest */
        dp_refuse_peer(&waiting[0].peer, "too many connections without a request");
        drop_pending(0);
    }
    memset(&waiting[nwaiting], 0, sizeof(waiting[nwaiting]));
    waiting[nwaiting].fd = fd;
    waiting[nwaiting].pidfd = pidfd;
    waiting[nwaiting].peer = peer;
    waiting[nwaiting].deadline_ms = dp_mono_ms() + REQUEST_WAIT_MS;
    nwaiting++;
    return 0;
}

/* More of a waiting request; 1 when it is complete or broken (dispatched). */
static int read_pending(const dp_helper_policy *pol, pending *w)
{
    ssize_t n = recv(w->fd, (char *)&w->rq + w->got, sizeof(w->rq) - w->got, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n > 0) {
        w->got += (size_t)n;
        if (w->got < sizeof(w->rq))
            return 0;
        dispatch(pol, w, 1);
        return 1;
    }
    dispatch(pol, w, 0);        /* EOF or error before the whole request */
    return 1;
}

/* Forked from httpd's parent at any time (its signals blocked around the
 * fork): its handlers and mask go, privileges drop, the loop's signals are
 * set. A failure here ends the helper with DP_HELPER_STARTUP_ERROR after a
 * line that says why: the parent then waits before it tries again. */
static void start(int listen_fd, const dp_helper_policy *pol)
{
    pid_t parent = getppid();
    struct sigaction sa;
    sigset_t none;
    const char *failed;
    int sig;

    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    dp_log_init(pol->log_level);
    if ((failed = drop_privileges(pol)) != NULL) {
        dp_log(DP_LOG_CRIT, DPLOGNO(10001) "helper: cannot start: %s: %s", failed,
               strerror(errno));
        _exit(DP_HELPER_STARTUP_ERROR);
    }
    /* after the credential change, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != parent)
        _exit(0);
    apr_initialize();
    dp_daemon_pid = getpid();
    max_children = pol->max_dumps > 0 ? pol->max_dumps : 1;
    shared_dumps = pol->counts;
    publish_dumps();
    dump_children = calloc((size_t)max_children, sizeof(dump_child));
    /* the profiles' table: shared with the request children and their
     * samplers only, so it is mapped before the first fork */
    if (!dump_children || pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0
        || dp_prof_table_init() != 0) {
        dp_log(DP_LOG_CRIT, DPLOGNO(10007) "helper: cannot start: no memory or pipe for its "
               "loop: %s", strerror(errno));
        _exit(DP_HELPER_STARTUP_ERROR);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);  /* the parent's stop, or its death (PDEATHSIG) */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);       /* httpd's graceful signal goes to the process group */
    signal(SIGWINCH, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);  /* a SIGTERM held since the fork lands now */
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
}

/* Reads the wake-up bytes; on a stop, the counts of the lines left out are
 * written, then the helper exits. */
static void woken(void)
{
    char buf[64];

    while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
        ;
    if (stop_asked) {
        dp_audit_summary();
        _exit(0);
    }
}

#define ACCEPT_BATCH 64         /* a flood of refusals is served in batches */

void dp_daemon_main(int listen_fd, const dp_helper_policy *pol)
{
    long long next_summary = 0;

    start(listen_fd, pol);
    /* one loop for all: an idle peer holds up no one, dropped after REQUEST_WAIT_MS */
    for (;;) {
        struct pollfd pf[PENDING_MAX + 2];
        long long now = dp_mono_ms(), wait = -1;
        int i, n;

        pf[0].fd = listen_fd;
        pf[0].events = POLLIN;
        pf[1].fd = wake_pipe[0];
        pf[1].events = POLLIN;
        for (i = 0; i < nwaiting; i++) {
            pf[i + 2].fd = waiting[i].fd;
            pf[i + 2].events = POLLIN;
            pf[i + 2].revents = 0;
            if (wait < 0 || waiting[i].deadline_ms - now < wait)
                wait = waiting[i].deadline_ms - now > 0 ? waiting[i].deadline_ms - now : 0;
        }
        /* lines left out are counted in a summary at least every DP_AUDIT_SUMMARY_S */
        if (dp_audit_pending()) {
            if (!next_summary)
                next_summary = now + DP_AUDIT_SUMMARY_S * 1000;
            if (wait < 0 || next_summary - now < wait)
                wait = next_summary > now ? next_summary - now : 0;
        }
        n = nwaiting;
        if (poll(pf, (nfds_t)n + 2, (int)wait) < 0 && errno != EINTR) {
            dp_log(DP_LOG_CRIT, DPLOGNO(10008) "helper: poll failed (%s); exiting, httpd "
                   "starts a new one", strerror(errno));
            _exit(1);
        }
        woken();
        reap();
        now = dp_mono_ms();
        if (next_summary && next_summary <= now) {
            dp_audit_summary();
            next_summary = 0;
        }
        /* back to front: drop_pending moves the last entry into the gap */
        for (i = n - 1; i >= 0; i--) {
            if (pf[i + 2].revents && read_pending(pol, &waiting[i])) {
                drop_pending(i);
                continue;
            }
            if (waiting[i].deadline_ms <= now) {
                dp_refuse_peer(&waiting[i].peer, "no request within 2 seconds");
                drop_pending(i);
            }
        }
        for (i = 0; (pf[0].revents & POLLIN) && i < ACCEPT_BATCH; i++)
            if (accept_one(listen_fd, pol) != 0)
                break;
    }
}
