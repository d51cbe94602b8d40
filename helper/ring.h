/* The helper's side of the dump ring (DP_FR_RING, DP_FR_SLOT in proto.h). */
#ifndef DP_RING_H
#define DP_RING_H

#include "common/sink.h"

typedef struct dp_ring {
    int fd;                     /* the worker's socket */
    char *base;
    unsigned next, inflight;    /* the slot being filled; slots sent, not acknowledged */
    size_t fill;                /* bytes in slot `next` not sent yet (0: none taken) */
    int taken;                  /* slot `next` is ours (acknowledged or never used) */
    long long blocked_ns;       /* time spent waiting for acknowledgements */
} dp_ring;

/* Makes the sealed memfd and passes it to the worker on fd; 0, or -1. */
int dp_ring_open(dp_ring *r, int fd);
/* A sink over the ring: write (small writes share a slot until it is full
 * or flushed), reserve and commit (a writer fills a slot in place; commit
 * sends it). */
void dp_ring_sink(dp_ring *r, dp_sink *out);
/* Sends the slot being filled, if any: before a frame that must follow the
 * bytes written so far (an ENTRY, END). 0, or -1 when the worker is gone. */
int dp_ring_flush(dp_ring *r);

#endif
