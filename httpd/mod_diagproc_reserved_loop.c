/* The reserved process's connection loop. A serving thread blocked in a
 * read is a thread any client can hold: with the two threads of the first
 * design reading heads themselves, two idle TCP connections kept a list
 * request waiting 31.75 s (Timeout 30), four kept it out for good, and
 * mod_reqtimeout did not help (it bounds a read, not the thread). So this
 * one thread holds every connection that waits, with epoll, and a serving
 * thread takes one only when it has something to serve:
 * - plain HTTP/1: once its whole head is in the socket (MSG_PEEK finds the
 *   empty line), so reading the head never blocks; a head larger than
 *   DP_LOOP_HEAD_MAX is answered 431;
 * - TLS and HTTP/2 ("opaque": the loop cannot read their heads): on new
 *   bytes, for a non-blocking look by a serving thread (the TLS handshake
 *   goes on without blocking; what is decrypted is kept by the read-ahead
 *   filter, ..._ahead.c); once a whole HTTP/1 head is decrypted (or bytes
 *   of an HTTP/2 session have come), served on one of DP_LOOP_TLS_THREADS
 *   threads (DP_LOOP_TLS_PER_CLIENT for one client address).
 * A served connection still reading a head (a pipelined one, an HTTP/2
 * session's first) is shut DP_LOOP_HEAD_SECONDS after its turn began.
 * Every connection must have a whole head DP_LOOP_HEAD_SECONDS after accept
 * (after its first byte, for a keep-alive request). A client address holds
 * DP_LOOP_PER_CLIENT connections, all clients DP_LOOP_MAX_CONNS; a new one
 * over a cap closes the oldest idle connection (its own client's for the
 * per-client cap), or is refused when none is idle. */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_time.h"

#include "httpd/mod_diagproc_log.h"
#include "httpd/mod_diagproc_reserved_loop.h"
#include "httpd/mod_diagproc_reserved_queue.h"

APLOG_USE_MODULE(diagproc);

#define SLOTS           (2 * DP_LOOP_MAX_CONNS)     /* room for those being closed */
#define MAX_LISTEN      8
#define TAG_EVENTFD     ((uint64_t)1 << 32)
#define TAG_LISTENER    ((uint64_t)2 << 32)
#define HEAD_TIME       apr_time_from_sec(DP_LOOP_HEAD_SECONDS)
#define STATS_EVERY     apr_time_from_sec(10)

/* QUEUED: ready, or being served (the serving threads know which) */
enum { FREE, WAIT, QUEUED, LINGER, CLOSING };

static const char ANSWER_408[] =
    "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
static const char ANSWER_431[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    "Content-Length: 0\r\n\r\n";
static const char H2_PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static struct {
    server_rec *s;
    int ep, evfd;
    int lfd[MAX_LISTEN], nl;
    dp_conn conns[SLOTS];
    int live;                   /* against the caps: neither FREE nor CLOSING */
    int closed_listeners;
    unsigned long refused, dropped, timeouts, too_large;
    apr_time_t stats_at;
    char buf[DP_LOOP_HEAD_MAX];
} L;

/* ------------------------------------------------------ bookkeeping */

static int live_state(const dp_conn *cn)
{
    return cn->state != FREE && cn->state != CLOSING;
}

/* IPv4 by address; IPv6 by its /64, which one client usually holds whole. */
static void client_key(const struct sockaddr_storage *ss, unsigned char key[9])
{
    memset(key, 0, 9);
    if (ss->ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
    else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
        }
        else {
            key[0] = 6;
            memcpy(key + 1, a->s6_addr, 8);
        }
    }
}

static void ep_add(dp_conn *cn, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events | EPOLLET;
    ev.data.u64 = (uint64_t)(cn - L.conns);
    epoll_ctl(L.ep, EPOLL_CTL_ADD, cn->fd, &ev);
}

static void ep_del(dp_conn *cn)
{
    epoll_ctl(L.ep, EPOLL_CTL_DEL, cn->fd, NULL);
}

/* A connection in the loop's hands goes: its pool (if it has one) is
 * destroyed by a serving thread, the socket shut now so that the client
 * sees it at once. */
static void drop(dp_conn *cn)
{
    ep_del(cn);
    L.live--;
    if (cn->pool) {
        shutdown(cn->fd, SHUT_RDWR);
        cn->closing = 1;
        cn->state = CLOSING;
        dp_queue_push(cn, 1);           /* ahead: it only needs its pool destroyed */
        return;
    }
    close(cn->fd);
    cn->state = FREE;
}

/* Shut for writing and drain what the client still sends, so that an
 * answer is not cut by a reset (ap_lingering_close, without a thread). */
static void linger(dp_conn *cn, apr_time_t now)
{
    shutdown(cn->fd, SHUT_WR);
    cn->state = LINGER;
    cn->since = now;
    cn->deadline = now + apr_time_from_sec(DP_LOOP_LINGER_SECONDS);
}

static void answer_and_linger(dp_conn *cn, const char *answer, size_t len, apr_time_t now)
{
    if (send(cn->fd, answer, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone or not reading: the close says enough */
    }
    linger(cn, now);
}

static void drain(dp_conn *cn)
{
    for (;;) {
        ssize_t n = recv(cn->fd, L.buf, sizeof(L.buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        drop(cn);
        return;
    }
}

/* The connection to close for room: the oldest idle one (waiting for a
 * head or in a lingering close), else the oldest waiting on its own streams
 * (an HTTP/2 session waiting for the client: DP_NEXT_READ/WRITE), which
 * would otherwise let a client keep its connections for good. */
static dp_conn *oldest_idle(const unsigned char *key)
{
    dp_conn *best = NULL;
    int i, best_idle = 0;

    for (i = 0; i < SLOTS; i++) {
        dp_conn *cn = &L.conns[i];
        int waiting = cn->state == WAIT || cn->state == LINGER;
        int idle = cn->state == LINGER || (cn->state == WAIT && cn->next != DP_NEXT_READ
                                           && cn->next != DP_NEXT_WRITE);
        if (!waiting || (key && memcmp(cn->key, key, sizeof(cn->key))))
            continue;
        if (!best || idle > best_idle || (idle == best_idle && cn->since < best->since)) {
            best = cn;
            best_idle = idle;
        }
    }
    return best;
}

static int make_room(const unsigned char *key)
{
    dp_conn *victim;
    int i, same = 0;

    for (i = 0; i < SLOTS; i++)
        if (live_state(&L.conns[i]) && !memcmp(L.conns[i].key, key, 9))
            same++;
    if (same >= DP_LOOP_PER_CLIENT) {
        if (!(victim = oldest_idle(key)))
            return 0;
        drop(victim);
        L.dropped++;
    }
    if (L.live >= DP_LOOP_MAX_CONNS) {
        if (!(victim = oldest_idle(NULL)))
            return 0;
        drop(victim);
        L.dropped++;
    }
    return 1;
}

/* ------------------------------------------------------ new connections */

static void admit(int fd, const struct sockaddr_storage *peer)
{
    unsigned char key[9];
    socklen_t llen;
    dp_conn *cn = NULL;
    apr_time_t now = dp_queue_now();
    int i;

    client_key(peer, key);
    if (make_room(key))
        for (i = 0; i < SLOTS && !cn; i++)
            if (L.conns[i].state == FREE)
                cn = &L.conns[i];
    if (!cn) {
        close(fd);
        L.refused++;
        return;
    }
    memset(cn, 0, sizeof(*cn));
    cn->fd = fd;
    cn->linger_fd = -1;
    cn->peer = *peer;
    cn->family = peer->ss_family;
    llen = sizeof(cn->local);
    getsockname(fd, (struct sockaddr *)&cn->local, &llen);
    memcpy(cn->key, key, sizeof(cn->key));
    cn->state = WAIT;
    cn->next = DP_NEXT_REQUEST;
    cn->since = now;
    cn->first_by = cn->deadline = now + HEAD_TIME;
    L.live++;
    ep_add(cn, EPOLLIN | EPOLLRDHUP);
}

static void accept_from(int lfd)
{
    int k;

    for (k = 0; k < 64; k++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(fd, &peer);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EMFILE || errno == ENFILE) {
            dp_conn *victim = oldest_idle(NULL);
            if (victim) {
                drop(victim);
                L.dropped++;
                continue;
            }
        }
        /* EAGAIN: none left (or, during a graceful restart, the other
         * generation took it) */
        return;
    }
}

/* ------------------------------------------------------ waiting connections */

static void dispatch(dp_conn *cn, int check)
{
    ep_del(cn);
    cn->check = check;
    cn->resume = cn->next == DP_NEXT_READ || cn->next == DP_NEXT_WRITE;
    cn->state = QUEUED;
    dp_queue_push(cn, 0);
}

/* The empty line that ends a head, from `from` on (blank lines before the
 * request line are skipped by the caller, as httpd skips them). */
static int head_end(const char *b, size_t from, size_t n)
{
    size_t i;

    for (i = from; i < n; i++)
        if (b[i] == '\n' && ((i + 1 < n && b[i + 1] == '\n')
                             || (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n')))
            return 1;
    return 0;
}

/* n bytes peeked of a connection the loop can read (plain HTTP/1, or not
 * known yet: a TLS record or the HTTP/2 preface makes it opaque). */
static void peeked(dp_conn *cn, size_t n, apr_time_t now)
{
    const char *b = L.buf;
    size_t skip = 0, from;

    while (skip < n && (b[skip] == '\r' || b[skip] == '\n'))
        skip++;
    if (skip < n && !cn->pool) {
        size_t have = n - skip < 24 ? n - skip : 24;
        if ((unsigned char)b[skip] == 0x16 || (have == 24 && !memcmp(b + skip, H2_PREFACE, 24))) {
            cn->opaque = 1;
            dispatch(cn, 1);
            return;
        }
        if (have < 24 && !memcmp(b + skip, H2_PREFACE, have))
            return;                     /* the rest of a preface may come */
    }
    from = cn->scanned > skip + 2 ? cn->scanned - 2 : skip;
    if (skip < n && head_end(b, from, n)) {
        dispatch(cn, 0);
        return;
    }
    cn->scanned = n;
    if (n < sizeof(L.buf))
        return;
    L.too_large++;
    if (cn->pool)
        drop(cn);
    else {
        ep_del(cn);
        answer_and_linger(cn, ANSWER_431, sizeof(ANSWER_431) - 1, now);
        ep_add(cn, EPOLLIN | EPOLLRDHUP);
    }
}

static void on_event(dp_conn *cn, uint32_t events, apr_time_t now)
{
    ssize_t n;
    int plain_head = cn->next == DP_NEXT_REQUEST && !cn->opaque;

    if (cn->state == LINGER) {
        drain(cn);
        return;
    }
    if (cn->state != WAIT)
        return;
    if (cn->next == DP_NEXT_WRITE) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            dispatch(cn, 0);
        return;
    }
    n = recv(cn->fd, L.buf, plain_head ? sizeof(L.buf) : 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(cn);                       /* the client closed (or failed) */
        return;
    }
    if (cn->next == DP_NEXT_REQUEST && !cn->head_start) {
        cn->head_start = now;
        if (cn->deadline > now + HEAD_TIME)
            cn->deadline = now + HEAD_TIME;
    }
    if (plain_head)
        peeked(cn, (size_t)n, now);
    else
        dispatch(cn, cn->next != DP_NEXT_READ);
}

/* A connection given back by a serving thread waits again (or goes). */
static void rearm(dp_conn *cn, apr_time_t now)
{
    apr_time_t first_by;

    switch (cn->next) {
    case DP_NEXT_CLOSED:
        if (cn->state != CLOSING)
            L.live--;
        cn->state = FREE;
        return;
    case DP_NEXT_LINGER:
        cn->fd = cn->linger_fd;
        cn->linger_fd = -1;
        linger(cn, now);
        ep_add(cn, EPOLLIN | EPOLLRDHUP);
        return;
    case DP_NEXT_RUN:
        cn->state = QUEUED;
        cn->check = 0;
        dp_queue_push(cn, 0);
        return;
    default:
        break;
    }
    cn->state = WAIT;
    cn->since = now;
    cn->scanned = 0;
    if (dp_queue_stopping()) {
        drop(cn);
        return;
    }
    if (cn->next == DP_NEXT_REQUEST)
        cn->head_start = 0;
    if (cn->next == DP_NEXT_MORE) {
        if (!cn->head_start)
            cn->head_start = now;
        cn->deadline = cn->head_start + HEAD_TIME;
    }
    else
        cn->deadline = now + cn->wait;
    first_by = dp_queue_first_by(cn);
    if (first_by && first_by < cn->deadline)
        cn->deadline = first_by;
    ep_add(cn, cn->next == DP_NEXT_WRITE ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
}

static void take_back(apr_time_t now)
{
    dp_conn *cn, *next;

    for (cn = dp_queue_take_back(); cn; cn = next) {
        next = cn->qnext;
        rearm(cn, now);
    }
}

/* ------------------------------------------------------ time */

static void expire(dp_conn *cn, apr_time_t now)
{
    int head_due = cn->next == DP_NEXT_MORE || cn->head_start || cn->first_by;

    if (cn->state == LINGER) {
        drop(cn);
        return;
    }
    if (head_due && cn->next != DP_NEXT_READ && cn->next != DP_NEXT_WRITE)
        L.timeouts++;
    if (!cn->pool && cn->head_start && !cn->opaque) {
        /* bytes of a head came, not the whole head: say so, as
         * mod_reqtimeout would (an idle connection is closed silently) */
        ep_del(cn);
        answer_and_linger(cn, ANSWER_408, sizeof(ANSWER_408) - 1, now);
        ep_add(cn, EPOLLIN | EPOLLRDHUP);
        return;
    }
    drop(cn);
}

static void log_pressure(apr_time_t now)
{
    if (now - L.stats_at < STATS_EVERY)
        return;
    if (L.refused || L.dropped || L.timeouts || L.too_large)
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, L.s, DPLOGNO(20001)
                     "diagproc: reserved listener, last %d s: %lu connections refused, "
                     "%lu idle ones closed to make room, %lu heads not complete within %d s, "
                     "%lu heads over %d bytes", (int)apr_time_sec(STATS_EVERY), L.refused,
                     L.dropped, L.timeouts, DP_LOOP_HEAD_SECONDS, L.too_large,
                     DP_LOOP_HEAD_MAX);
    L.refused = L.dropped = L.timeouts = L.too_large = 0;
    L.stats_at = now;
}

/* Expires what is due; returns the milliseconds until the next deadline. */
static int tick(apr_time_t now)
{
    apr_time_t next = now + apr_time_from_sec(1);
    int i;

    for (i = 0; i < SLOTS; i++) {
        dp_conn *cn = &L.conns[i];
        if (cn->state != WAIT && cn->state != LINGER)
            continue;
        if (cn->deadline <= now)
            expire(cn, now);
        else if (cn->deadline < next)
            next = cn->deadline;
    }
    /* a served connection still reading its head is shut at its time */
    L.timeouts += (unsigned long)dp_queue_shut_overdue(now, &next);
    log_pressure(now);
    return (int)((next - now + 999) / 1000);
}

/* ------------------------------------------------------ the loop */

static void stop_accepting(void)
{
    int i;

    for (i = 0; i < L.nl; i++) {
        epoll_ctl(L.ep, EPOLL_CTL_DEL, L.lfd[i], NULL);
        close(L.lfd[i]);
    }
    for (i = 0; i < SLOTS; i++)
        if (L.conns[i].state == WAIT || L.conns[i].state == LINGER)
            drop(&L.conns[i]);
    L.closed_listeners = 1;
}

/* Ended once a graceful stop has seen every connection closed. */
static int ended(void)
{
    int i;

    if (!dp_queue_stopping())
        return 0;
    if (!L.closed_listeners)
        stop_accepting();
    for (i = 0; i < SLOTS; i++)
        if (L.conns[i].state != FREE)
            return 0;
    dp_queue_finish();
    return 1;
}

void dp_loop_run(void)
{
    struct epoll_event ev[64];

    for (;;) {
        apr_time_t now = dp_queue_now();
        int i, n, ms;

        take_back(now);
        if (ended())
            return;
        ms = tick(now);
        n = epoll_wait(L.ep, ev, 64, ms);
        now = dp_queue_now();
        for (i = 0; i < n; i++) {
            uint64_t tag = ev[i].data.u64;
            if (tag == TAG_EVENTFD) {
                uint64_t count;
                if (read(L.evfd, &count, sizeof(count)) < 0) {
                    /* nothing to read: another wake-up took it */
                }
            }
            else if (tag & TAG_LISTENER)
                accept_from(L.lfd[tag & 0xff]);
            else
                on_event(&L.conns[tag], ev[i].events, now);
        }
    }
}

apr_status_t dp_loop_create(server_rec *s, const int *fds, int n)
{
    struct epoll_event ev;
    int i;

    memset(&L, 0, sizeof(L));
    L.s = s;
    L.ep = epoll_create1(EPOLL_CLOEXEC);
    L.evfd = dp_queue_init();
    if (L.ep < 0 || L.evfd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, DPLOGNO(20002)
                     "diagproc: the reserved process cannot create its connection loop");
        return APR_FROM_OS_ERROR(errno);
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = TAG_EVENTFD;
    epoll_ctl(L.ep, EPOLL_CTL_ADD, L.evfd, &ev);
    for (i = 0; i < n && i < MAX_LISTEN; i++) {
        L.lfd[L.nl] = fds[i];
        ev.data.u64 = TAG_LISTENER | (uint64_t)L.nl;
        if (epoll_ctl(L.ep, EPOLL_CTL_ADD, fds[i], &ev) == 0)
            L.nl++;
    }
    L.stats_at = dp_queue_now();
    return APR_SUCCESS;
}

void dp_loop_stop(void)
{
    dp_queue_stop();
}
