/* The helper's side of the dump ring (DP_FR_RING, DP_FR_SLOT in proto.h). */
#ifndef DP_RING_H
#define DP_RING_H

#include "common/sink.h"

typedef struct dp_ring {
    int fd;                     /* the worker's socket */
    char *base;
    unsigned next, inflight;
} dp_ring;

/* Makes the sealed memfd and passes it to the worker on fd; 0, or -1. */
int dp_ring_open(dp_ring *r, int fd);
/* A dp_sink write: fills slots, waiting for the worker's acknowledgements. */
int dp_ring_write(dp_sink *s, const void *buf, size_t len);

#endif
