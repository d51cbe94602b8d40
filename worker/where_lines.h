/* The helper's DP_READ_WHERE answer (common/proto.h) as entries: its
 * lines parsed, httpd-free (unit-tested alone). */
#ifndef DP_WHERE_LINES_H
#define DP_WHERE_LINES_H

#include <sys/types.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* One socket a thread of the worker waits on, and its other end. */
typedef struct dp_where_entry {
    pid_t tid;
    const char *transport;      /* tcp, tcp6, unix */
    const char *local, *peer;   /* address:port, [v6]:port, or a socket's path ("" unnamed) */
    pid_t peer_pid;             /* 0: no process of this host holds the other end */
    long peer_uid;              /* -1 when peer_pid is 0 */
    const char *peer_comm;
} dp_where_entry;

/* Appends the well-formed lines of buf (NUL-terminated; changed in place)
 * to out (dp_where_entry, strings in p); malformed lines are skipped.
 * Returns how many were added. */
int dp_where_parse(char *buf, apr_array_header_t *out, apr_pool_t *p);

#endif
