/* Compressibility probes: see common/probe.h. */
#include <stdlib.h>
#include <zstd.h>
#include "common/probe.h"

/* What compresses by less than 1/16 is not worth the CPU at 1 Gbit/s. */
#define KEEP_NUM 15
#define KEEP_DEN 16

struct dp_probe {
    ZSTD_CCtx *cctx;
    size_t cap;
    unsigned char out[];            /* ZSTD_compressBound(DP_PROBE_PAGE) bytes */
};

dp_probe *dp_probe_new(void)
{
    size_t cap = ZSTD_compressBound(DP_PROBE_PAGE);
    dp_probe *pr = malloc(sizeof(*pr) + cap);

    if (!pr)
        return NULL;
    pr->cap = cap;
    if (!(pr->cctx = ZSTD_createCCtx())) {
        free(pr);
        return NULL;
    }
    return pr;
}

void dp_probe_free(dp_probe *pr)
{
    if (!pr)
        return;
    ZSTD_freeCCtx(pr->cctx);
    free(pr);
}

int dp_probe_compresses(dp_probe *pr, const void *p, size_t len)
{
    const unsigned char *b = p;
    size_t k, in = 0, out = 0;

    if (!pr || len < DP_PROBE_PAGES * DP_PROBE_PAGE)
        return 1;
    for (k = 0; k < DP_PROBE_PAGES; k++) {
        size_t r = ZSTD_compressCCtx(pr->cctx, pr->out, pr->cap, b + k * (len / DP_PROBE_PAGES),
                                     DP_PROBE_PAGE, 1);
        if (ZSTD_isError(r))
            return 1;
        in += DP_PROBE_PAGE;
        out += r;
    }
    return out * KEEP_DEN <= in * KEEP_NUM;
}
