/* DP_READ_WHERE: which process holds the other end of the connections a
 * target's threads wait on, from the kernel's own tables, never from
 * timing. Per thread, /proc/PID/task/TID/syscall says what it waits in and
 * on which descriptors (a read's fd, a poll's pollfd array and a select's
 * fd_sets read from the target's memory, an epoll's registered fds from
 * fdinfo); each socket among them is found in the target's net/tcp and
 * net/tcp6 (its peer: the entry with the ends swapped) or, for AF_UNIX,
 * through sock_diag (the peer's inode and bound path, or the listener
 * whose queue holds a connection not accepted yet); one scan of the fd
 * directories of /proc then names the process holding each peer. The target is
 * only read, never stopped. Everything is bounded: threads, descriptors
 * per thread, table lines, the scan, and the time. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "helper/sockdiag.h"
#include "helper/where.h"
#include "proc/procfs.h"
#include "proc/sockets.h"
#include "common/clock.h"

#define WHERE_MAX_THREADS 1024
#define WHERE_MAX_FDS 64            /* per thread */
#define WHERE_MAX_CONNS 512
#define WHERE_MAX_TCP 100000        /* lines of net/tcp and net/tcp6 together */
#define WHERE_MAX_PROCS 32768       /* processes the holder scan looks into */
#define WHERE_MAX_PROC_FDS 16384    /* descriptors per process it reads */
#define WHERE_MS 3000               /* the whole answer */

/* A socket a thread waits on, and what its other end is. */
typedef struct conn {
    pid_t tid;
    const char *transport, *local, *peer;
    struct peer_sock *ps;           /* NULL: no socket of this host is the other end */
} conn;

/* A peer socket and the processes holding it (filled by the scan). */
typedef struct peer_sock {
    unsigned long long inode;
    int listener;                   /* a listening socket (its connection not accepted yet) */
    int self;                       /* held by the target or a skipped pid */
    apr_array_header_t *holders;    /* pid_t */
} peer_sock;

typedef struct where_ctx {
    pid_t pid;
    const pid_t *skip;
    int nskip;
    apr_pool_t *p;
    uint64_t deadline_ms;
    int memfd;                      /* /proc/PID/mem, opened when first needed */
    int nl;                         /* the sock_diag socket, opened when first needed */
    apr_hash_t *queues;             /* unix listeners' queues (dp_unix_queues), when read */
    int queues_read;
    apr_array_header_t *tcp;        /* dp_tcp_entry of tcp and tcp6 */
    apr_hash_t *peers;              /* inode -> peer_sock */
    apr_array_header_t *conns;      /* conn */
} where_ctx;

static int late(const where_ctx *w)
{
    return dp_mono_ms() > w->deadline_ms;
}

/* ------------------------------------------------- the target's memory */

static int read_mem(where_ctx *w, unsigned long long addr, void *buf, size_t len)
{
    struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
    char path[48];

    if (process_vm_readv(w->pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
        return 0;
    if (w->memfd < 0) {
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)w->pid);
        w->memfd = open(path, O_RDONLY | O_CLOEXEC);
        if (w->memfd < 0)
            return -1;
    }
    return pread(w->memfd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -1;
}

static int poll_fds(where_ctx *w, const dp_syscall *sc, int *fds, int cap)
{
    struct pollfd pf[WHERE_MAX_FDS];
    unsigned long long n = sc->args[1] < (unsigned)cap ? sc->args[1] : (unsigned)cap;
    int i, k = 0;

    if (n == 0 || n > WHERE_MAX_FDS || read_mem(w, sc->args[0], pf, n * sizeof(pf[0])) != 0)
        return 0;
    for (i = 0; i < (int)n; i++)
        if (pf[i].fd >= 0)
            fds[k++] = pf[i].fd;
    return k;
}

static int select_fds(where_ctx *w, const dp_syscall *sc, int *fds, int cap)
{
    int nfds = sc->args[0] > FD_SETSIZE ? FD_SETSIZE : (int)sc->args[0], set, fd, k = 0;
    size_t bits = 8 * sizeof(unsigned long);

    for (set = 1; set <= 3 && k < cap; set++) {
        unsigned long words[FD_SETSIZE / (8 * sizeof(unsigned long))];
        size_t nw = ((size_t)nfds + bits - 1) / bits;
        if (!sc->args[set] || nw == 0 || read_mem(w, sc->args[set], words, nw * sizeof(long)))
            continue;
        for (fd = 0; fd < nfds && k < cap; fd++)
            if (words[fd / bits] & (1UL << (fd % bits)))
                fds[k++] = fd;
    }
    return k;
}

/* The descriptors thread tid waits on (at most cap): 0 when it runs or
 * waits on something else. */
static int thread_fds(where_ctx *w, pid_t tid, int *fds, int cap)
{
    char path[64], buf[512];
    ssize_t n;
    dp_syscall sc;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)w->pid, (int)tid);
    if ((n = dp_read_small(path, buf, sizeof(buf))) <= 0
        || dp_parse_syscall(buf, (size_t)n, &sc) != 0 || sc.running || sc.nr < 0)
        return 0;
    switch (dp_syscall_wait_kind(sc.nr)) {
    case DP_WAIT_FD:
        if (sc.args[0] > 0x7fffffff)
            return 0;
        fds[0] = (int)sc.args[0];
        return 1;
    case DP_WAIT_POLL:
        return poll_fds(w, &sc, fds, cap);
    case DP_WAIT_SELECT:
        return select_fds(w, &sc, fds, cap);
    case DP_WAIT_EPOLL: {
        char *info;
        size_t len;
        if (sc.args[0] > 0x7fffffff)
            return 0;
        snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)w->pid, (int)sc.args[0]);
        if (dp_read_file(path, &info, &len, w->p) != 0)
            return 0;
        return dp_parse_epoll_tfds(info, len, fds, cap);
    }
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ sockets */

static unsigned long long fd_inode(pid_t pid, int fd)
{
    char path[64], link[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    if ((n = readlink(path, link, sizeof(link))) <= 0)
        return 0;
    return dp_socket_inode(link, (size_t)n);
}

static void load_tcp(where_ctx *w)
{
    static const char *files[] = { "tcp", "tcp6" };
    char path[48], *buf;
    size_t len;
    int i;

    w->tcp = apr_array_make(w->p, 64, sizeof(dp_tcp_entry));
    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)w->pid, files[i]);
        if (dp_read_file(path, &buf, &len, w->p) == 0)
            dp_parse_tcp_table(buf, len, i ? 6 : 4,
                               WHERE_MAX_TCP - (size_t)w->tcp->nelts, w->tcp);
    }
}

static peer_sock *peer_of(where_ctx *w, unsigned long long inode, int listener)
{
    peer_sock *ps = apr_hash_get(w->peers, &inode, sizeof(inode));

    if (!ps) {
        ps = apr_pcalloc(w->p, sizeof(*ps));
        ps->inode = inode;
        ps->listener = listener;
        ps->holders = apr_array_make(w->p, 2, sizeof(pid_t));
        apr_hash_set(w->peers, &ps->inode, sizeof(ps->inode), ps);
    }
    return ps;
}

/* A listener on the port e connects to (its address or any address). */
static const dp_tcp_entry *listener_for(const where_ctx *w, const dp_tcp_entry *e)
{
    static const unsigned char any[16];
    int i;

    for (i = 0; i < w->tcp->nelts; i++) {
        const dp_tcp_entry *x = &APR_ARRAY_IDX(w->tcp, i, dp_tcp_entry);
        if (x->state == DP_TCP_LISTEN && x->lport == e->rport && x->inode
            && (!memcmp(x->laddr, any, 16) || !memcmp(x->laddr, e->raddr, 16)))
            return x;
    }
    return NULL;
}

static int tcp_conn(where_ctx *w, const dp_tcp_entry *e, conn *c)
{
    char buf[64];
    const dp_tcp_entry *peer;

    if (e->state == DP_TCP_LISTEN || dp_tcp_accepted(w->tcp, e))
        return -1;      /* a listener, or the client's connection: not a backend */
    c->transport = e->family == 6 ? "tcp6" : "tcp";
    dp_format_endpoint(e->family, e->laddr, e->lport, buf, sizeof(buf));
    c->local = apr_pstrdup(w->p, buf);
    dp_format_endpoint(e->family, e->raddr, e->rport, buf, sizeof(buf));
    c->peer = apr_pstrdup(w->p, buf);
    peer = dp_tcp_peer(w->tcp, e);
    if (peer && peer->inode)
        c->ps = peer_of(w, peer->inode, 0);
    else if (peer && (peer = listener_for(w, e)) != NULL)
        c->ps = peer_of(w, peer->inode, 1);     /* queued: not accepted yet */
    return 0;
}

/* A unix socket's other end: its peer, or, for a connection no process
 * accepted yet, the listener in whose queue it waits. */
static int unix_conn(where_ctx *w, unsigned long long inode, conn *c)
{
    char own[256], theirs[256];
    unsigned long long peer, none;
    dp_unix_listener *l = NULL;

    if (w->nl < 0 && (w->nl = dp_sockdiag_open()) < 0)
        return -1;
    if (dp_unix_peer(w->nl, inode, &peer, own, sizeof(own)) != 0)
        return -1;      /* not a unix socket here */
    if (!peer) {
        if (!w->queues_read) {
            w->queues_read = 1;
            w->queues = dp_unix_queues(w->nl, WHERE_MAX_TCP, NULL, w->p);
        }
        if (!w->queues || (l = apr_hash_get(w->queues, &inode, sizeof(inode))) == NULL)
            return -1;  /* not connected */
    }
    if (l)
        apr_cpystrn(theirs, l->name, sizeof(theirs));
    else if (dp_unix_peer(w->nl, peer, &none, theirs, sizeof(theirs)) != 0)
        theirs[0] = '\0';
    c->transport = "unix";
    c->local = apr_pstrdup(w->p, own);
    c->peer = apr_pstrdup(w->p, theirs);
    c->ps = l ? peer_of(w, l->inode, 1) : peer_of(w, peer, 0);
    return 0;
}

/* The connections thread tid waits on, added to w->conns. */
static void thread_conns(where_ctx *w, pid_t tid)
{
    int fds[WHERE_MAX_FDS], n = thread_fds(w, tid, fds, WHERE_MAX_FDS), i, j;

    for (i = 0; i < n && w->conns->nelts < WHERE_MAX_CONNS; i++) {
        unsigned long long inode;
        const dp_tcp_entry *e;
        conn c;
        for (j = 0; j < i && fds[j] != fds[i]; j++)
            ;
        if (j < i || (inode = fd_inode(w->pid, fds[i])) == 0)
            continue;
        memset(&c, 0, sizeof(c));
        c.tid = tid;
        if (!w->tcp)
            load_tcp(w);
        e = dp_tcp_by_inode(w->tcp, inode);
        if ((e ? tcp_conn(w, e, &c) : unix_conn(w, inode, &c)) == 0)
            *(conn *)apr_array_push(w->conns) = c;
    }
}

/* -------------------------------------------------------- the holders */

static int skipped(const where_ctx *w, pid_t pid)
{
    int i;

    if (pid == w->pid)
        return 1;
    for (i = 0; i < w->nskip; i++)
        if (w->skip[i] == pid)
            return 1;
    return 0;
}

static void scan_process(where_ctx *w, pid_t pid)
{
    char path[64], link[64];
    struct dirent *de;
    DIR *d;
    int k = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL && k++ < WHERE_MAX_PROC_FDS) {
        char lp[320];
        ssize_t n;
        unsigned long long inode;
        peer_sock *ps;
        if (de->d_name[0] == '.')
            continue;
        snprintf(lp, sizeof(lp), "%s/%s", path, de->d_name);
        if ((n = readlink(lp, link, sizeof(link))) <= 0
            || (inode = dp_socket_inode(link, (size_t)n)) == 0
            || (ps = apr_hash_get(w->peers, &inode, sizeof(inode))) == NULL)
            continue;
        if (skipped(w, pid))
            ps->self = 1;
        else if (!ps->holders->nelts || APR_ARRAY_IDX(ps->holders, ps->holders->nelts - 1,
                                                       pid_t) != pid)
            APR_ARRAY_PUSH(ps->holders, pid_t) = pid;
    }
    closedir(d);
}

static int all_self(where_ctx *w)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(w->p, w->peers); hi; hi = apr_hash_next(hi)) {
        peer_sock *ps;
        apr_hash_this(hi, NULL, NULL, (void **)&ps);
        if (!ps->self)
            return 0;
    }
    return 1;
}

/* The target and the skipped pids first (a few descriptors): when they
 * hold every peer (the asking worker's wait on this helper), no scan. */
static void scan_holders(where_ctx *w)
{
    DIR *d;
    struct dirent *de;
    int k = 0;

    scan_process(w, w->pid);
    for (k = 0; k < w->nskip; k++)
        if (w->skip[k] > 0 && w->skip[k] != w->pid)
            scan_process(w, w->skip[k]);
    if (all_self(w) || (d = opendir("/proc")) == NULL)
        return;
    k = 0;
    while ((de = readdir(d)) != NULL && k < WHERE_MAX_PROCS && !late(w)) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || skipped(w, (pid_t)pid))
            continue;
        k++;
        scan_process(w, (pid_t)pid);
    }
    closedir(d);
}

/* The process to name for ps: of its holders, one that is not the parent
 * of another (the child serving an accepted socket); for a listener, the
 * one whose parent holds none (the master that accepts). 0 when none. */
static pid_t chosen(const peer_sock *ps, dp_stat *st)
{
    int n = ps->holders->nelts, i, k;
    pid_t *pids = (pid_t *)ps->holders->elts, ppids[64];
    dp_error err;

    if (n > 64)
        n = 64;
    for (i = 0; i < n; i++)
        ppids[i] = dp_read_stat(pids[i], 0, st, &err) == 0 ? st->ppid : 0;
    k = ps->listener ? dp_pick_listener_holder(pids, ppids, n) : dp_pick_holder(pids, ppids, n);
    if (k < 0 || dp_read_stat(pids[k], 0, st, &err) != 0)
        return 0;
    return pids[k];
}

/* ------------------------------------------------------------- answer */

static const char *clean(const char *s, apr_pool_t *p)
{
    char *c = apr_pstrdup(p, s), *q;

    for (q = c; *q; q++)
        if (*q == '\t' || *q == '\n' || *q == '\r')
            *q = '?';
    return c;
}

static char *answer(where_ctx *w)
{
    char *out = "";
    int i;

    for (i = 0; i < w->conns->nelts; i++) {
        conn *c = &APR_ARRAY_IDX(w->conns, i, conn);
        pid_t holder = 0;
        long uid = -1;
        dp_stat st;
        if (c->ps && c->ps->self)
            continue;       /* the target's own pair, or the helper's connection */
        memset(&st, 0, sizeof(st));
        if (c->ps && (holder = chosen(c->ps, &st)) > 0) {
            int k;
            for (k = 0; k < w->nskip && (w->skip[k] <= 0 || w->skip[k] != st.ppid); k++)
                ;
            if (k < w->nskip)
                continue;   /* another of the helper's children: not a backend */
            uid = dp_proc_owner(holder);
        }
        out = apr_psprintf(w->p, "%s%d\t%s\t%s\t%s\t%d\t%ld\t%s\n", out, (int)c->tid,
                           c->transport, clean(c->local, w->p), clean(c->peer, w->p),
                           (int)holder, holder > 0 ? uid : -1L,
                           holder > 0 ? clean(st.comm, w->p) : "");
    }
    return out;
}

int dp_where_collect(pid_t pid, const pid_t *skip, int nskip, char **out, size_t *len,
                     apr_pool_t *p, dp_error *err)
{
    where_ctx w;
    apr_array_header_t *tids;
    int i;

    memset(&w, 0, sizeof(w));
    w.pid = pid;
    w.skip = skip;
    w.nskip = nskip;
    w.p = p;
    w.memfd = w.nl = -1;
    w.deadline_ms = dp_mono_ms() + WHERE_MS;
    w.peers = apr_hash_make(p);
    w.conns = apr_array_make(p, 8, sizeof(conn));
    if ((tids = dp_list_tids(pid, p)) == NULL)
        return dp_fail_not_running(err, pid);
    for (i = 0; i < tids->nelts && i < WHERE_MAX_THREADS && !late(&w); i++)
        thread_conns(&w, APR_ARRAY_IDX(tids, i, pid_t));
    if (apr_hash_count(w.peers))
        scan_holders(&w);
    *out = answer(&w);
    *len = strlen(*out);
    if (w.memfd >= 0)
        close(w.memfd);
    if (w.nl >= 0)
        close(w.nl);
    return 0;
}
