/* The parent-made state every process of httpd inherits (see the .c). */
#ifndef MOD_DIAGPROC_SHARED_H
#define MOD_DIAGPROC_SHARED_H

#include <stdint.h>
#include <sys/types.h>
#include <apr_pools.h>
#include "common/proto.h"
#include "common/slots.h"

typedef struct dp_shared {
    pid_t helper_pid;
    long helper_retry_at;       /* time(): the helper could not start, next try then; 0 = none */
    pid_t reserved_pid;
    int reserved_generation;
    int server_limit, thread_limit;
    dp_slot slots[];            /* server_limit * thread_limit */
} dp_shared;

/* The page, created once in the parent before the helper and any worker is
 * forked (post_config), kept across restarts; NULL when it could not be made. */
void dp_shared_init(void);
dp_shared *dp_shared_page(void);
void dp_shared_set_helper(pid_t pid);
/* The helper could not start and is tried again at `at` (time(), 0 = it is
 * not waiting for a retry); the seconds until then, 0 when none. */
void dp_shared_set_helper_retry(long at);
int dp_shared_helper_retry_in(void);
void dp_shared_set_reserved(pid_t pid, int generation);

/* The helper's socket, set in the parent before the workers are forked. */
void dp_shared_set_socket_path(const char *path);
const char *dp_shared_socket_path(void);
/* This generation's secret (DP_SECRET_LEN bytes), inherited in memory. */
unsigned char *dp_shared_secret(void);

/* In the parent: a SIGCHLD handler, so that a child's death cuts the MPM's
 * one-second sleep short (removed with p). */
void dp_shared_watch_children(apr_pool_t *p);

#endif
