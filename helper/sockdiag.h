/* AF_UNIX sockets through the kernel's sock_diag (NETLINK_SOCK_DIAG), in the
 * helper's network namespace (the one httpd's processes share with it).
 * Internal to helper/. */
#ifndef DP_SOCKDIAG_H
#define DP_SOCKDIAG_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr_hash.h>

/* A sock_diag socket (replies awaited at most a second), or -1. */
int dp_sockdiag_open(void);

/* A unix socket's peer inode (0: not connected, or its connection not
 * accepted yet) and its own bound path (abstract names as "@name", "" when
 * unnamed); -1 when inode is no unix socket here. */
int dp_unix_peer(int nl, unsigned long long inode, unsigned long long *peer, char *name,
                 size_t cap);

/* A connection not accepted yet waits in its listener's queue: every
 * listening unix socket's queue, as a hash of the connecting socket's inode
 * (unsigned long long) to its listener (dp_unix_listener); at most max
 * listeners read. by_name (when not NULL) gets every named listener by its
 * path. NULL when sock_diag cannot be asked. */
typedef struct dp_unix_listener {
    unsigned long long inode;
    const char *name;
} dp_unix_listener;
apr_hash_t *dp_unix_queues(int nl, size_t max, apr_hash_t *by_name, apr_pool_t *p);

#endif
