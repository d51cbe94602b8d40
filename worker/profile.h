/* A profile on the worker's side: the helper's DP_FR_PROF_* records
 * (common/proto.h) checked and kept, then written as collapsed stacks
 * (folded), speedscope's file format or pprof's profile.proto (gzip'd).
 * No httpd here. */
#ifndef DP_WORKER_PROFILE_H
#define DP_WORKER_PROFILE_H

#include <stdint.h>
#include <stddef.h>
#include <apr_pools.h>
#include <apr_tables.h>

typedef struct dp_prof_frame {
    const char *name, *file;        /* file: NULL when unknown */
} dp_prof_frame;

typedef struct dp_prof_stack {
    uint32_t count;
    int32_t tid, pid;
    const char *runtime;            /* "PHP", "CPython", "native" */
    const char *url, *vhost;        /* the request it served: NULL when not known */
    int nframes;
    dp_prof_frame *frames;          /* root first */
} dp_prof_stack;

typedef struct dp_profile {
    apr_pool_t *pool;
    apr_array_header_t *stacks;     /* dp_prof_stack */
    uint64_t samples, lost, duration_us, start_us;
    uint32_t hz, flags;             /* DP_PS_* */
    int complete;                   /* the summary has come */
} dp_profile;

dp_profile *dp_profile_make(apr_pool_t *p);
/* One record; -1 when it is malformed or out of order. */
int dp_profile_add(dp_profile *pf, int type, const void *payload, size_t len);

/* Collapsed stacks: "root;...;leaf count\n" per distinct stack (threads
 * merged), sorted; a frame is "name (file)" or "name", with ';' and line
 * breaks in names replaced. A stack of a known request has the request as
 * its root frame: "[url VHOST URL]" (dp_profile_url_frame). */
char *dp_profile_folded(const dp_profile *pf, apr_pool_t *p, size_t *len);
/* speedscope's file format: one "sampled" profile per thread. */
/* The root frame of a stack of a known request (folded and speedscope). */
const char *dp_profile_url_frame(const dp_prof_stack *st, apr_pool_t *p);
char *dp_profile_speedscope(const dp_profile *pf, const char *title, apr_pool_t *p,
                            size_t *len);
/* pprof: profile.proto gzip'd; sample types samples/count and cpu/nanoseconds,
 * labels pid and thread (num), runtime, url and vhost (str; the last two
 * when known). NULL on a compression failure. */
char *dp_profile_pprof(const dp_profile *pf, apr_pool_t *p, size_t *len);

/* ---- the protobuf writer's pieces, for the unit tests */
typedef struct dp_pb {
    apr_pool_t *pool;
    unsigned char *buf;
    size_t len, cap;
} dp_pb;
void dp_pb_init(dp_pb *b, apr_pool_t *p);
void dp_pb_varint(dp_pb *b, uint64_t v);
void dp_pb_uint(dp_pb *b, unsigned field, uint64_t v);         /* wire type 0 */
void dp_pb_bytes(dp_pb *b, unsigned field, const void *data, size_t len);  /* wire type 2 */
/* gzip (RFC 1952) of data: NULL on failure. */
unsigned char *dp_gzip(const void *data, size_t len, apr_pool_t *p, size_t *outlen);

#endif
