/* The reserved process's connection loop (see the .c): one thread holds
 * every connection while it waits (for its request head, between keep-alive
 * requests, in a TLS handshake, in a lingering close) and hands it to a
 * serving thread only when there is something to serve. This is what the
 * serving side (mod_diagproc_reserved_serve.c) and the loop exchange; the
 * loop never calls the serving side. */
#ifndef MOD_DIAGPROC_RESERVED_LOOP_H
#define MOD_DIAGPROC_RESERVED_LOOP_H

#include <sys/socket.h>
#include "httpd.h"
#include "apr_buckets.h"
#include "util_filter.h"

/* The limits (README, DiagProcListen). Fixed, not directives: they bound
 * what an attacker can hold, far above what an operator needs (one
 * connection, a request head sent in milliseconds). */
#define DP_LOOP_THREADS         8       /* serving threads */
#define DP_LOOP_THREADS_PER_CLIENT 4    /* of which one client address holds at most */
#define DP_LOOP_TLS_THREADS     4       /* of which TLS and HTTP/2 turns hold at most */
#define DP_LOOP_TLS_PER_CLIENT  2       /* ... and those of one client address at most */
#define DP_LOOP_PER_CLIENT      8       /* connections of one client address (IPv6: its /64) */
#define DP_LOOP_MAX_CONNS       256     /* connections in all */
#define DP_LOOP_HEAD_SECONDS    5       /* accept (or a request's first byte) to its whole head */
#define DP_LOOP_HEAD_MAX        16384   /* a larger request head is answered 431 */
#define DP_LOOP_LINGER_SECONDS  2

/* What a serving thread found ready, and where the connection waits next. */
typedef enum {
    DP_NEXT_NONE,       /* (the serving side's: the hooks left it to c->cs) */
    DP_NEXT_CLOSED,     /* its pool is gone, and the socket with it */
    DP_NEXT_LINGER,     /* shut for writing: the loop drains linger_fd (a dup), then closes it */
    DP_NEXT_REQUEST,    /* kept alive: wait up to `wait` for the next request */
    DP_NEXT_MORE,       /* a head or a TLS handshake under way: wait for more bytes */
    DP_NEXT_READ,       /* wait until readable, up to `wait`, then run the hooks again */
    DP_NEXT_WRITE,      /* the same, until writable */
    DP_NEXT_RUN         /* ready, but its share of the threads is taken: queue it */
} dp_next;

typedef struct dp_conn dp_conn;
struct dp_conn {
    /* set by the loop; read-only for a serving thread */
    int fd;
    int family;
    struct sockaddr_storage peer, local;
    int opaque;             /* TLS or HTTP/2: the loop cannot read its heads */
    int check;              /* serve only if a request is ready (a non-blocking look first) */
    int resume;             /* after DP_NEXT_READ/WRITE: no head is due */
    int held;               /* this turn holds one of the TLS threads */
    int closing;            /* the loop dropped it: only destroy its pool */
    /* the serving side's, kept across turns */
    apr_pool_t *pool;
    conn_rec *c;
    apr_socket_t *csd;
    conn_state_t *cs;
    apr_bucket_brigade *bb;
    ap_filter_t *ahead;     /* opaque: the read-ahead filter (..._ahead.c) */
    apr_bucket_brigade *read_ahead; /* what its non-blocking look decrypted */
    /* set by the serving thread when it gives the connection back */
    dp_next next;
    apr_interval_time_t wait;
    int linger_fd;
    /* the loop's own */
    int state;
    unsigned char key[9];   /* client address (IPv6: its /64), for the per-client caps */
    apr_time_t since;       /* entered its wait: the oldest idle one goes first */
    apr_time_t deadline;    /* of its wait */
    apr_time_t first_by;    /* its first request head is due then (0: one was read) */
    apr_time_t head_start;  /* the first byte of the head it waits for (0: none yet) */
    apr_time_t head_by;     /* while served: the loop shuts it then (0: none); under the mutex */
    size_t scanned;         /* bytes of the head already looked at */
    dp_conn *qnext;
};

/* The loop over the listeners fds[0..n-1] (a failure is logged). */
apr_status_t dp_loop_create(server_rec *s, const int *fds, int n);
/* The loop thread's body: returns once a graceful stop has closed everything. */
void dp_loop_run(void);
/* Graceful stop: no new connection, idle ones closed, the others finish. */
void dp_loop_stop(void);

#endif
