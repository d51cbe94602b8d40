/* A dump's bytes through a sealed memfd both sides map (DP_FR_RING). */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "common/proto.h"
#include "helper/ring.h"
#include "common/clock.h"

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

/* Slot `next` becomes ours once the worker has passed on what it held: its
 * one-byte acknowledgements come in the order the slots were sent. */
static int take_slot(dp_ring *r)
{
    long long t0;
    char ack;

    if (r->taken)
        return 0;
    if (r->inflight == DP_RING_SLOTS) {
        t0 = dp_mono_ns();
        if (dp_read_full(r->fd, &ack, 1) != 0)
            return -1;
        r->blocked_ns += dp_mono_ns() - t0;
        r->inflight--;
    }
    r->taken = 1;
    r->fill = 0;
    return 0;
}

static int send_slot(dp_ring *r)
{
    if (dp_frame_send_slot(r->fd, r->next, (uint32_t)r->fill) != 0)
        return -1;
    r->next = (r->next + 1) % DP_RING_SLOTS;
    r->inflight++;
    r->taken = 0;
    r->fill = 0;
    return 0;
}

int dp_ring_flush(dp_ring *r)
{
    return r->taken && r->fill ? send_slot(r) : 0;
}

static int ring_write(dp_sink *s, const void *buf, size_t len)
{
    dp_ring *r = s->ctx;
    const char *p = buf;

    while (len) {
        size_t k;
        if (take_slot(r) != 0)
            return -1;
        k = DP_RING_SLOT - r->fill < len ? DP_RING_SLOT - r->fill : len;
        memcpy(r->base + (size_t)r->next * DP_RING_SLOT + r->fill, p, k);
        r->fill += k;
        p += k;
        len -= k;
        if (r->fill == DP_RING_SLOT && send_slot(r) != 0)
            return -1;
    }
    return 0;
}

/* The rest of the slot being filled, or a fresh one when less than want
 * is left of it. */
static void *ring_reserve(dp_sink *s, size_t want, size_t *room)
{
    dp_ring *r = s->ctx;

    if (r->taken && DP_RING_SLOT - r->fill < want && send_slot(r) != 0)
        return NULL;
    if (take_slot(r) != 0)
        return NULL;
    *room = DP_RING_SLOT - r->fill;
    return r->base + (size_t)r->next * DP_RING_SLOT + r->fill;
}

static int ring_commit(dp_sink *s, size_t n)
{
    dp_ring *r = s->ctx;

    r->fill += n;
    return r->fill ? send_slot(r) : 0;
}

void dp_ring_sink(dp_ring *r, dp_sink *out)
{
    memset(out, 0, sizeof(*out));
    out->write = ring_write;
    out->ctx = r;
    out->reserve = ring_reserve;
    out->commit = ring_commit;
}
