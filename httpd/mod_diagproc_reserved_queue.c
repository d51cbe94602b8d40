/* The hand-over between the reserved process's connection loop and its
 * serving threads: connections ready to serve, in order, except that a
 * turn waits while its client address holds DP_LOOP_THREADS_PER_CLIENT
 * threads, a turn that wants one of the DP_LOOP_TLS_THREADS TLS threads
 * waits while that share (or DP_LOOP_TLS_PER_CLIENT of it for its client
 * address) is taken, and among those that may go, the one whose client
 * holds fewest goes first; connections given back; and the head deadline of a served
 * connection, which the loop enforces by shutting its socket. One mutex
 * guards it all. */

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "apr_time.h"

#include "httpd/mod_diagproc_reserved_queue.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int evfd;
    dp_conn *qhead, *qtail;     /* ready for a serving thread */
    dp_conn *done;              /* given back to the loop */
    dp_conn *serving[DP_LOOP_THREADS];
    int held;                   /* TLS threads in use */
    int stopping, finished;
} Q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, NULL, NULL, NULL,
        { NULL }, 0, 0, 0 };

apr_time_t dp_queue_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000;
}

int dp_queue_init(void)
{
    Q.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return Q.evfd;
}

void dp_queue_wake(void)
{
    uint64_t one = 1;
    if (write(Q.evfd, &one, sizeof(one)) < 0) {
        /* the counter is full: the loop is awake anyway */
    }
}

/* ------------------------------------------------------ the loop's side */

static void push_locked(dp_conn *cn, int first)
{
    cn->qnext = NULL;
    if (!Q.qhead)
        Q.qhead = Q.qtail = cn;
    else if (first) {
        cn->qnext = Q.qhead;
        Q.qhead = cn;
    }
    else {
        Q.qtail->qnext = cn;
        Q.qtail = cn;
    }
    pthread_cond_signal(&Q.cv);
}

void dp_queue_push(dp_conn *cn, int first)
{
    pthread_mutex_lock(&Q.mu);
    push_locked(cn, first);
    pthread_mutex_unlock(&Q.mu);
}

dp_conn *dp_queue_take_back(void)
{
    dp_conn *cn;

    pthread_mutex_lock(&Q.mu);
    cn = Q.done;
    Q.done = NULL;
    pthread_mutex_unlock(&Q.mu);
    return cn;
}

/* A serving thread clears head_by under the mutex before it lets anything
 * close the socket, so the fd shut here is still this connection's. */
int dp_queue_shut_overdue(apr_time_t now, apr_time_t *next)
{
    int i, shut = 0;

    pthread_mutex_lock(&Q.mu);
    for (i = 0; i < DP_LOOP_THREADS; i++) {
        dp_conn *cn = Q.serving[i];
        if (!cn || !cn->head_by)
            continue;
        if (cn->head_by <= now) {
            shutdown(cn->fd, SHUT_RDWR);
            cn->head_by = 0;
            shut++;
        }
        else if (cn->head_by < *next)
            *next = cn->head_by;
    }
    pthread_mutex_unlock(&Q.mu);
    return shut;
}

apr_time_t dp_queue_first_by(dp_conn *cn)
{
    apr_time_t t;

    pthread_mutex_lock(&Q.mu);
    t = cn->first_by;
    pthread_mutex_unlock(&Q.mu);
    return t;
}

int dp_queue_stopping(void)
{
    int stopping;

    pthread_mutex_lock(&Q.mu);
    stopping = Q.stopping;
    pthread_mutex_unlock(&Q.mu);
    return stopping;
}

void dp_queue_stop(void)
{
    pthread_mutex_lock(&Q.mu);
    Q.stopping = 1;
    pthread_mutex_unlock(&Q.mu);
    dp_queue_wake();
}

void dp_queue_finish(void)
{
    pthread_mutex_lock(&Q.mu);
    Q.finished = 1;
    pthread_cond_broadcast(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
}

/* ------------------------------------------------------ the threads' side */

/* Under mu: the serving threads one client address holds (tls: only
 * those of the TLS share). */
static int held_by(const unsigned char *key, int tls)
{
    int i, n = 0;

    for (i = 0; i < DP_LOOP_THREADS; i++)
        if (Q.serving[i] && (Q.serving[i]->held || !tls)
            && !memcmp(Q.serving[i]->key, key, sizeof(Q.serving[i]->key)))
            n++;
    return n;
}

static int wants_tls(const dp_conn *cn)
{
    return cn->opaque && !cn->check && !cn->closing;
}

/* A turn that serves requests (not a non-blocking look, not a close). */
static int is_turn(const dp_conn *cn)
{
    return !cn->check && !cn->closing;
}

/* Under mu: the next job (see the top of the file). */
static dp_conn *pick(void)
{
    dp_conn *cn, *prev = NULL, *best = NULL, *bestprev = NULL;
    int bestn = DP_LOOP_TLS_PER_CLIENT;

    for (cn = Q.qhead; cn; prev = cn, cn = cn->qnext) {
        if (is_turn(cn) && held_by(cn->key, 0) >= DP_LOOP_THREADS_PER_CLIENT)
            continue;
        if (!wants_tls(cn)) {
            if (!best) {
                best = cn;
                bestprev = prev;
            }
            break;
        }
        if (Q.held < DP_LOOP_TLS_THREADS) {
            int n = held_by(cn->key, 1);
            if (n < bestn) {
                bestn = n;
                best = cn;
                bestprev = prev;
            }
        }
    }
    if (!best)
        return NULL;
    if (bestprev)
        bestprev->qnext = best->qnext;
    else
        Q.qhead = best->qnext;
    if (Q.qtail == best)
        Q.qtail = bestprev;
    if (wants_tls(best)) {
        best->held = 1;
        Q.held++;
    }
    return best;
}

dp_conn *dp_queue_next(int slot)
{
    dp_conn *cn;

    pthread_mutex_lock(&Q.mu);
    while (!(cn = pick())) {
        if (Q.finished) {
            pthread_mutex_unlock(&Q.mu);
            return NULL;
        }
        pthread_cond_wait(&Q.cv, &Q.mu);
    }
    Q.serving[slot] = cn;
    pthread_mutex_unlock(&Q.mu);
    return cn;
}

void dp_queue_give_back(int slot, dp_conn *cn)
{
    pthread_mutex_lock(&Q.mu);
    Q.serving[slot] = NULL;
    if (cn->held) {
        cn->held = 0;
        Q.held--;
    }
    /* a turn that waited for a TLS thread, or for its client's share, may go now */
    if (Q.qhead)
        pthread_cond_broadcast(&Q.cv);
    cn->head_by = 0;
    cn->qnext = Q.done;
    Q.done = cn;
    pthread_mutex_unlock(&Q.mu);
    dp_queue_wake();
}

int dp_queue_try_turn(dp_conn *cn)
{
    int ok;

    pthread_mutex_lock(&Q.mu);
    /* (this thread's connection is among those it counts) */
    ok = held_by(cn->key, 0) <= DP_LOOP_THREADS_PER_CLIENT;
    if (ok && cn->opaque) {
        ok = Q.held < DP_LOOP_TLS_THREADS && held_by(cn->key, 1) < DP_LOOP_TLS_PER_CLIENT;
        if (ok) {
            cn->held = 1;
            Q.held++;
        }
    }
    pthread_mutex_unlock(&Q.mu);
    return ok;
}

void dp_queue_head_due(dp_conn *cn, apr_time_t by)
{
    /* no need to wake the loop: it looks at least once a second, and a
     * head is due seconds from now */
    pthread_mutex_lock(&Q.mu);
    cn->head_by = by;
    pthread_mutex_unlock(&Q.mu);
}

void dp_queue_head_read(dp_conn *cn, int got)
{
    pthread_mutex_lock(&Q.mu);
    cn->head_by = 0;
    if (got)
        cn->first_by = 0;
    pthread_mutex_unlock(&Q.mu);
}
