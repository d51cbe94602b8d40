/* What a thread waits on and where its sockets lead: parsers of /proc's
 * text and the choices made from them (see sockets.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <arpa/inet.h>

#include "proc/sockets.h"

/* ------------------------------------------------------------- syscall */

static int next_number(const char **p, const char *end, unsigned long long *v, int *neg)
{
    const char *s = *p;
    int base = 10;

    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s >= end || *s == '\n')
        return -1;
    *neg = 0;
    if (*s == '-') {
        *neg = 1;
        s++;
    }
    if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (s >= end)
        return -1;
    {
        char tmp[32];
        size_t n = 0;
        char *stop;
        while (s < end && n < sizeof(tmp) - 1 && *s != ' ' && *s != '\t' && *s != '\n')
            tmp[n++] = *s++;
        tmp[n] = '\0';
        if (n == 0)
            return -1;
        *v = strtoull(tmp, &stop, base);
        if (*stop)
            return -1;
    }
    *p = s;
    return 0;
}

int dp_parse_syscall(const char *buf, size_t len, dp_syscall *sc)
{
    const char *p = buf, *end = buf + len;
    unsigned long long v;
    int neg, i;

    memset(sc, 0, sizeof(*sc));
    sc->nr = -1;
    if (len >= 7 && !strncmp(buf, "running", 7)) {
        sc->running = 1;
        return 0;
    }
    if (next_number(&p, end, &v, &neg) != 0)
        return -1;
    if (neg) {
        sc->nr = -1;            /* "-1 sp pc": blocked, not in a system call */
        return 0;
    }
    sc->nr = (long)v;
    for (i = 0; i < 6; i++) {
        if (next_number(&p, end, &v, &neg) != 0 || neg)
            return -1;
        sc->args[i] = v;
    }
    return 0;
}

enum dp_wait_kind dp_syscall_wait_kind(long nr)
{
    switch (nr) {
    case SYS_read: case SYS_readv: case SYS_recvfrom: case SYS_recvmsg:
    case SYS_write: case SYS_writev: case SYS_sendto: case SYS_sendmsg:
    case SYS_connect: case SYS_sendfile:
        return DP_WAIT_FD;
#ifdef SYS_poll
    case SYS_poll:
#endif
    case SYS_ppoll:
        return DP_WAIT_POLL;
#ifdef SYS_select
    case SYS_select:
#endif
    case SYS_pselect6:
        return DP_WAIT_SELECT;
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
    case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
        return DP_WAIT_EPOLL;
    default:
        return DP_WAIT_NONE;
    }
}

/* ------------------------------------------------------------ net/tcp */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "HHHHHHHH...:PPPP": the kernel prints each 32-bit word of the address as
 * the machine's integer (%08X), so the word read back as an integer and
 * stored natively gives the bytes in network order. */
static int parse_endpoint(const char **pp, const char *end, int family, unsigned char *addr,
                          unsigned *port)
{
    const char *p = *pp;
    int words = family == 6 ? 4 : 1, w, k, d;

    memset(addr, 0, 16);
    while (p < end && *p == ' ')
        p++;
    for (w = 0; w < words; w++) {
        uint32_t v = 0;
        for (k = 0; k < 8; k++) {
            if (p >= end || (d = hex_digit(*p)) < 0)
                return -1;
            v = (v << 4) | (uint32_t)d;
            p++;
        }
        memcpy(addr + 4 * w, &v, 4);
    }
    if (p >= end || *p++ != ':')
        return -1;
    *port = 0;
    for (k = 0; k < 4; k++) {
        if (p >= end || (d = hex_digit(*p)) < 0)
            return -1;
        *port = (*port << 4) | (unsigned)d;
        p++;
    }
    *pp = p;
    return 0;
}

/* The next blank-separated field as a number in base. */
static int field_number(const char **pp, const char *end, int base, unsigned long long *v)
{
    const char *p = *pp;
    char tmp[32], *stop;
    size_t n = 0;

    while (p < end && *p == ' ')
        p++;
    while (p < end && *p != ' ' && *p != '\n' && n < sizeof(tmp) - 1)
        tmp[n++] = *p++;
    tmp[n] = '\0';
    if (!n)
        return -1;
    *v = strtoull(tmp, &stop, base);
    if (*stop && !(base == 16 && *stop == ':'))
        return -1;
    *pp = p;
    return 0;
}

/* "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode" */
int dp_parse_tcp_line(const char *line, size_t len, int family, dp_tcp_entry *e)
{
    const char *p = line, *end = line + len;
    unsigned long long v;
    int i;

    memset(e, 0, sizeof(*e));
    e->family = family;
    while (p < end && *p == ' ')
        p++;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (p >= end || *p++ != ':')
        return -1;
    if (parse_endpoint(&p, end, family, e->laddr, &e->lport) != 0
        || parse_endpoint(&p, end, family, e->raddr, &e->rport) != 0
        || field_number(&p, end, 16, &v) != 0)
        return -1;
    e->state = (unsigned)v;
    /* tx:rx, tr:when, retrnsmt */
    for (i = 0; i < 3; i++)
        if (field_number(&p, end, 16, &v) != 0)
            return -1;
    if (field_number(&p, end, 10, &v) != 0)
        return -1;
    e->uid = (long)v;
    if (field_number(&p, end, 10, &v) != 0 || field_number(&p, end, 10, &v) != 0)
        return -1;
    e->inode = v;
    return 0;
}

void dp_parse_tcp_table(const char *buf, size_t len, int family, size_t max,
                        apr_array_header_t *out)
{
    const char *p = buf, *end = buf + len;
    size_t n = 0;

    while (p < end && n < max) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        dp_tcp_entry e;
        if (dp_parse_tcp_line(p, (size_t)(le - p), family, &e) == 0) {
            *(dp_tcp_entry *)apr_array_push(out) = e;
            n++;
        }
        p = nl ? nl + 1 : end;
    }
}

void dp_format_endpoint(int family, const unsigned char *addr, unsigned port, char *buf,
                        size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (family == 4) {
        inet_ntop(AF_INET, addr, a, sizeof(a));
        snprintf(buf, cap, "%s:%u", a, port);
        return;
    }
    if (!memcmp(addr, mapped, 12)) {
        char v4[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, addr + 12, v4, sizeof(v4));
        snprintf(buf, cap, "[::ffff:%s]:%u", v4, port);
        return;
    }
    inet_ntop(AF_INET6, addr, a, sizeof(a));
    snprintf(buf, cap, "[%s]:%u", a, port);
}

const dp_tcp_entry *dp_tcp_by_inode(const apr_array_header_t *entries, unsigned long long inode)
{
    int i;

    if (!inode)
        return NULL;
    for (i = 0; i < entries->nelts; i++) {
        const dp_tcp_entry *x = &APR_ARRAY_IDX(entries, i, dp_tcp_entry);
        if (x->inode == inode)
            return x;
    }
    return NULL;
}

static int any_address(const dp_tcp_entry *e)
{
    static const unsigned char zero[16];
    return !memcmp(e->laddr, zero, 16);
}

int dp_tcp_accepted(const apr_array_header_t *entries, const dp_tcp_entry *e)
{
    int i;

    for (i = 0; i < entries->nelts; i++) {
        const dp_tcp_entry *x = &APR_ARRAY_IDX(entries, i, dp_tcp_entry);
        if (x->state != DP_TCP_LISTEN || x->lport != e->lport)
            continue;
        if (any_address(x) || (x->family == e->family && !memcmp(x->laddr, e->laddr, 16)))
            return 1;
        /* an IPv6 listener on :: takes IPv4 too: its connections show in tcp6 */
    }
    return 0;
}

const dp_tcp_entry *dp_tcp_peer(const apr_array_header_t *entries, const dp_tcp_entry *e)
{
    int i;

    if (e->state == DP_TCP_LISTEN)
        return NULL;
    for (i = 0; i < entries->nelts; i++) {
        const dp_tcp_entry *x = &APR_ARRAY_IDX(entries, i, dp_tcp_entry);
        if (x == e || x->family != e->family || x->state == DP_TCP_LISTEN)
            continue;
        if (x->lport == e->rport && x->rport == e->lport
            && !memcmp(x->laddr, e->raddr, 16) && !memcmp(x->raddr, e->laddr, 16))
            return x;
    }
    return NULL;
}

/* ------------------------------------------------------ fdinfo, links */

int dp_parse_epoll_tfds(const char *buf, size_t len, int *fds, int cap)
{
    const char *p = buf, *end = buf + len;
    int n = 0;

    while (p < end && n < cap) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le - p > 4 && !strncmp(p, "tfd:", 4)) {
            const char *q = p + 4;
            long v = 0;
            int digits = 0;
            while (q < le && (*q == ' ' || *q == '\t'))
                q++;
            while (q < le && *q >= '0' && *q <= '9' && v < 1L << 30) {
                v = v * 10 + (*q++ - '0');
                digits++;
            }
            if (digits && (q == le || *q == ' ' || *q == '\t'))
                fds[n++] = (int)v;
        }
        p = nl ? nl + 1 : end;
    }
    return n;
}

unsigned long long dp_socket_inode(const char *link, size_t len)
{
    unsigned long long v = 0;
    size_t i;

    if (len < 10 || strncmp(link, "socket:[", 8) != 0 || link[len - 1] != ']')
        return 0;
    for (i = 8; i < len - 1; i++) {
        if (link[i] < '0' || link[i] > '9' || v > (~0ULL) / 10 - 10)
            return 0;
        v = v * 10 + (unsigned)(link[i] - '0');
    }
    return v;
}

int dp_pick_holder(const pid_t *pids, const pid_t *ppids, int n)
{
    int i, j, best = -1;

    for (i = 0; i < n; i++) {
        int parent = 0;
        for (j = 0; j < n && !parent; j++)
            parent = j != i && ppids[j] == pids[i];
        if (!parent && (best < 0 || pids[i] < pids[best]))
            best = i;
    }
    if (best < 0 && n > 0) {
        best = 0;       /* a circle cannot happen; keep an answer anyway */
        for (i = 1; i < n; i++)
            if (pids[i] < pids[best])
                best = i;
    }
    return best;
}

int dp_pick_listener_holder(const pid_t *pids, const pid_t *ppids, int n)
{
    int i, j, best = -1;

    if (n == 1)
        return 0;
    for (i = 0; i < n; i++) {
        int child = 0;
        if (pids[i] == 1)
            continue;
        for (j = 0; j < n && !child; j++)
            child = j != i && pids[j] != 1 && pids[j] == ppids[i];
        if (!child && (best < 0 || pids[i] < pids[best]))
            best = i;
    }
    return best;
}
