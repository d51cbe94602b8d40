/* The helper's checks of who asks (peer, secret) and of what a request may
 * do to its target under the configuration it holds. No httpd headers. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper/daemon.h"
#include "helper/log.h"
#include "helper/policy.h"
#include "common/actions.h"
#include "common/proto.h"
#include "proc/procfs.h"
#include "dump/core.h"

int dp_policy_allows_uid(const dp_helper_policy *pol, long uid)
{
    int i;
    for (i = 0; i < pol->nuids; i++)
        if ((long)pol->uids[i] == uid)
            return 1;
    return pol->all_users && uid != 0;
}

static const dp_helper_section *section(const dp_helper_policy *pol, int i)
{
    return i >= 0 && i < pol->nsections ? &pol->sections[i] : NULL;
}

unsigned dp_policy_actions(const dp_helper_policy *pol, int allow_section, int scope_section)
{
    const dp_helper_section *a = section(pol, allow_section);

    if (!a || scope_section < -1 || scope_section >= pol->nsections)
        return 0;
    /* a section's actions reach the scope of that section, of a section it
     * nests with, or the default when it names no users itself */
    if (allow_section == scope_section
        || (scope_section < 0 && !a->has_users)
        || (scope_section >= 0 && pol->pairs
            && pol->pairs[allow_section * pol->nsections + scope_section]))
        return a->allow;
    return 0;
}

int dp_policy_in_scope(const dp_helper_policy *pol, int scope_section, long uid)
{
    const dp_helper_section *s = section(pol, scope_section);
    int i;

    if (scope_section < -1 || scope_section >= pol->nsections)
        return 0;
    if (!s || !s->has_users)
        return uid == (long)pol->peer_uid;      /* the default: the workers' user */
    if (s->all_users)
        return 1;
    for (i = 0; i < s->nuids; i++)
        if ((long)s->uids[i] == uid)
            return 1;
    return 0;
}


#define DP_MAX_HELD 1024
long dp_policy_foreign_group(const dp_helper_policy *pol, int scope_section,
                             const dp_status *ss, const char *status)
{
    const dp_helper_section *s = section(pol, scope_section);
    const gid_t *have = s && s->has_users ? s->gids : pol->peer_gids;
    int nhave = s && s->has_users ? s->ngids : pol->npeer_gids, i, k, n = 0;
    const char *g = strstr(status, "\nGroups:");
    long held[4 + DP_MAX_HELD];

    if (!g)
        return -2;
    for (i = 0; i < 4; i++)
        held[n++] = ss->gid[i];
    for (g += 8; *g == ' ' || *g == '\t'; g++)
        ;
    while (*g != '\n') {
        char *end;
        if (n == 4 + DP_MAX_HELD)
            return -2;
        held[n++] = strtol(g, &end, 10);
        if (end == g)
            return -2;              /* the line was cut short, or is not numbers */
        for (g = end; *g == ' ' || *g == '\t'; g++)
            ;
    }
    for (i = 0; i < n; i++) {
        int in = 0;
        for (k = 0; k < nhave && !in; k++)
            in = (long)have[k] == held[i];
        if (held[i] == 0 || !in)
            return held[i];
    }
    return -1;
}


int dp_policy_check_target(const dp_helper_policy *pol, const dp_request *rq, dp_stat *st,
                           dp_error *err)
{
    static const char *slot[4] = { "real", "effective", "saved", "filesystem" };
    unsigned need = dp_actions_needed(rq), have;
    char path[64], buf[16384];
    dp_status ss;
    ssize_t n;
    int i, root_ok;
    pid_t pid = rq->pid;

    have = need ? dp_policy_actions(pol, rq->allow_section, rq->scope_section) : 0;
    if (need & ~have) {
        unsigned missing = need & ~have, bit = missing & (~missing + 1);
        return dp_fail(err, 403, "The configuration section this request comes from does not "
                       "allow '%s' (DiagProcAllow).", dp_action_by_bit(bit)->word);
    }
    if (dp_read_stat(pid, 0, st, err) != 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    n = dp_read_small(path, buf, sizeof(buf));
    if (n <= 0 || dp_parse_status(buf, (size_t)n, &ss) != 0)
        return dp_fail_not_running(err, pid);
    for (i = 0; i < 4; i++) {
        if (!dp_policy_allows_uid(pol, ss.uid[i]))
            return dp_fail(err, 403, "Process %d (%s uid %ld) is outside the helper's ceiling "
                           "(DiagProcHelperUsers / DiagProcUsers).", (int)pid, slot[i],
                           ss.uid[i]);
        if (!dp_policy_in_scope(pol, rq->scope_section, ss.uid[i]))
            return dp_fail(err, 403, "Process %d (%s uid %ld) is outside this location's "
                           "scope (DiagProcUsers).", (int)pid, slot[i], ss.uid[i]);
    }
    root_ok = dp_policy_allows_uid(pol, 0) && dp_policy_in_scope(pol, rq->scope_section, 0);
    if (!root_ok) {
        long g;
        if (ss.caps_known != 3 || ss.cap_prm || ss.cap_eff || ss.cap_amb)
            return dp_fail(err, 403, "Process %d holds capabilities (CapPrm %llx); only a "
                           "scope that includes root may reach it.", (int)pid, ss.cap_prm);
        for (i = 0; i < 4; i++)
            if (ss.gid[i] == 0 || ss.gid[i] != ss.gid[0])
                return dp_fail(err, 403, "Process %d holds group %ld (%s gid) besides its "
                               "real group %ld; only a scope that includes root may reach "
                               "it.", (int)pid, ss.gid[i], slot[i], ss.gid[0]);
        if ((g = dp_policy_foreign_group(pol, rq->scope_section, &ss, buf)) == -2)
            return dp_fail(err, 403, "Process %d: its groups could not all be read; only a "
                           "scope that includes root may reach it.", (int)pid);
        if (g >= 0)
            return dp_fail(err, 403, "Process %d holds group %ld, which no user in this "
                           "location's scope (DiagProcUsers) has: privileges the scope does "
                           "not include.", (int)pid, g);
    }
    return 0;
}

/* A refusal of a peer or request: logged (to httpd's error log, the
 * helper's stderr) with who asked and why; the peer gets no answer. Rate
 * limited per reason and uid (helper/log.c): a flood of refused
 * connections costs a compare-and-swap each, and is counted, not written. */
void dp_refuse_peer(const struct ucred *peer, const char *why)
{
    char what[160];

    snprintf(what, sizeof(what), "refused connections from uid %d gid %d: %s",
             (int)peer->uid, (int)peer->gid, why);
    dp_audit(dp_audit_kind(10003, why), peer->uid, what, DPLOGNO(10003) "helper: refused a "
             "connection from pid %d uid %d gid %d: %s", (int)peer->pid, (int)peer->uid,
             (int)peer->gid, why);
}

/* A request the configuration does not grant (a 403 of the checks above):
 * logged with who asked, what and through which sections, then answered. */
int dp_refuse_request(const struct ucred *peer, const dp_request *rq, const dp_error *err)
{
    static const char *ops[] = { "?", "read", "kill", "dump", "stacks", "profile" };
    const char *op = rq->op < DP_OP_END ? ops[rq->op] : "?";
    char what[160];

    if (!peer || err->status != 403)
        return -1;
    snprintf(what, sizeof(what), "refused requests (%s) from uid %d gid %d", op,
             (int)peer->uid, (int)peer->gid);
    dp_audit(dp_audit_kind(10004, op), peer->uid, what, DPLOGNO(10004) "helper: refused a "
             "request from pid %d uid %d gid %d: %s of pid %d through sections %d/%d: %s",
             (int)peer->pid, (int)peer->uid, (int)peer->gid, op, (int)rq->pid,
             (int)rq->allow_section, (int)rq->scope_section, err->msg);
    return -1;
}

/* A malformed request from a peer that passed the checks: a worker does not
 * send one, so it is logged like a refusal; it gets a 400. */
void dp_refuse_malformed(const struct ucred *peer, const char *why, dp_error *err)
{
    char what[160];

    snprintf(what, sizeof(what), "malformed requests from uid %d gid %d", (int)peer->uid,
             (int)peer->gid);
    dp_audit(dp_audit_kind(10005, NULL), peer->uid, what, DPLOGNO(10005) "helper: refused a "
             "request from pid %d uid %d gid %d: malformed: %s", (int)peer->pid,
             (int)peer->uid, (int)peer->gid, why);
    dp_fail(err, 400, "%s", why);
}

/* 1 while the process behind a pidfd has not exited: a live pidfd means its
 * pid was not recycled, so what /proc says of that pid is about the peer. */
int dp_pidfd_alive(int pidfd)
{
    struct pollfd pf = { pidfd, POLLIN, 0 };
    int n;

    /* the daemon's SIGCHLD (a request child ending) may land in this poll:
     * an interrupted poll says nothing about the peer */
    do
        n = poll(&pf, 1, 0);
    while (n < 0 && errno == EINTR);
    return pidfd >= 0 && n == 0;
}

/* Why a peer could be driven by another process of its user, or NULL. A
 * process its user may ptrace (dumpable: CoreDumpDirectory, fs.suid_dumpable
 * = 1, a module's prctl) is that user's to steer: its secret is readable and
 * any request can be injected into it. The kernel shows it in the owner of
 * /proc/PID/mem, root's unless the process is dumpable by its user. A thread
 * already traced by anyone but one of the helper's own children (a dump of
 * that worker) may be driven by its tracer, made dumpable or not. */
static const char *peer_ptraceable(pid_t pid)
{
    static char why[96];
    char path[64], buf[4096], *tp;
    struct stat sb;
    struct dirent *de;
    DIR *d;
    long tracer = 0, tid = 0;
    dp_stat st;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    if (stat(path, &sb) != 0)
        return "its memory's owner could not be read";
    if (sb.st_uid != 0)
        return "dumpable: any process of its user may ptrace it";
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return "its threads could not be read";
    while (!tracer && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        tid = atol(de->d_name);
        snprintf(path, sizeof(path), "/proc/%d/task/%ld/status", (int)pid, tid);
        if ((n = dp_read_small(path, buf, sizeof(buf))) > 0
            && (tp = strstr(buf, "\nTracerPid:")) != NULL)
            tracer = strtol(tp + 11, NULL, 10);
        if (tracer > 0 && dp_read_stat((pid_t)tracer, 0, &st, NULL) == 0 && st.ppid == getpid())
            tracer = 0;     /* a request child of this helper, dumping the worker */
    }
    closedir(d);
    if (!tracer)
        return NULL;
    snprintf(why, sizeof(why), "its thread %ld is traced by pid %ld", tid, tracer);
    return why;
}

/* Only httpd's own workers: the workers' user, a child of this httpd's
 * parent, running the httpd executable. A CGI script or any other process
 * of that user fails the second or third test. Started as root, the helper
 * also refuses a worker that its user may ptrace (see above); an ordinary
 * user's workers are dumpable by nature, and the helper has no more power
 * than they have. */
const char *dp_peer_not_a_worker(const dp_helper_policy *pol, const struct ucred *peer,
                                     int pidfd)
{
    char path[64];
    struct stat sb;
    dp_stat st;
    const char *why;

    if ((uid_t)peer->uid != pol->peer_uid)
        return "not the workers' user";
    if (pidfd < 0)
        return "no pidfd for the peer";
    if (dp_read_stat(peer->pid, 0, &st, NULL) != 0 || st.ppid != pol->httpd_pid)
        return "not a child of the httpd parent";
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)peer->pid);
    if (stat(path, &sb) != 0 || sb.st_dev != pol->exe_dev || sb.st_ino != pol->exe_ino)
        return "not running the httpd executable";
    if (pol->drop_to_peer && (why = peer_ptraceable(peer->pid)) != NULL)
        return why;
    if (!dp_pidfd_alive(pidfd))
        return "exited while it was checked";
    return NULL;
}

int dp_peer_pidfd(int fd, const struct ucred *peer)
{
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
    int pidfd = -1;
    socklen_t len = sizeof(pidfd);

    /* the kernel's pidfd of the connecting process (Linux 6.5); else one
     * opened now, which the secret backs up should the pid have been reused */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
        return pidfd;
    return (int)syscall(SYS_pidfd_open, peer->pid, 0);
}

int dp_secret_matches(const dp_helper_policy *pol, const dp_request *rq)
{
    unsigned char diff = 0;
    size_t i;
    for (i = 0; i < DP_SECRET_LEN; i++)      /* constant time */
        diff |= (unsigned char)(rq->secret[i] ^ pol->secret[i]);
    return diff == 0;
}

