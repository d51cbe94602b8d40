/* The stacks answer on the worker's side: the helper's DP_FR_STACK_*
 * records (helper/proto.h) checked and kept, then rendered as JSON or as
 * eu-stack-like text with the language frames under the native frame that
 * runs them. No httpd here. */
#ifndef DP_WORKER_STACKS_H
#define DP_WORKER_STACKS_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <apr_pools.h>

typedef struct dp_stacks_view dp_stacks_view;

dp_stacks_view *dp_stacks_view_make(apr_pool_t *p);
/* One record; -1 when it is malformed or out of order. */
int dp_stacks_view_add(dp_stacks_view *v, int type, const void *payload, size_t len);
/* 1 once the summary record has come. */
int dp_stacks_view_complete(const dp_stacks_view *v);
/* href: the process's own href (threads link below it). */
json_t *dp_stacks_view_json(const dp_stacks_view *v, pid_t pid, const char *href);
char *dp_stacks_view_text(const dp_stacks_view *v, pid_t pid, const char *comm);

#endif
