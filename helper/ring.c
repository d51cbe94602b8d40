/* A dump's bytes through a sealed memfd both sides map (DP_FR_RING). */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "common/proto.h"
#include "helper/ring.h"

/* Dump bytes through the shared ring (DP_FR_RING in proto.h). */

int dp_ring_open(dp_ring *r, int fd)
{
    size_t size = (size_t)DP_RING_SLOTS * DP_RING_SLOT;
    int mfd = memfd_create("diagproc-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING), rc = -1;
    void *base = MAP_FAILED;

    memset(r, 0, sizeof(*r));
    r->fd = fd;
    /* the worker may neither resize it (a SIGBUS here) nor write to it */
    if (mfd >= 0 && ftruncate(mfd, (off_t)size) == 0
        && (base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0)) != MAP_FAILED
        && fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE
                 | F_SEAL_SEAL) == 0) {
        r->base = base;
        rc = dp_frame_send_ring(fd, DP_RING_SLOTS, DP_RING_SLOT, mfd);
    }
    if (mfd >= 0)
        close(mfd);
    return rc;
}

int dp_ring_write(dp_sink *s, const void *buf, size_t len)
{
    dp_ring *r = s->ctx;
    const char *p = buf;

    while (len) {
        size_t k = len < DP_RING_SLOT ? len : DP_RING_SLOT;
        char ack;
        if (r->inflight == DP_RING_SLOTS) {
            if (dp_read_full(r->fd, &ack, 1) != 0)
                return -1;
            r->inflight--;
        }
        memcpy(r->base + (size_t)r->next * DP_RING_SLOT, p, k);
        if (dp_frame_send_slot(r->fd, r->next, (uint32_t)k) != 0)
            return -1;
        r->next = (r->next + 1) % DP_RING_SLOTS;
        r->inflight++;
        p += k;
        len -= k;
    }
    return 0;
}

