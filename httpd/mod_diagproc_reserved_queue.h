/* The hand-over between the reserved process's connection loop and its
 * serving threads (see the .c). The loop and the serving side both call
 * it; it calls neither. */
#ifndef MOD_DIAGPROC_RESERVED_QUEUE_H
#define MOD_DIAGPROC_RESERVED_QUEUE_H

#include "httpd/mod_diagproc_reserved_loop.h"

/* The clock of every deadline here: monotonic, so that a change of the
 * wall clock neither expires every connection nor keeps one for good. */
apr_time_t dp_queue_now(void);

/* ---- for the loop */

/* The eventfd that wakes the loop (-1: could not be made). */
int dp_queue_init(void);
void dp_queue_wake(void);
/* Ready for a serving thread (first: ahead of the others). */
void dp_queue_push(dp_conn *cn, int first);
/* The connections given back since the last call, linked by qnext. */
dp_conn *dp_queue_take_back(void);
/* Served connections whose head is overdue are shut (returns how many);
 * *next is lowered to the earliest head still due. */
int dp_queue_shut_overdue(apr_time_t now, apr_time_t *next);
apr_time_t dp_queue_first_by(dp_conn *cn);
/* A graceful stop was asked / everything is closed: serving threads end. */
int dp_queue_stopping(void);
void dp_queue_stop(void);
void dp_queue_finish(void);

/* ---- for a serving thread (slot 0..DP_LOOP_THREADS-1) */

/* Its next connection (NULL: the loop has ended), given back with next set. */
dp_conn *dp_queue_next(int slot);
void dp_queue_give_back(int slot, dp_conn *cn);
/* After a non-blocking look found a request: whether this thread may serve
 * it now (its client's share of the threads, and for an opaque connection
 * the TLS share, allow it), else 0: give it back with DP_NEXT_RUN. */
int dp_queue_try_turn(dp_conn *cn);
/* The loop shuts the connection at `by` unless dp_queue_head_read comes
 * first (got: a request head was read, not only the turn ended). */
void dp_queue_head_due(dp_conn *cn, apr_time_t by);
void dp_queue_head_read(dp_conn *cn, int got);

#endif
