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
    /* Optional (both NULL when the sink has none): room in the transport's
     * own buffer, so that a writer reads straight into it instead of into a
     * buffer of its own and paying a copy per byte. reserve gives room for
     * at least want bytes (want <= DP_SINK_MAX_WANT; NULL when the reader is
     * gone); commit hands on the first n of them and ends the reservation. */
    void *(*reserve)(dp_sink *s, size_t want, size_t *room);
    int (*commit)(dp_sink *s, size_t n);
};

#define DP_SINK_MAX_WANT (64 * 1024)

static inline int dp_sink_write(dp_sink *s, const void *buf, size_t len)
{
    return len ? s->write(s, buf, len) : 0;
}

#endif
