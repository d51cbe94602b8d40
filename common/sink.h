/* Where dump bytes go: an httpd brigade, a socket to the worker, a test
 * buffer. The writer never knows which, so the same code serves them all. */
#ifndef DP_SINK_H
#define DP_SINK_H

#include <stddef.h>

typedef struct dp_sink dp_sink;
struct dp_sink {
    /* Returns 0 when all len bytes were taken, -1 when the reader is gone
     * (the writer then stops and cleans up; it never retries). */
    int (*write)(dp_sink *s, const void *buf, size_t len);
    void *ctx;
};

static inline int dp_sink_write(dp_sink *s, const void *buf, size_t len)
{
    return len ? s->write(s, buf, len) : 0;
}

#endif
