/* What a thread waits on and where its sockets lead, from /proc's text:
 * task/TID/syscall, net/tcp and net/tcp6, fdinfo's epoll lines, fd links.
 * Parsers over buffers (unit-tested with fixture lines) and the pure
 * choices made from them; no reading here. APR pools only. */
#ifndef DP_SOCKETS_H
#define DP_SOCKETS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* /proc/PID/task/TID/syscall: "running", "-1 sp pc" (blocked outside a
 * system call), or "nr arg0 .. arg5 sp pc". */
typedef struct dp_syscall {
    int running;                    /* 1: on a CPU, nothing else is known */
    long nr;                        /* -1: not in a system call */
    unsigned long long args[6];
} dp_syscall;
int dp_parse_syscall(const char *buf, size_t len, dp_syscall *sc);

/* How a system call names the descriptors it waits on. */
enum dp_wait_kind {
    DP_WAIT_NONE = 0,
    DP_WAIT_FD,                     /* arg0 is the descriptor (read, write, connect, ...) */
    DP_WAIT_POLL,                   /* arg0 struct pollfd *, arg1 nfds (poll, ppoll) */
    DP_WAIT_SELECT,                 /* arg0 nfds, arg1..3 fd_set * (select, pselect6) */
    DP_WAIT_EPOLL                   /* arg0 the epoll descriptor (epoll_wait, epoll_pwait) */
};
enum dp_wait_kind dp_syscall_wait_kind(long nr);

/* One line of /proc/PID/net/tcp or tcp6. Addresses in network byte order
 * (the 4 bytes of IPv4 first, the rest zero). */
#define DP_TCP_LISTEN 0x0A
#define DP_TCP_ESTABLISHED 0x01
#define DP_TCP_SYN_SENT 0x02
typedef struct dp_tcp_entry {
    int family;                     /* 4 or 6 */
    unsigned char laddr[16], raddr[16];
    unsigned lport, rport;
    unsigned state;
    long uid;
    unsigned long long inode;
} dp_tcp_entry;
/* One line; 0, or -1 for a header or a malformed line. */
int dp_parse_tcp_line(const char *line, size_t len, int family, dp_tcp_entry *e);
/* Every line of a table, appended to out (dp_tcp_entry); at most max lines. */
void dp_parse_tcp_table(const char *buf, size_t len, int family, size_t max,
                        apr_array_header_t *out);

/* "127.0.0.1:8080", "[::1]:8080" (an IPv4-mapped address as "[::ffff:a.b.c.d]:port"). */
void dp_format_endpoint(int family, const unsigned char *addr, unsigned port, char *buf,
                        size_t cap);
/* The entry of inode in entries (dp_tcp_entry); NULL when absent. */
const dp_tcp_entry *dp_tcp_by_inode(const apr_array_header_t *entries, unsigned long long inode);
/* 1 when e is a connection accepted by a listener of this table (its local
 * port is a LISTEN socket's, on its address or on any address): the
 * client's side of the thread, not a backend. */
int dp_tcp_accepted(const apr_array_header_t *entries, const dp_tcp_entry *e);
/* The entry at the other end of e in the same table (local and remote
 * swapped); NULL when no socket of this table is the other end. */
const dp_tcp_entry *dp_tcp_peer(const apr_array_header_t *entries, const dp_tcp_entry *e);

/* The descriptors an epoll instance watches, from /proc/PID/fdinfo/EPFD
 * ("tfd: N events: ..." lines); at most cap. Returns how many. */
int dp_parse_epoll_tfds(const char *buf, size_t len, int *fds, int cap);

/* "socket:[INODE]" -> INODE; 0 when the link is not a socket. */
unsigned long long dp_socket_inode(const char *link, size_t len);

/* Of n processes (pids and their parents) holding the same socket, the one
 * to name: one that is not the parent of another holder (php-fpm's master
 * holds the listening socket only, the child the accepted one), the lowest
 * pid among those; -1 when n is 0. */
int dp_pick_holder(const pid_t *pids, const pid_t *ppids, int n);
/* The same for a listening socket (a connection waits in its queue): the
 * holder whose parent holds none -- the master that accepts, not its
 * children -- pid 1 aside (systemd holds the sockets it activates) unless
 * it is the only one; the lowest such pid; -1 when n is 0. */
int dp_pick_listener_holder(const pid_t *pids, const pid_t *ppids, int n);

#endif
